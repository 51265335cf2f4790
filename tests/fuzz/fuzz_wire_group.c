/* fuzz_wire_group — GroupToRouter as the router reads it (router/backend.c):
 * ifp_wire_group_msg on the body frame, then every field walked (heartbeat
 * running/finished lists, token batches, work errors), ifp_wire_check_text
 * (string fields UTF-8 without NUL) and the message re-encoded. */
#include "fuzz.h"

static ProtobufCMessage *decode(const void *p, size_t n) {
    Ifp__GroupToRouter *m = ifp_wire_group_msg(p, n);
    return m ? &m->base : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Ifp__GroupToRouter *m = ifp_wire_group_msg(data, size);
    if (!m) return 0;
    ifp_fuzz_pb_walk(&m->base);
    ifp_fuzz_pb_check_text(&m->base, data, size);
    ifp_fuzz_pb_roundtrip(&m->base, decode);
    switch (m->msg_case) {
    case IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT: {
        const Ifp__Heartbeat *h = m->heartbeat;
        ifp_fuzz_touch_str(h->group);
        ifp_fuzz_touch(h->running, h->n_running * sizeof *h->running);
        for (size_t i = 0; i < h->n_finished; i++) ifp_fuzz_touch(&h->finished[i]->rid, sizeof h->finished[i]->rid);
        break;
    }
    case IFP__GROUP_TO_ROUTER__MSG_TOKENS:
        ifp_fuzz_touch_str(m->tokens->group);
        for (size_t i = 0; i < m->tokens->n_tokens; i++) {
            const Ifp__GroupToken *t = m->tokens->tokens[i];
            ifp_fuzz_touch(&t->token, sizeof t->token);
            if (t->debug)
                ifp_fuzz_touch(t->debug->logits_last_prompt,
                               t->debug->n_logits_last_prompt * sizeof *t->debug->logits_last_prompt);
        }
        break;
    case IFP__GROUP_TO_ROUTER__MSG_ERROR: ifp_fuzz_touch_str(m->error->message); break;
    default: FUZZ_CHECK(0, "ifp_wire_group_msg returned a message with case %d", (int)m->msg_case);
    }
    ifp__group_to_router__free_unpacked(m, NULL);
    return 0;
}
