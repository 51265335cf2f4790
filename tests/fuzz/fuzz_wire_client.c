/* fuzz_wire_client — a frontend message as the router reads it.
 *
 * Input: frames in the fuzz.h encoding (ifp_fuzz_split_frames), received
 * through a ZeroMQ socket with ifp_wire_recv.  Then what rt_on_client
 * (router/frontend.c) does before it touches its state: the frame layout
 * [identity][body] or [identity][""][body], the size limit, ifp_wire_client_msg
 * on the body, ifp_wire_check_text (strings must be UTF-8 without NUL), and
 * for a Request the admission check rt_admit_check + rt_admit_fit with the
 * limits the router derives from the embedded model (models/ifp-mix) and its
 * tokenizer (router/router.c). */
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "request.h" /* RT_MAX_STOP, RT_STOP_MAX */
#include "fuzz.h"
#include "gguf.h"
#include "model.h"
#include "tokenizer.h"

static rt_limits_t lim;
static size_t front_max_valid; /* the largest body the router reads */
static ifp_tokenizer_t *tok;
static int32_t ids[1 << 16];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ifp_err_t err = {0};
    ifp_gguf_t *g = NULL;
    ifp_config_t c;
    if (ifp_gguf_open(ifp_fuzz_source_path("models/ifp-mix/ifp-mix.gguf"), &g, &err) ||
        ifp_config_from_gguf(g, &c, &err) || ifp_tokenizer_from_gguf(g, &tok, &err)) {
        fprintf(stderr, "fuzz_wire_client: %s\n", err.msg);
        return 1;
    }
    ifp_gguf_close(&g);
    /* as rt_router_new sets them (router/router.c), with deploy/local.ini's values */
    size_t longest = 1;
    for (int i = 0; i < ifp_tokenizer_n_vocab(tok); i++) {
        const char *p = ifp_tokenizer_raw_piece(tok, i);
        if (p && strlen(p) > longest) longest = strlen(p);
    }
    lim = (rt_limits_t){.vocab = c.vocab, .ctx = c.ctx, .max_tokens = 128, .max_tokens_limit = 4096,
                        .max_prompt_bytes = (size_t)c.ctx * longest + 16, .have_predictor = 1};
    front_max_valid = 16 + (RT_ID_MAX + 8) + (lim.max_prompt_bytes + 8) + 6 * (size_t)c.ctx + 8 +
                      RT_MAX_STOP * (RT_STOP_MAX + 4) + (RT_TASK_MAX + 8) + 128;
    return 0;
}

static ProtobufCMessage *decode(const void *p, size_t n) {
    Ifp__ClientMessage *m = ifp_wire_client_msg(p, n);
    return m ? &m->base : NULL;
}

static void admit(const Ifp__Request *q) {
    char msg[256];
    for (int have_predictor = 0; have_predictor < 2; have_predictor++) {
        rt_limits_t l = lim;
        l.have_predictor = have_predictor;
        msg[0] = '\0';
        int rc = rt_admit_check(q, &l, msg, sizeof msg);
        FUZZ_CHECK(rc == 0 || rc == -1, "rt_admit_check returned %d", rc);
        if (rc) {
            size_t n = strnlen(msg, sizeof msg);
            FUZZ_CHECK(n > 0 && n < sizeof msg, "refused without a message");
            FUZZ_CHECK(strchr(msg, ':') != NULL, "message '%s' is not \"field: problem\"", msg);
            continue;
        }
        /* what an admitted request promises the rest of the router */
        FUZZ_CHECK(q->id && *q->id && strlen(q->id) <= RT_ID_MAX, "admitted a bad id");
        FUZZ_CHECK(q->n_stop <= RT_MAX_STOP, "admitted %zu stop strings", q->n_stop);
        for (size_t i = 0; i < q->n_stop; i++)
            FUZZ_CHECK(strlen(q->stop[i]) >= 1 && strlen(q->stop[i]) <= RT_STOP_MAX, "admitted stop[%zu]", i);
        FUZZ_CHECK(q->max_tokens <= (uint32_t)l.max_tokens_limit, "admitted max_tokens %u", q->max_tokens);
        for (size_t i = 0; i < q->n_prompt_tokens; i++)
            FUZZ_CHECK(q->prompt_tokens[i] >= 0 && q->prompt_tokens[i] < l.vocab, "admitted token %d",
                       q->prompt_tokens[i]);
        /* the router tokenizes a text prompt with BOS (clients.c) */
        int n_prompt = (int)q->n_prompt_tokens;
        if (!n_prompt) {
            n_prompt = ifp_tokenizer_encode(tok, q->prompt, 1, ids, (int)(sizeof ids / sizeof *ids));
            FUZZ_CHECK(n_prompt >= 1, "encode of an admitted prompt: %d", n_prompt);
        }
        int max_new = -1;
        msg[0] = '\0';
        if (rt_admit_fit(&l, n_prompt, q->max_tokens, &max_new, msg, sizeof msg) == 0)
            FUZZ_CHECK(max_new >= 1 && n_prompt + max_new <= l.ctx, "fit: %d prompt + %d new > ctx %d", n_prompt,
                       max_new, l.ctx);
        else
            FUZZ_CHECK(msg[0] != '\0', "fit refused without a message");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifp_fuzz_split_t s;
    ifp_fuzz_split_frames(data, size, &s);
    ifp_frames_t f;
    ifp_fuzz_recv_frames(&s, &f);
    /* rt_on_client: [identity][body] from a DEALER, [identity][""][body] from a REQ */
    int delim = f.n == 3 && ifp_frame_size(&f, 1) == 0;
    if (f.truncated || (f.n != 2 && !delim)) goto out;
    int body = delim ? 2 : 1;
    const void *p = ifp_frame_data(&f, body);
    size_t len = ifp_frame_size(&f, body);
    if (len > front_max_valid) goto out; /* refused unread */
    Ifp__ClientMessage *m = ifp_wire_client_msg(p, len);
    if (!m) goto out;
    ifp_fuzz_pb_walk(&m->base);
    ifp_fuzz_pb_roundtrip(&m->base, decode);
    if (ifp_fuzz_pb_check_text(&m->base, p, len) == 0) { /* else refused naming the field */
        switch (m->msg_case) {
        case IFP__CLIENT_MESSAGE__MSG_REQUEST: admit(m->request); break;
        case IFP__CLIENT_MESSAGE__MSG_CANCEL: ifp_fuzz_touch_str(m->cancel->id); break;
        case IFP__CLIENT_MESSAGE__MSG_PING: ifp_fuzz_touch_str(m->ping->id); break;
        default: FUZZ_CHECK(0, "ifp_wire_client_msg returned a message with case %d", (int)m->msg_case);
        }
    }
    ifp__client_message__free_unpacked(m, NULL);
out:
    ifp_frames_close(&f);
    return 0;
}
