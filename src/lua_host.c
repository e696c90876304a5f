/* lua_host.c - a worker's Lua state: made by running config.lua with the standard
 * libraries (guarded by lua_sandbox.c), json and the functions config.lua calls
 * (route, before, after, log) installed, and freed; the small queries about it. See
 * lua_host.h, and lua_int.h for the files that do the rest. */
#include "lua_int.h"

#include "log.h"
#include "lua_coro.h"
#include "lua_json.h"
#include "lua_shared.h"
#include "lua_sql.h"
#include "lua_timer.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Registry slots of the host (light userdata keys); see lua_int.h. */
const char lh_host_key_before, lh_host_key_after, lh_host_key_decode;
static const char key_host;

/* ---- functions config.lua calls -------------------------------------------------------- */

static int api_route(lua_State *L)
{
    struct lh_lua *lua = lh_host_of(L);
    const char *method = luaL_checkstring(L, 1);
    const char *pattern = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->routes_ref);
    lua_Integer id = luaL_len(L, -1) + 1;
    char err[256];
    if (lh_router_add(lua->router, method, pattern, (int)id, err, sizeof err) < 0)
        return luaL_error(L, "route(\"%s\", \"%s\"): %s", method, pattern, err);
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, id);
    return 0;
}

static int add_hook(lua_State *L, const void *key)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, luaL_len(L, -2) + 1);
    struct lh_lua *lua = lh_host_of(L);
    (*(key == &lh_host_key_before ? &lua->nbefore : &lua->nafter))++;
    return 0;
}

static int api_before(lua_State *L) { return add_hook(L, &lh_host_key_before); }
static int api_after(lua_State *L) { return add_hook(L, &lh_host_key_after); }

/* log(...): its arguments, tostring'ed and tab-separated, to the error log. */
static int api_log(lua_State *L)
{
    int n = lua_gettop(L); /* before luaL_buffinit, which may push a placeholder */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    char msg[LH_LOG_MSG_MAX];
    lh_log_str(msg, sizeof msg, text, len); /* escaped by length: it may hold a NUL */
    lua_Debug ar;
    int line = lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) ? ar.currentline : 0;
    const char *where = line > 0 ? ar.short_src : "?";
    const struct lh_ctx *ctx = lh_host_of(L)->running;
    char what[160];
    if (ctx && !ctx->req->method_len) /* a timer: no request */
        lh_log_error("info", "lua: %s:%d: [%s] %s", where, line,
                     lh_call_describe(ctx, what, sizeof what), msg);
    else if (ctx)
        lh_log_error("info", "lua: %s:%d: [%s] [%.*s %s] %s", where, line,
                     lh_call_describe(ctx, what, sizeof what),
                     (int)ctx->req->method_len, ctx->req->method, ctx->path, msg);
    else
        lh_log_error("info", "lua: %s:%d: %s", where, line, msg);
    return 0;
}

/* ---- the state -------------------------------------------------------------------------- */

/* Protected: the standard libraries, guarded (lua_sandbox.c), and our API; the
 * argument (light userdata) is the config file's folder, for sql.open. */
static int install_api(lua_State *L)
{
    const char *dir = lua_touserdata(L, 1);
    luaL_openlibs(L);
    lh_lua_coro_install(L);
    lh_sandbox_guard_libs(L);
    luaL_requiref(L, "json", lh_luaopen_json, 1);
    /* encode and decode for returned tables and req:json(), whatever the global json
     * becomes */
    lua_getfield(L, -1, "encode");
    lh_host_of(L)->encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lh_json_push_cjson_encode(L, -1);
    lh_host_of(L)->cjson_encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "decode");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lh_host_key_decode);
    lh_shared_install(L, -1);
    lua_pop(L, 1);
    lh_sql_install(L, dir,
                   &(struct lh_sql_host){.over_time = lh_call_over_time, .owner = lh_call_owner});
    lua_register(L, "route", api_route);
    lua_register(L, "before", api_before);
    lua_register(L, "after", api_after);
    lua_register(L, "log", api_log);
    lh_wait_install(L);
    lh_http_install(L, dir);
    lh_timer_install(L);
    lh_resp_install_helpers(L);
    lua_newtable(L);
    lh_host_of(L)->routes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lh_host_key_before);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lh_host_key_after);
    lh_req_create_meta(L);
