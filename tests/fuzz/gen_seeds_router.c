/* gen_seeds_router.c — seed inputs of fuzz_router: conversations between
 * clients, the router and its two groups (g0: cluster 0, two stages; g1:
 * dense) in fuzz_router's input format, written from real protobuf-c
 * messages.  The router of fuzz_router gives the requests of each input the
 * rids 1000, 1001, ... and the epoch 77, so the group messages here can
 * name them. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

typedef void (*put_fn)(const char *target, const char *name, const void *data, size_t len);

enum { CLIENT = 0, G0 = 1, G0_OUT = 2, G1 = 3, DELIM = 4, STRANGER = 8 };

typedef struct {
    uint8_t buf[8192];
    size_t len;
    int n;
} conv_t;

/* Appends one message (header, 16-bit length, body). */
static void add(conv_t *c, int hdr, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    if (c->len + 3 + n > sizeof c->buf) abort();
    c->buf[c->len++] = (uint8_t)hdr;
    c->buf[c->len++] = (uint8_t)(n & 0xff);
    c->buf[c->len++] = (uint8_t)(n >> 8);
    protobuf_c_message_pack(m, c->buf + c->len);
    c->len += n;
    c->n++;
}

static void put_conv(put_fn put, const char *name, conv_t *c) {
    c->buf[0] = (uint8_t)(c->n - 1); /* messages - 1 (at most 8) */
    put("fuzz_router", name, c->buf, c->len);
}

static void conv_init(conv_t *c) {
    c->len = 1;
    c->n = 0;
}

static void request(conv_t *c, int hdr, const char *id, Ifp__MaskMode mode, int stream, const char *prompt,
                    const int32_t *ids, size_t n_ids) {
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = (char *)id;
    q.prompt = (char *)(prompt ? prompt : "");
    q.prompt_tokens = (int32_t *)ids;
    q.n_prompt_tokens = n_ids;
    q.max_tokens = 4;
    q.temperature = 0.7f;
    q.seed = 9;
    q.mask_mode = mode;
    q.stream = stream;
    static char *stops[] = {"\n\n"};
    q.n_stop = 1;
    q.stop = stops;
    Ifp__ClientMessage m = IFP__CLIENT_MESSAGE__INIT;
    m.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &q;
    add(c, hdr, &m.base);
}

static void tokens(conv_t *c, int hdr, uint64_t rid, uint32_t first, int n, int finish) {
    Ifp__GroupToken t[8], *tp[8];
    for (int i = 0; i < n && i < 8; i++) {
        ifp__group_token__init(&t[i]);
        t[i].rid = rid;
        t[i].index = first + (uint32_t)i;
        t[i].token = 300 + i;
        t[i].logprob = -0.5f;
        t[i].finish = i == n - 1 ? (Ifp__FinishReason)finish : IFP__FINISH_REASON__FINISH_NONE;
        tp[i] = &t[i];
    }
    Ifp__TokenBatch b = IFP__TOKEN_BATCH__INIT;
    b.n_tokens = (size_t)n;
    b.tokens = tp;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_TOKENS;
    m.tokens = &b;
    add(c, hdr, &m.base);
}

static void heartbeat(conv_t *c, int hdr, const char *name, int cluster, uint64_t *running, size_t n_running,
                      uint64_t finished_rid, uint64_t seen, uint64_t incarnation) {
    Ifp__Finished f = IFP__FINISHED__INIT, *fp = &f;
    f.rid = finished_rid;
    f.tokens = 4;
    Ifp__Heartbeat hb = IFP__HEARTBEAT__INIT;
    hb.group = (char *)name;
    hb.cluster = cluster;
    hb.stages = 2;
    hb.slots = 4;
    hb.free_slots = 3;
    hb.queued_tokens = 40;
    hb.incarnation = incarnation;
    hb.running = running;
    hb.n_running = n_running;
    if (finished_rid) hb.finished = &fp, hb.n_finished = 1;
    hb.work_seen = seen;
    hb.router_epoch = seen ? 77 : 0; /* fuzz_router's router epoch */
    hb.tokens_generated = 12;
    Ifp__GroupToRouter m = IFP__GROUP_TO_ROUTER__INIT;
    m.msg_case = IFP__GROUP_TO_ROUTER__MSG_HEARTBEAT;
    m.heartbeat = &hb;
    add(c, hdr, &m.base);
}

