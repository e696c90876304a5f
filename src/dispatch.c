/* dispatch.c - the chain of steps that answer a request. See dispatch.h. */
#include "dispatch.h"

#include "lua_host.h"
#include "path.h"

#include <stdlib.h>
#include <string.h>

/* A step answers (fills ctx->resp, returns true) or declines (returns false). */
typedef bool (*lh_step)(struct lh_ctx *ctx);

static bool step_before(struct lh_ctx *ctx);

static bool step_routes(struct lh_ctx *ctx) { return lh_lua_route(ctx->lua, ctx); }

static bool step_static(struct lh_ctx *ctx)
{
    return lh_static_serve(ctx->st, ctx->path, ctx->query, ctx->query_len, ctx->req,
                           ctx->resp);
}

static bool step_method_not_allowed(struct lh_ctx *ctx)
{
    return lh_lua_method_not_allowed(ctx->lua, ctx);
}

static bool step_not_found(struct lh_ctx *ctx)
{
    lh_static_not_found(ctx->st, ctx->resp);
    return true;
}

static const lh_step chain[] = {step_before, step_routes, step_static,
                                step_method_not_allowed, step_not_found};

/* Before hooks; a rewritten req.path is normalised like a request path, so the
 * docroot confinement holds for rewrites too. */
static bool step_before(struct lh_ctx *ctx)
{
    const char *before = ctx->path;
    if (lh_lua_before(ctx->lua, ctx))
        return true;
    if (ctx->path == before)
        return false;
    size_t len = strlen(ctx->path);
    if (len + 2 > ctx->pathcap) {
        lh_response_error(ctx->resp, 414);
        return true;
    }
    int st = lh_path_normalize(ctx->path, len, ctx->pathbuf, ctx->pathcap);
    if (st != 0) {
        lh_response_error(ctx->resp, st);
        return true;
    }
    ctx->path = ctx->pathbuf;
    return false;
}

/* The path part of an origin-form or absolute-form target; NULL if neither. */
static const char *target_path(const struct lh_request *req, size_t *len)
{
    const char *t = req->target;
    size_t n = req->target_len;
    if (n > 0 && t[0] == '/') {
        *len = n;
        return t;
    }
    /* absolute-form (RFC 9112 3.2.2): scheme "://" authority path-abempty */
    const char *sep = memchr(t, ':', n);
    if (!sep || (size_t)(sep - t) + 3 > n || memcmp(sep, "://", 3) != 0)
        return NULL;
    const char *auth = sep + 3, *end = t + n;
    const char *p = auth;
    while (p < end && *p != '/' && *p != '?')
        p++;
    if (p == auth)
        return NULL;
    if (p == end || *p == '?') {
        *len = 1; /* an empty path is "/"; the query, if any, is dropped */
        return "/";
    }
    *len = (size_t)(end - p);
    return p;
}

static bool is_method(const struct lh_request *req, const char *m)
{
    return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

/* Everything up to and including the chain, before the after hooks. */
static void answer(struct lh_ctx *ctx)
{
    const struct lh_request *req = ctx->req;
    struct lh_response *resp = ctx->resp;
    if (!lh_http_method_known(req->method, req->method_len) &&
        !lh_lua_has_method(ctx->lua, req->method, req->method_len)) {
        lh_response_error(resp, 501);
        return;
    }
    if (req->target_len == 1 && req->target[0] == '*' && is_method(req, "OPTIONS")) {
        lh_response_init(resp, 204);
        lh_response_header(resp, "Allow", "GET, HEAD, OPTIONS");
        return;
    }
    size_t len;
    const char *target = target_path(req, &len);
    if (!target) {
        lh_response_error(resp, 400);
        resp->close = true;
        return;
    }
    size_t path_len;
    lh_path_split(target, len, &path_len, &ctx->query, &ctx->query_len);
    int st = lh_path_normalize(target, path_len, ctx->pathbuf, ctx->pathcap);
    if (st != 0) {
        lh_response_error(resp, st);
        return;
    }
    ctx->path = ctx->pathbuf;
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++)
        if (chain[i](ctx))
            return;
}

void lh_dispatch(struct lh_ctx *ctx)
{
    lh_response_init(ctx->resp, 200);
    ctx->path = "/";
    answer(ctx);
    lh_lua_after(ctx->lua, ctx);
    /* HEAD: every step answers as for GET; the body is left out here, in one place */
    ctx->resp->no_body = is_method(ctx->req, "HEAD");
    lh_lua_request_done(ctx->lua);
    free(ctx->dev_error);
    ctx->dev_error = NULL;
}
