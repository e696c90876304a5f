/* dispatch.h - one parsed request through the chain of steps that may answer it:
 * (before hooks and Lua routes come here later), static files, then 404. */
#ifndef LH_DISPATCH_H
#define LH_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "response.h"
#include "static.h"

struct lh_ctx {
    const struct lh_request *req;
    struct lh_response *resp;     /* filled by lh_dispatch */
    const struct lh_static *st;
    const char *body;             /* the request body (decoded), body_len bytes */
    size_t body_len;
    const char *remote_addr;      /* client IP, NUL-terminated */
    char *path;                   /* scratch of pathcap bytes; holds the normalised path */
    size_t pathcap;               /* at least target_len + 2 */
    const char *query;            /* raw query string after '?', NULL when none */
    size_t query_len;
};

/* Answer ctx->req into ctx->resp. Never fails: a refusal is an error response. */
void lh_dispatch(struct lh_ctx *ctx);

#endif
