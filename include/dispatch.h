/* dispatch.h - one parsed request through the chain of steps that may answer it:
 * before hooks, Lua routes, static files, 405 for a routed path with another method,
 * 404; then the after hooks see the response. */
#ifndef LH_DISPATCH_H
#define LH_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "response.h"
#include "static.h"

struct lh_lua;

struct lh_ctx {
    const struct lh_request *req;
    struct lh_response *resp;     /* filled by lh_dispatch */
    const struct lh_static *st;
    struct lh_lua *lua;           /* the worker's Lua state */
    const char *body;             /* the request body (decoded), body_len bytes */
    size_t body_len;
    const char *remote_addr;      /* client IP, NUL-terminated */
    bool dev_loopback;            /* --dev and the client is this machine: error detail */
    char *pathbuf;                /* scratch of pathcap bytes (at least target_len + 2) */
    size_t pathcap;
    /* set while dispatching */
    const char *path;             /* the normalised path; a before hook may rewrite it */
    const char *query;            /* raw query string after '?', NULL when none */
    size_t query_len;
    bool route_matched;           /* a route's pattern matched the path */
    bool bad_json;                /* req:json() failed: the error is the client's (400) */
    char allow[128];              /* methods of the routes whose pattern matched */
    char *dev_error;              /* --dev: the last Lua error with its traceback */
};

/* Answer ctx->req into ctx->resp. Never fails: a refusal is an error response. */
void lh_dispatch(struct lh_ctx *ctx);

#endif
