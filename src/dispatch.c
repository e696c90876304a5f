/* dispatch.c - the chain of steps that answer a request. See dispatch.h. */
#include "dispatch.h"

#include "front.h"
#include "lua_host.h"
#include "path.h"

#include <lauxlib.h> /* LUA_NOREF */

#include <string.h>

/* A step answers (fills ctx->resp), declines, or pauses (a Lua handler will go on
 * later: the same step is called again). One signature, so the chain is a table. */
typedef enum lh_step (*step_fn)(struct lh_ctx *ctx);

static enum lh_step step_start(struct lh_ctx *ctx);

/* Before hooks. A rewrite of req.path is normalised as the hook assigns it
 * (lua_req.c); one that was refused answers here, as a client asking for that path
 * would be answered, unless a hook answered itself. */
static enum lh_step step_before(struct lh_ctx *ctx)
{
    enum lh_step r = lh_lua_before(ctx->lua, ctx);
    if (r != LH_DECLINED || !ctx->rewrite_refused)
        return r;
    lh_response_error(ctx->resp, ctx->rewrite_refused);
    return LH_ANSWERED;
}

static enum lh_step step_routes(struct lh_ctx *ctx) { return lh_lua_route(ctx->lua, ctx); }

static enum lh_step step_static(struct lh_ctx *ctx)
{
    return lh_static_serve(ctx->st, ctx->fcache, ctx->path, ctx->query, ctx->query_len,
                           ctx->req, ctx->resp)
               ? LH_ANSWERED
               : LH_DECLINED;
}

static enum lh_step step_method_not_allowed(struct lh_ctx *ctx)
{
    return lh_lua_method_not_allowed(ctx->lua, ctx);
}

static enum lh_step step_not_found(struct lh_ctx *ctx)
{
    lh_static_not_found(ctx->st, ctx->fcache, ctx->resp);
    return LH_ANSWERED;
}

/* Until one answers; then the answer goes through the last step, which dresses it
 * (front.h: error bodies for the client, CORS headers) for the after hooks to see. */
static const step_fn chain[] = {
    step_start,  lh_front_preflight,      step_before,       step_routes,
    step_static, step_method_not_allowed, lh_front_fallback, step_not_found,
    lh_front_dress,
};
#define NSTEPS ((int)(sizeof chain / sizeof chain[0]))
#define DRESS (NSTEPS - 1)

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
    size_t alen;
    const char *auth = lh_http_target_authority(t, n, &alen);
    if (!auth || alen == 0)
        return NULL;
    const char *p = auth + alen, *end = t + n;
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

/* What every request goes through first: OPTIONS *, the target and its path, 501. */
static enum lh_step step_start(struct lh_ctx *ctx)
{
    const struct lh_request *req = ctx->req;
    struct lh_response *resp = ctx->resp;
    if (req->target_len == 1 && req->target[0] == '*' && is_method(req, "OPTIONS")) {
        lh_response_init(resp, 204);
        lh_response_header(resp, "Allow", "GET, HEAD, OPTIONS");
        return LH_ANSWERED;
    }
    size_t len;
    const char *target = target_path(req, &len);
    if (!target) {
        lh_response_error(resp, 400);
        resp->close = true;
        return LH_ANSWERED;
    }
    size_t path_len;
    lh_path_split(target, len, &path_len, &ctx->query, &ctx->query_len);
    int st = lh_path_normalize(target, path_len, ctx->pathbuf, ctx->pathcap);
    if (st != 0) {
        lh_response_error(resp, st);
        /* a bad %-escape is a malformed request (CONTRACT 5): closed, as the parser's
         * refusals are; a 403 or 404 is an answer like any other */
        resp->close = st == 400;
        return LH_ANSWERED;
    }
    ctx->path = ctx->pathbuf;
    if (!lh_http_method_known(req->method, req->method_len) &&
        !lh_lua_has_method(ctx->lua, req->method, req->method_len, ctx->path)) {
        lh_response_error(resp, 501);
        return LH_ANSWERED;
    }
    return LH_DECLINED;
}

void lh_dispatch_init(struct lh_ctx *ctx)
{
    ctx->path = "/";
    ctx->rewrite_refused = 0;
    ctx->step = 0;
    ctx->lua_index = 0;
    ctx->co_ref = ctx->req_ref = ctx->res_ref = LUA_NOREF;
    ctx->co = ctx->wrapped_co = NULL;
    ctx->bad_json = NULL;
    ctx->lua_ns = 0;
    ctx->route_matched = ctx->timed_out = ctx->hook_paused = ctx->charge_wait = false;
    ctx->in_after = ctx->wait_asked = false;
    ctx->wait_ns = 0;
    ctx->wait_op = ctx->wait_held = NULL;
    ctx->head_length = -1;
    ctx->allow[0] = '\0';
    ctx->dev_error = ctx->err_detail = ctx->err_trace = NULL;
    ctx->err_status = 0;
    ctx->json_route = false;
    ctx->what_route = 0;
    ctx->stream_ref = LUA_NOREF;
    ctx->handler_ns = 0;
    ctx->stream_started = false;
    lh_response_init(ctx->resp, 200);
}

static void finish(struct lh_ctx *ctx)
{
    lh_lua_request_done(ctx->lua, ctx); /* and what it kept of a failure */
}

enum lh_step lh_dispatch(struct lh_ctx *ctx)
{
    while (ctx->step < NSTEPS) {
        enum lh_step r = chain[ctx->step](ctx);
        if (r == LH_SUSPENDED)
            return LH_SUSPENDED;
        ctx->step = r == LH_DECLINED ? ctx->step + 1 : ctx->step < DRESS ? DRESS : NSTEPS;
    }
    if (lh_lua_after(ctx->lua, ctx) == LH_SUSPENDED)
        return LH_SUSPENDED;
    /* HEAD: every step answers as for GET; the body is left out here, in one place
     * (a streamed body's function is then never called) */
    ctx->resp->no_body = is_method(ctx->req, "HEAD");
    if (!lh_response_streams(ctx->resp))
        finish(ctx);
    return LH_ANSWERED;
}

void lh_dispatch_abort(struct lh_ctx *ctx)
{
    finish(ctx);
}
