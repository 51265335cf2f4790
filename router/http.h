/* http.h — ifp-router's HTTP front door: the OpenAI-compatible API
 * (POST /v1/completions, POST /v1/chat/completions with Server-Sent Events
 * streaming, GET /v1/models), GET /metrics (Prometheus), GET /health and
 * GET /ready.  docs/HTTP.md is the user's page.
 *
 *   HTTP clients ──TCP──▶ libmicrohttpd (epoll, suspend/resume) ┐ the gateway's thread
 *                                      DEALER ──inproc bridge──▶ ROUTER hsock ─ the router's loop
 *
 * The gateway runs in a thread of its own: it parses and checks the JSON
 * (router/oai.h), checks the API key, and hands the router's loop an
 * ifp.ClientMessage over an inproc socket, the same message a ZeroMQ client
 * sends; the loop never touches HTTP and never blocks on it.  A request's
 * connection is suspended until its answer (or, streaming, each token)
 * comes back over the bridge.  A client that goes away (the connection
 * closes, or it is found closed while its request waits) cancels its
 * request.  Bridge frames (docs/PROTOCOL.md, "The HTTP bridge"):
 *
 *   gateway -> loop: ["Q"][key name][ClientMessage]   a request
 *                    ["X"][request id]                its client went away
 *                    ["M"][tag]                       metrics text, please
 *                    ["H"][tag]                       health, please
 *   loop -> gateway: [ServerMessage]                  for a request
 *                    ["M"][tag][exposition text]
 *                    ["H"][tag]["LIVE READY"]         live groups, 1/0
 *
 * API keys (Authorization: Bearer KEY): a file of `NAME KEY` lines, private
 * to its owner like a secret key ([http] api_keys, default KEYS/api_keys,
 * made by `ifp keygen --config`); NAME is what logs and metrics show, and a
 * NAME that is also a [client NAME] section shares that client's
 * max_inflight.  SIGHUP re-reads the file. */
#ifndef RT_HTTP_H
#define RT_HTTP_H

#include "config.h"
#include "err.h"
#include "oai.h"
#include "tokenizer.h"

typedef struct rt_http rt_http_t;

typedef struct {
    const ifp_config_file_t *cfg; /* [http] settings (copied) */
    void *zctx;                   /* the router's ZeroMQ context */
    const char *bridge;           /* the inproc endpoint of the loop's bridge socket */
    const ifp_tokenizer_t *tok;   /* token strings for logprobs (read only, shared) */
    oai_limits_t lim;             /* model id, limits, chat template */
    const char *keys_dir;         /* where KEYS/api_keys is by default */
    int auth;                     /* API keys required */
} rt_http_params_t;

/* Whether [http] asks for API keys ([http] auth, or auto: when CURVE is on). */
int rt_http_auth(const ifp_config_file_t *cfg);
/* The [http] settings checked without binding anything (--check-config):
 * listen, the loopback rule, the TLS files, the API keys file when auth
 * (*n_keys: its keys; -1 when HTTP is off or needs no keys). */
int rt_http_check(const ifp_config_file_t *cfg, const char *keys_dir, int *n_keys, ifp_err_t *err);
/* Reads the API keys (when auth), binds the listening socket and starts the
 * gateway's thread.  Errors name the setting ("[http] listen 127.0.0.1:8080:
 * Address already in use"). */
int rt_http_new(const rt_http_params_t *p, rt_http_t **out, ifp_err_t *err);
/* Stops the thread: open connections are closed (their requests cancelled). */
void rt_http_destroy(rt_http_t **h);
/* The address:port it listens on (the port is the real one when 0 was asked). */
const char *rt_http_address(const rt_http_t *h);
/* Re-reads the API keys file (SIGHUP); on error the old keys stay. */
int rt_http_reload_keys(rt_http_t *h, ifp_err_t *err);

#endif
