/* lua_coro.h - coroutine.resume and coroutine.wrap for handlers: as Lua's own, but a
 * pause the server asks for inside a coroutine a handler created is passed up to the
 * handler's own coroutine, so the worker serves others while any of them computes. */
#ifndef LH_LUA_CORO_H
#define LH_LUA_CORO_H

struct lua_State;

/* Replace resume, wrap and close in the global `coroutine` table (lua_host.c's install). */
void lh_lua_coro_install(struct lua_State *L);

#endif
