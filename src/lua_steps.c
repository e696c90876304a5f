/* lua_steps.c - the dispatch steps that run Lua: the before hooks, the routes that
 * match, 405 for a path routed for other methods, and the after hooks; which hook or
 * route runs next, and going on with a paused one. A handler or hook runs for one
 * time slice at a time (lh_resp_run_handler, lh_call_run_slice). See lua_host.h. */
#include "lua_int.h"

#include "front.h"

#include <lauxlib.h>
#include <lua.h>

#include <string.h>

/* Push the next hook of the list at key, and the request, for ctx; false (nothing
 * pushed, the index reset) at the end of the list. */
static bool push_next_hook(struct lh_lua *lua, struct lh_ctx *ctx, const void *key,
                           const char *kind)
{
    lua_State *L = lua->L;
    if ((key == &lh_host_key_before ? lua->nbefore : lua->nafter) == 0)
        return false;
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_rawgeti(L, -1, ++ctx->lua_index);
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        ctx->lua_index = 0;
        return false;
    }
    lh_req_push_object(lua, ctx);
    ctx->what_kind = kind;
    ctx->what_method = ctx->what_pattern = NULL;
    ctx->what_route = 0;
    ctx->what_index = ctx->lua_index;
    return true;
}

/* Run the before hooks from ctx->lua_index on, or go on with a paused one. */
enum lh_step lh_lua_before(struct lh_lua *lua, struct lh_ctx *ctx)
{
    for (;;) {
        enum lh_step r;
        if (ctx->co_ref != LUA_NOREF)
            r = lh_resp_run_handler(lua, ctx, 0);
        else if (push_next_hook(lua, ctx, &lh_host_key_before, "before"))
            r = lh_resp_run_handler(lua, ctx, 1);
        else
            return LH_DECLINED;
        if (r != LH_DECLINED) {
            if (r == LH_ANSWERED)
                ctx->lua_index = 0;
            return r;
        }
    }
}

/* Finds the route after the `skip` already tried and pushes its handler and req. */
struct visit {
    struct lh_lua *lua;
    struct lh_ctx *ctx;
    int seen, skip;
    bool found;
};

static bool visit_route(void *ud, const struct lh_route_match *m)
{
    struct visit *v = ud;
    if (v->seen++ < v->skip)
        return false;
    lh_req_set_params(v->lua, v->ctx, m);
    v->ctx->what_kind = "route";
    v->ctx->what_method = m->method;
    v->ctx->what_pattern = m->pattern;
    v->ctx->what_route = m->handler;
    if (lh_route_answers_json(v->lua, m->handler))
        v->ctx->json_route = true;
    lua_State *L = v->lua->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, v->lua->routes_ref);
    lua_rawgeti(L, -1, m->handler);
    lua_remove(L, -2);
    lh_req_push_object(v->lua, v->ctx);
    v->found = true;
    return true;
}

/* The request's method as a C string (cut to 31 bytes) in buf. */
static const char *method_of(const struct lh_ctx *ctx, char buf[32])
{
    size_t n = ctx->req->method_len < 32 ? ctx->req->method_len : 31;
    memcpy(buf, ctx->req->method, n);
    buf[n] = '\0';
    return buf;
}

enum lh_step lh_lua_route(struct lh_lua *lua, struct lh_ctx *ctx)
{
    if (lh_router_count(lua->router) == 0)
        return LH_DECLINED;
    char buf[32];
    const char *method = method_of(ctx, buf);
    for (;;) {
        enum lh_step r;
        if (ctx->co_ref != LUA_NOREF) {
            r = lh_resp_run_handler(lua, ctx, 0);
        } else {
            /* the walk is deterministic: skip the routes that already declined;
             * the Allow list is made only for a 405 (lh_lua_method_not_allowed) */
            struct visit v = {.lua = lua, .ctx = ctx, .skip = ctx->lua_index};
            lh_router_match(lua->router, method, ctx->path, visit_route, &v,
                            &ctx->route_matched, NULL, 0);
            if (!v.found) {
                ctx->lua_index = 0;
                return LH_DECLINED;
            }
            ctx->lua_index++;
            r = lh_resp_run_handler(lua, ctx, 1);
        }
        if (r != LH_DECLINED) {
            if (r == LH_ANSWERED)
                ctx->lua_index = 0;
            return r;
        }
    }
}

/* A route whose pattern matches, of any method, that has answered JSON: stop. */
static bool visit_json(void *ud, const struct lh_route_match *m)
{
    return lh_route_answers_json(ud, m->handler);
}

enum lh_step lh_lua_method_not_allowed(struct lh_lua *lua, struct lh_ctx *ctx)
{
    /* a route of this method ran and passed the request on: on to 404, not 405 */
    if (!ctx->route_matched || ctx->what_route)
        return LH_DECLINED;
    char buf[32]; /* the routes whose pattern matched, all of them this time */
    lh_router_match(lua->router, method_of(ctx, buf), ctx->path, NULL, NULL, NULL,
                    ctx->allow, sizeof ctx->allow);
    if (!ctx->allow[0])
        return LH_DECLINED;
    lh_response_error(ctx->resp, 405);
    lh_response_header(ctx->resp, "Allow", ctx->allow);
    /* the path's other routes answer JSON: so does this error */
    if (lua->any_route_json &&
        lh_router_match(lua->router, NULL, ctx->path, visit_json, lua, NULL, NULL, 0))
        ctx->json_route = true;
    return LH_ANSWERED;
}

enum lh_step lh_lua_after(struct lh_lua *lua, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    if (!ctx->in_after) { /* the hooks see every response, a 503 for a timeout too */
        ctx->in_after = true;
        ctx->handler_ns = ctx->lua_ns; /* a streamed body's calls go on from it */
        ctx->lua_ns = 0;
        ctx->charge_wait = false;
    }
    for (;;) {
        int nres = 0;
        enum lh_call_result r;
        if (ctx->co_ref != LUA_NOREF) {
            r = lh_call_run_slice(lua, ctx, 0, &nres);
        } else {
            if (!push_next_hook(lua, ctx, &lh_host_key_after, "after"))
                return LH_ANSWERED;
            lh_resp_push_res(L, ctx->resp);
            lua_pushvalue(L, -1);
            luaL_unref(L, LUA_REGISTRYINDEX, ctx->res_ref);
            ctx->res_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            r = lh_call_run_slice(lua, ctx, 2, &nres);
        }
        if (r == LH_CALL_YIELD)
            return LH_SUSPENDED;
        if (r == LH_CALL_OK) {
            lua_pop(L, nres);
            lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->res_ref);
            if (!lh_resp_apply_res(lua, ctx, lua_gettop(L), ctx->resp))
                r = LH_CALL_ERROR;
            lua_pop(L, 1);
        }
        if (r != LH_CALL_OK) { /* the 500 (or 503) goes out without the later hooks */
            lh_resp_answer_failure(ctx, r);
            lh_front_dress(ctx); /* its body for the client, CORS: as for any answer */
            ctx->lua_index = 0;
            return LH_ANSWERED;
        }
    }
}
