/* lua_coro.c - coroutine.resume and coroutine.wrap that pass the server's pauses on.
 * See lua_coro.h.
 *
 * The count hook (lua_call.c) pauses the request's own coroutine (ctx->co) after a
 * time slice. A coroutine the handler created and resumed is a level deeper: a yield
 * there returns to its resumer, which would take it for the coroutine's own
 * coroutine.yield(). So these resumers keep ctx->wrapped_co (the innermost coroutine
 * they run, where the hook may pause too) and, when the coroutine they resumed
 * paused for the hook (ctx->hook_paused), pause their own thread in turn with
 * lua_yieldk, up to ctx->co, whose resumer is the server. When the server resumes,
 * each continuation resumes the level below it. Where a level cannot yield (inside a
 * table.sort comparator, say), the coroutine below is resumed at once instead.
 *
 * The hook itself comes late: a call starts without it, and lua_call.c's watch puts
 * it on ctx->co and on ctx->wrapped_co once the call has run for a while. A coroutine
 * made before that has none, so the hook is passed on here: to a coroutine when it is
 * resumed or closed (coroutine.close runs its pending __close handlers), and back to
 * its resumer when it returns with one. */
#include "lua_coro.h"

#include "dispatch.h"
#include "lua_host.h"

#include <lauxlib.h>
#include <lua.h>

enum kind { RESUME, WRAP };

/* Give `to` the hook `from` has, if it has none. */
static void share_hook(lua_State *from, lua_State *to)
{
    lua_Hook hook = lua_gethook(from);
    if (hook && !lua_gethook(to))
        lua_sethook(to, hook, lua_gethookmask(from), lua_gethookcount(from));
}

/* Resume co with the narg values on top of L and move what it yields or returns to
 * L: their number, or -1 with the error on top of L. */
static int resume_once(lua_State *L, lua_State *co, int narg)
{
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    struct lh_ctx *ctx = lh_lua_running(L);
    share_hook(L, co);
    if (ctx)
        ctx->wrapped_co = co;
    int nres, status = lua_resume(co, L, narg, &nres);
    if (ctx)
        ctx->wrapped_co = L; /* L runs again */
    share_hook(co, L);
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_xmove(co, L, 1);
        return -1;
    }
    if (!lua_checkstack(L, nres + 1)) {
        lua_pop(co, nres);
        lua_pushliteral(L, "too many results to resume");
        return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
}

/* The results of a resume as the Lua function returns them. */
static int finish(lua_State *L, lua_State *co, int n, enum kind kind)
{
    if (kind == RESUME) {
        lua_pushboolean(L, n >= 0);
        lua_insert(L, n >= 0 ? -(n + 1) : -2);
        return n >= 0 ? n + 1 : 2;
    }
    if (n >= 0)
        return n;
    int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD) { /* it died: close its variables */
        status = lua_resetthread(co);
        if (lua_gettop(co) > 0) {
            lua_xmove(co, L, 1);
            lua_replace(L, -2);
        }
    }
    if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int drive_k(lua_State *L, int status, lua_KContext k);

/* Resume co until it yields by itself, returns or fails, passing the server's
 * pauses on (see the top of the file). */
static int drive(lua_State *L, lua_State *co, int narg, enum kind kind)
{
    for (;;) {
        int n = resume_once(L, co, narg);
        struct lh_ctx *ctx = lh_lua_running(L);
        if (n != 0 || !ctx || !ctx->hook_paused || lua_status(co) != LUA_YIELD)
            return finish(L, co, n, kind);
        if (lua_isyieldable(L))
            return lua_yieldk(L, 0, (lua_KContext)kind, drive_k);
        ctx->hook_paused = false; /* no pause here: co goes on */
        narg = 0;
    }
}

/* L was resumed after passing a pause on: resume co in turn (with whatever values
 * L was resumed with: none, when the server resumes it). */
static int drive_k(lua_State *L, int status, lua_KContext k)
{
    enum kind kind = (enum kind)k;
    lua_State *co = lua_tothread(L, kind == RESUME ? 1 : lua_upvalueindex(1));
    return drive(L, co, lua_gettop(L) - (kind == RESUME ? 1 : 0), kind);
}

static int co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    return drive(L, co, lua_gettop(L) - 1, RESUME);
}

static int co_wrapped(lua_State *L)
{
    return drive(L, lua_tothread(L, lua_upvalueindex(1)), lua_gettop(L), WRAP);
}

static int co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, co_wrapped, 1);
    return 1;
}

/* coroutine.close (upvalue 1: Lua's own), with the hook passed on to the coroutine
 * whose __close handlers it runs, and that coroutine watched as the running one
 * meanwhile (lua_call.c's watch hooks ctx->wrapped_co). */
static int co_close(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    struct lh_ctx *ctx = lh_lua_running(L);
    lua_State *was = ctx ? ctx->wrapped_co : NULL;
    if (co) {
        share_hook(L, co);
        if (ctx)
            ctx->wrapped_co = co;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (ctx)
        ctx->wrapped_co = was;
    if (co)
        share_hook(co, L);
    return rc == LUA_OK ? lua_gettop(L) : lua_error(L);
}

void lh_lua_coro_install(lua_State *L)
{
    static const luaL_Reg fns[] = {{"resume", co_resume}, {"wrap", co_wrap}, {NULL, NULL}};
    lua_getglobal(L, "coroutine");
    luaL_setfuncs(L, fns, 0);
    lua_getfield(L, -1, "close");
    lua_pushcclosure(L, co_close, 1);
    lua_setfield(L, -2, "close");
    lua_pop(L, 1);
}
