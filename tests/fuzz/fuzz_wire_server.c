/* fuzz_wire_server — ServerMessage as a client reads it (tools/cmd_client.c):
 * ifp_wire_server_msg on the last frame, every field walked (token events,
 * replies with usage/timings/debug, errors, pongs with group status and
 * counters, progress), ifp_wire_check_text and the message re-encoded. */
#include "fuzz.h"

static ProtobufCMessage *decode(const void *p, size_t n) {
    Ifp__ServerMessage *m = ifp_wire_server_msg(p, n);
    return m ? &m->base : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Ifp__ServerMessage *m = ifp_wire_server_msg(data, size);
    if (!m) return 0;
    ifp_fuzz_pb_walk(&m->base);
    ifp_fuzz_pb_check_text(&m->base, data, size);
    ifp_fuzz_pb_roundtrip(&m->base, decode);
    switch (m->msg_case) {
    case IFP__SERVER_MESSAGE__MSG_TOKEN:
        ifp_fuzz_touch_str(m->token->id);
        ifp_fuzz_touch(m->token->text.data, m->token->text.len);
        break;
    case IFP__SERVER_MESSAGE__MSG_REPLY: {
        const Ifp__Reply *r = m->reply;
        ifp_fuzz_touch_str(r->id);
        ifp_fuzz_touch(r->tokens, r->n_tokens * sizeof *r->tokens);
        ifp_fuzz_touch(r->text.data, r->text.len);
        if (r->usage) ifp_fuzz_touch(&r->usage->completion_tokens, sizeof r->usage->completion_tokens);
        if (r->timings) ifp_fuzz_touch(&r->timings->total_ms, sizeof r->timings->total_ms);
        break;
    }
    case IFP__SERVER_MESSAGE__MSG_ERROR: ifp_fuzz_touch_str(m->error->message); break;
    case IFP__SERVER_MESSAGE__MSG_PONG:
        for (size_t i = 0; i < m->pong->n_groups; i++) ifp_fuzz_touch_str(m->pong->groups[i]->name);
        for (size_t i = 0; i < m->pong->n_counters; i++) ifp_fuzz_touch_str(m->pong->counters[i]->name);
        break;
    case IFP__SERVER_MESSAGE__MSG_PROGRESS: ifp_fuzz_touch_str(m->progress->id); break;
    default: FUZZ_CHECK(0, "ifp_wire_server_msg returned a message with case %d", (int)m->msg_case);
    }
    ifp__server_message__free_unpacked(m, NULL);
    return 0;
}