#ifdef LH_FUZZING
    /* tests/fuzz/fuzz_config.c runs generated config.lua files: take away everything
     * that reaches the machine (files, processes, C modules, the registry); the
     * guards already keep binary chunks out */
    static const char *const gone[] = {"io", "os", "package", "require", "dofile",
                                       "loadfile", "debug", NULL};
    for (const char *const *g = gone; *g; g++) {
        lua_pushnil(L);
        lua_setglobal(L, *g);
    }
#endif
    return 0;
}

/* The absolute folder of the config file at path (of the working folder without
 * one), as far as realpath can tell; else the folder as written. */
static void config_folder(const char *path, char *dir, size_t size)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    char folder[PATH_MAX];
    if (!slash)
        snprintf(folder, sizeof folder, ".");
    else
        snprintf(folder, sizeof folder, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (!realpath(folder, dir))
        snprintf(dir, size, "%s", folder);
}

struct lh_lua *lh_lua_new(const char *path, struct lh_config *c, bool dev, char *err,
                          size_t errlen)
{
    struct lh_lua *lua = calloc(1, sizeof *lua);
    if (!lua)
        goto oom;
    lua->spare_ref = lua->req_meta_ref = lua->spare_req_ref = LUA_NOREF;
    lua->routes_ref = lua->encode_ref = lua->cjson_encode_ref = LUA_NOREF;
    lua->dev = dev;
    lua->router = lh_router_new();
    lua->L = lh_alloc_new_state(lua);
    if (!lua->router || !lua->L)
        goto oom;
    lua_pushlightuserdata(lua->L, lua);
    lua_rawsetp(lua->L, LUA_REGISTRYINDEX, &key_host);
    char dir[PATH_MAX];
    config_folder(path, dir, sizeof dir);
    lua_pushcfunction(lua->L, install_api);
    lua_pushlightuserdata(lua->L, dir);
    if (lua_pcall(lua->L, 1, 0, 0) != LUA_OK)
        goto oom;
    /* config.lua runs under the memory limit it is about to set: the default */
    lua->mem_limit = 64u << 20;
    lh_call_begin_config(lua);
    int rc = path ? lh_config_load_in(c, path, lua->L, err, errlen) : lh_config_defaults(c);
    lh_call_end_config(lua);
    if (rc < 0) {
        lh_lua_free(lua);
        return NULL;
    }
    lua->nroute_json = lh_router_count(lua->router) + 1;
    lua->route_json = calloc(lua->nroute_json, sizeof *lua->route_json);
    if (!lua->route_json)
        goto oom;
    lua->timeout_ms = c->limits.handler_timeout_ms;
    lua->timeout_ns = c->limits.handler_timeout_ms * 1000000LL;
    lua->path_max = (size_t)c->limits.header_bytes;
    lua->mem_limit = (size_t)c->limits.lua_memory_mb << 20;
#ifndef LH_FUZZING
    lua->unsafe = c->unsafe_libs;
#endif
    if (lua->unsafe)
        lh_sandbox_unguard_libs(lua->L);
    lua_gc(lua->L, LUA_GCCOLLECT);
    return lua;
oom:
    snprintf(err, errlen, "%s: not enough memory for a Lua state",
             path ? path : "(built-in defaults)");
    lh_config_free(c);
    lh_lua_free(lua);
    return NULL;
}

void lh_lua_free(struct lh_lua *lua)
{
    if (!lua)
        return;
    lh_timer_free(lua); /* before the state goes: the timers hold registry slots */
    if (lua->L)
        lua_close(lua->L);
    lh_alloc_free_chunks(lua);
    lh_router_free(lua->router);
    free(lua->route_json);
    free(lua);
}

struct lh_ctx *lh_lua_running(lua_State *L)
{
    return lh_host_of(L)->running;
}

size_t lh_lua_route_count(const struct lh_lua *lua)
{
    return lh_router_count(lua->router);
}

static bool any_match(void *ud, const struct lh_route_match *m) { return true; }

bool lh_lua_has_method(const struct lh_lua *lua, const char *method, size_t len,
                       const char *path)
{
    return lua && (lh_router_has_method(lua->router, method, len) ||
                   lh_router_match(lua->router, "*", path, any_match, NULL, NULL, NULL, 0));
}
