/* lua_wait.c - sleep(seconds), the first call that waits, and the worker table. See
 * lua_int.h.
 *
 * sleep() yields the Lua thread it is called in with lua_yieldk, as a server pause
 * (ctx->hook_paused, as the count hook's: the wait does not count towards
 * handler_timeout_ms, and lua_coro.c passes it up through the handler's own
 * coroutines to ctx->co). It leaves ctx->wait_asked and ctx->wait_ns behind: the
 * server (runq.c) sees them when it parks the request, clears wait_asked and queues
 * the request when a timer of wait_ns has fired, not at the run queue's next turn.
 * When the continuation runs and wait_asked is still set, nobody took the wait: a
 * level between this thread and ctx->co could not pause (lua_coro.c then resumes at
 * once), and sleep raises rather than return early. Where the thread itself cannot
 * yield, sleep raises before it asks, with the best reason it can tell. */
#include "lua_int.h"

#include "lua_sql.h"
#include "wait.h"

#include <lauxlib.h>
#include <lua.h>

#include <math.h>
#include <string.h>

#define WAIT_MAX_SECS 1e9 /* about 31 years: longer is a mistake, and would overflow ns */

int lh_wait_seconds_ns(double secs, int64_t *ns)
{
    if (!(secs >= 0) || !isfinite(secs) || secs > WAIT_MAX_SECS)
        return -1;
    *ns = (int64_t)(secs * 1e9);
    return 0;
}

/* Why L cannot wait now, for "sleep: cannot wait here: <reason>". */
static const char *why_not(lua_State *L, const struct lh_lua *lua, const struct lh_ctx *ctx)
{
    if (!ctx)
        return lua->loading ? "while config.lua loads (wait in handlers, hooks and "
                              "streamed bodies)"
                            : "outside a request";
    if (lua_isyieldable(L) && lh_sql_in_tx(ctx->co))
        return "inside db:tx (other requests would find the database in the middle of "
               "it)";
    /* the innermost C function between sleep and the Lua code that called it, other
     * than pcall and xpcall (they can wait) */
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sn", &ar) || ar.what[0] != 'C')
            continue;
        if (ar.name && (!strcmp(ar.name, "pcall") || !strcmp(ar.name, "xpcall")))
            continue;
        if (ar.name && !strcmp(ar.name, "require"))
            return "at the top level of a require'd file (wait inside the functions it "
                   "defines)";
        break;
    }
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "n", &ar) && ar.namewhat &&
        !strcmp(ar.namewhat, "metamethod") && ar.name && !strcmp(ar.name, "__gc"))
        return "in a __gc metamethod";
    return "inside a C function such as table.sort or string.gsub, or a metamethod such "
           "as __tostring";
}

/* The wait is over (or was never taken). */
static int sleep_k(lua_State *L, int status, lua_KContext k)
{
    struct lh_ctx *ctx = lh_host_of(L)->running;
    if (ctx && ctx->wait_asked) {
        ctx->wait_asked = false;
        return luaL_error(L, "sleep: cannot wait here: inside a C function such as "
                             "table.sort or string.gsub, or a metamethod such as "
                             "__tostring, around a coroutine");
    }
    if (ctx && ctx->wait_ns < 0)
        return luaL_error(L, "sleep: not enough memory for a timer");
    return 0;
}

/* sleep(seconds): suspend this request for that long (0: give other clients a turn). */
static int api_sleep(lua_State *L)
{
    int64_t ns;
    if (lh_wait_seconds_ns(luaL_checknumber(L, 1), &ns) < 0)
        return luaL_argerror(L, 1, "a finite number of seconds >= 0 expected");
    struct lh_lua *lua = lh_host_of(L);
    struct lh_ctx *ctx = lua->running;
    if (!ctx || !lua_isyieldable(L) || lh_sql_in_tx(ctx->co))
        return luaL_error(L, "sleep: cannot wait here: %s", why_not(L, lua, ctx));
    ctx->wait_asked = true;
    ctx->wait_ns = ns;
    ctx->hook_paused = true; /* the server's pause: the time asleep is not run time */
    lua_settop(L, 0);
    return lua_yieldk(L, 0, 0, sleep_k);
}

/* ---- waits on events (wait.h) ------------------------------------------------------------ */

void lh_wait_check(lua_State *L, const char *what)
{
    struct lh_lua *lua = lh_host_of(L);
    struct lh_ctx *ctx = lua->running;
    if (!ctx || !lua_isyieldable(L) || lh_sql_in_tx(ctx->co))
        luaL_error(L, "%s: cannot wait here: %s", what, why_not(L, lua, ctx));
}

int lh_wait_yield(lua_State *L, const char *what, struct lh_wait *w, lua_KFunction k)
{
    struct lh_ctx *ctx = lh_host_of(L)->running;
    lh_wait_check(L, what);
    if (ctx->wait_op && ctx->wait_op != w) /* left by a call that failed reading it */
        ctx->wait_op->cancel(ctx->wait_op);
    ctx->wait_op = w;
    ctx->wait_asked = true;
    ctx->wait_ns = 0;
    ctx->hook_paused = true; /* the server's pause: the time waiting is not run time */
    return lua_yieldk(L, 0, 0, k);
}

void lh_wait_resumed(lua_State *L, const char *what)
{
    struct lh_ctx *ctx = lh_host_of(L)->running;
    struct lh_wait *w = ctx ? ctx->wait_op : NULL;
    if (ctx)
        ctx->wait_op = NULL;
    if (!w || ctx->wait_asked || !w->done) {
        if (ctx)
            ctx->wait_asked = false;
        if (w)
            w->cancel(w);
        luaL_error(L, "%s: cannot wait here: inside a C function such as table.sort or "
                      "string.gsub, or a metamethod such as __tostring, around a "
                      "coroutine",
                   what);
    }
}

void lh_wait_attach(lua_State *L, struct lh_wait *w)
{
    struct lh_ctx *ctx = lh_host_of(L)->running;
    if (ctx && !ctx->wait_held)
        ctx->wait_held = w;
}

void lh_wait_detach(lua_State *L, struct lh_wait *w)
{
    struct lh_ctx *ctx = lh_host_of(L)->running;
    if (ctx && ctx->wait_held == w)
        ctx->wait_held = NULL;
}

/* ---- worker ------------------------------------------------------------------------------ */

static const char worker_key = 'w'; /* registry: the table behind worker */

static int worker_readonly(lua_State *L)
{
    return luaL_error(L, "worker is read-only");
}

void lh_wait_install(lua_State *L)
{
    lua_register(L, "sleep", api_sleep);
    /* worker: an empty table whose metatable's __index, kept in the registry too,
     * holds id and count (nil until lh_lua_set_worker) */
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &worker_key);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, worker_readonly);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "worker");
}

/* Protected: the two integers on the stack into the worker table. */
static int set_worker(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &worker_key);
    lua_insert(L, 1);
    lua_setfield(L, 1, "count");
    lua_setfield(L, 1, "id");
    return 0;
}

int lh_lua_set_worker(struct lh_lua *lua, int id, int count)
{
    if (!lua)
        return 0;
    lua_State *L = lua->L;
    lua_pushcfunction(L, set_worker);
    lua_pushinteger(L, id);
    lua_pushinteger(L, count);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK)
        return 0;
    lua_pop(L, 1);
    return -1;
}