void gen_seeds_router(put_fn put) {
    static const int32_t ids[] = {1, 400, 401, 402, 403};
    conv_t c;
    /* a ping */
    conv_init(&c);
    Ifp__Ping p = IFP__PING__INIT;
    p.id = "status";
    Ifp__ClientMessage pm = IFP__CLIENT_MESSAGE__INIT;
    pm.msg_case = IFP__CLIENT_MESSAGE__MSG_PING;
    pm.ping = &p;
    add(&c, CLIENT, &pm.base);
    put_conv(put, "ping.bin", &c);
    /* a dense request on g1, answered in two batches */
    conv_init(&c);
    request(&c, CLIENT, "d1", IFP__MASK_MODE__MASK_DENSE, 1, NULL, ids, 5);
    tokens(&c, G1, 1000, 0, 2, 0);
    tokens(&c, G1, 1000, 2, 2, IFP__FINISH_REASON__FINISH_LENGTH);
    put_conv(put, "dense-answered.bin", &c);
    /* an input-mask request (the predictor), its tokens from g0's last stage */
    conv_init(&c);
    request(&c, CLIENT | DELIM, "m1", IFP__MASK_MODE__MASK_INPUT, 0, "Question: What is 2+3?\nAnswer:", NULL, 0);
    uint64_t run1[] = {1000};
    heartbeat(&c, G0, "g0", 0, run1, 1, 0, 1, 5);
    tokens(&c, G0_OUT, 1000, 0, 4, IFP__FINISH_REASON__FINISH_LENGTH);
    put_conv(put, "input-answered.bin", &c);
    /* a task mask, then a cancel */
    conv_init(&c);
    Ifp__Request q = IFP__REQUEST__INIT;
    q.id = "t1";
    q.prompt = "Once upon a time";
    q.mask_mode = IFP__MASK_MODE__MASK_TASK;
    q.task = "Write a short story.";
    q.deadline_ms = 5;
    Ifp__ClientMessage qm = IFP__CLIENT_MESSAGE__INIT;
    qm.msg_case = IFP__CLIENT_MESSAGE__MSG_REQUEST;
    qm.request = &q;
    add(&c, CLIENT, &qm.base);
    Ifp__Cancel cx = IFP__CANCEL__INIT;
    cx.id = "t1";
    Ifp__ClientMessage cm = IFP__CLIENT_MESSAGE__INIT;
    cm.msg_case = IFP__CLIENT_MESSAGE__MSG_CANCEL;
    cm.cancel = &cx;
    add(&c, CLIENT, &cm.base);
    put_conv(put, "task-cancel.bin", &c);
    /* lost work: g1 saw the Work (work_seen 1) and lists nothing; then a gap */
    conv_init(&c);
    request(&c, CLIENT, "l1", IFP__MASK_MODE__MASK_DENSE, 1, NULL, ids, 5);
    heartbeat(&c, G1, "g1", -1, NULL, 0, 0, 1, 5);
    tokens(&c, G1, 1000, 3, 1, 0);
    put_conv(put, "lost-and-gap.bin", &c);
    /* orphans and a restart: g0 lists rids it should not hold, a new incarnation */
    conv_init(&c);
    request(&c, CLIENT, "o1", IFP__MASK_MODE__MASK_DENSE, 0, NULL, ids, 5);
    uint64_t orphans[] = {424242, 1000, 7};
    heartbeat(&c, G0, "g0", 0, orphans, 3, 1000, 0, 6);
    heartbeat(&c, G1, "g1", -1, NULL, 0, 1000, 1, 9);
    put_conv(put, "orphans-restart.bin", &c);
    /* a work error and a stranger */
    conv_init(&c);
    request(&c, CLIENT, "e1", IFP__MASK_MODE__MASK_DENSE, 1, NULL, ids, 5);
    Ifp__WorkError we = IFP__WORK_ERROR__INIT;
    we.rid = 1000;
    we.message = "out of KV blocks";
    Ifp__GroupToRouter wm = IFP__GROUP_TO_ROUTER__INIT;
    wm.msg_case = IFP__GROUP_TO_ROUTER__MSG_ERROR;
    wm.error = &we;
    add(&c, G1, &wm.base);
    heartbeat(&c, G1 | STRANGER, "zz", -1, NULL, 0, 0, 0, 1);
    put_conv(put, "work-error.bin", &c);
}
