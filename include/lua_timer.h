/* lua_timer.h - timer.after(seconds, fn) and timer.every(seconds, fn): Lua functions
 * that run later, or again and again, in the worker, outside any request, each call
 * in a coroutine of its own under the handlers' limits (time slices, the time limit
 * of run time, the memory cap) and free to wait (sleep, outbound requests).
 *
 * The timers belong to a Lua state. Those made while config.lua runs (in the master,
 * which has no event loop) wait for the state to be started in a worker; a reload
 * stops the old state's timers and starts the new one's. */
#ifndef LH_LUA_TIMER_H
#define LH_LUA_TIMER_H

struct lh_lua;
struct lua_State;

/* The most timers one state may have pending or running at once. */
#define LH_TIMER_MAX 1024

/* Install the global `timer` table (lua_host.c, while the state is made). */
void lh_timer_install(struct lua_State *L);

/* Arm lua's timers on this process's event loop (wait.h's lh_wait_base, which must be
 * set), those made so far and every one made from now on. 0, or -1 when the loop is
 * missing or out of memory (the timers that could not be armed are dropped, logged).
 * Safe on NULL. */
int lh_timer_start(struct lh_lua *lua);

/* Drop every timer of lua (a reload, shutdown): pending ones never fire, a call under
 * way (paused: this is never called while Lua runs) is abandoned, its wait cancelled.
 * A timer made afterwards raises. Safe on NULL, and to call twice. */
void lh_timer_stop(struct lh_lua *lua);

/* How many timers of lua are pending or running. */
int lh_timer_count(const struct lh_lua *lua);

/* lh_timer_stop and free what the state kept for its timers (lh_lua_free, before the
 * state is closed). */
void lh_timer_free(struct lh_lua *lua);

#endif
