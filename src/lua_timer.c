/* lua_timer.c - timer.after(seconds, fn) and timer.every(seconds, fn). See lua_timer.h.
 *
 * A timer is a struct lh_timer in its state's list (struct lh_timer_list, at
 * lua->timers), and a handle for Lua: a userdata that points at the timer while it
 * lives (NULL afterwards) and holds fn as its user value. The registry keeps the
 * handle as long as the timer lives, so a timer nobody keeps a handle to still runs.
 *
 * One event per timer drives it. While the timer is pending it fires when the timer
 * is due and starts a call of fn (with the handle as its argument). While that call
 * runs, the event is its next turn: each turn is one time slice of lh_call_run_slice,
 * as a handler's, with a struct lh_ctx of the timer's own (an empty request in it, so
 * that code which reads ctx->req finds one). Between slices the call's wishes are
 * handled as runq.c handles a request's: a wait on an event (ctx->wait_op) is held
 * with lh_wait_hold and the event fires once it is woken; sleep() arms the event for
 * ctx->wait_ns; anything else is a turn after the next poll, so that clients are
 * served in between. Only when fn has returned (or failed: logged by lua_call.c as
 * "timer.every <file>:<line>") is an `every` timer armed again: runs never overlap,
 * and the interval runs from the end of one to the start of the next.
 *
 * cancel() on a pending timer frees it; on one whose call is under way, it only
 * keeps an `every` timer from running again (that call goes on to its end, so fn may
 * cancel its own timer and carry on). lh_timer_stop abandons calls under way too. */
#include "lua_timer.h"

#include "lua_int.h"

#include "log.h"
#include "wait.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <lua.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDLE_META "luahttpd.timer"

struct lh_timer {
    struct lh_lua *lua;
    struct lh_timer *prev, *next; /* in the state's list, oldest first */
    struct event *ev;             /* made when first armed */
    int handle_ref;               /* the handle (registry); fn is its user value */
    int64_t delay_ns;             /* the first run: this long after the start */
    int64_t every_ns;             /* 0: an `after` timer */
    bool running;                 /* its call is under way: ctx is live */
    bool cancelled;               /* every: no run after the one under way */
    struct lh_ctx ctx;
    struct lh_request req;        /* empty: a timer runs outside any request */
    char where[128];              /* fn's "file:line", for the error log */
};

struct lh_timer_list {
    struct lh_timer *head, *tail;
    int count;                    /* pending or running */
    bool started;                 /* armed on the worker's loop (lh_timer_start) */
    bool stopped;                 /* lh_timer_stop: no more timers */
};

static struct lh_timer_list *list_of(struct lh_lua *lua)
{
    if (!lua->timers)
        lua->timers = calloc(1, sizeof *lua->timers);
    return lua->timers;
}

static const char *name_of(const struct lh_timer *t)
{
    return t->every_ns ? "timer.every" : "timer.after";
}

/* Take t out of its list and free it; its handle points at nothing from now on. L:
 * a thread of t's state, for the registry (the running one, inside a Lua call). */
static void free_timer(lua_State *L, struct lh_timer *t)
{
    struct lh_timer_list *list = t->lua->timers;
    if (t->ev)
        event_free(t->ev);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->handle_ref);
    struct lh_timer **slot = lua_touserdata(L, -1);
    if (slot)
        *slot = NULL;
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, t->handle_ref);
    *(t->prev ? &t->prev->next : &list->head) = t->next;
    *(t->next ? &t->next->prev : &list->tail) = t->prev;
    list->count--;
    free(t);
}

static void on_event(evutil_socket_t fd, short what, void *arg);

/* t's event fires in ns from now. 0, or -1 (no event loop, out of memory). */
static int arm(struct lh_timer *t, int64_t ns)
{
    if (!t->ev) {
        struct event_base *base = lh_wait_base();
        t->ev = base ? evtimer_new(base, on_event, t) : NULL;
        if (!t->ev)
            return -1;
    }
    struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000),
                         .tv_usec = (suseconds_t)(ns % 1000000000 / 1000)};
    return evtimer_add(t->ev, &tv);
}

/* Arming t failed: it is dropped, with a line in the error log. Not from inside a
 * wait's wake (the wait is cancelled here). */
static void drop(struct lh_timer *t)
{
    lh_log_error("error", "lua: %s %s: cannot arm the timer (out of memory); it is dropped",
                 name_of(t), t->where);
    if (t->running)
        lh_lua_request_done(t->lua, &t->ctx);
    free_timer(t->lua->L, t);
}

/* ---- a call of fn ------------------------------------------------------------------------- */

/* fn has returned or failed (logged): an `every` timer waits for its next run. */
static void end_run(struct lh_timer *t)
{
    lh_lua_request_done(t->lua, &t->ctx); /* what a failure kept, a wait left behind */
    t->running = false;
    if (!t->every_ns || t->cancelled)
        free_timer(t->lua->L, t);
    else if (arm(t, t->every_ns) < 0)
        drop(t);
}

/* A wait the call holds (wait.h) is over: its next turn. Runs in whatever finished
 * the wait, so it only arms the event. */
static void on_wake(void *arg)
{
    struct lh_timer *t = arg;
    if (arm(t, 0) < 0)
        lh_log_error("error", "lua: %s %s: cannot arm the timer (out of memory); its call "
                              "stays paused until a reload",
                     name_of(t), t->where);
}

/* The call paused: its next turn after the wait it asked for, or after the next poll. */
static void next_turn(struct lh_timer *t)
{
    struct lh_ctx *ctx = &t->ctx;
    int64_t ns = 0;
    if (ctx->wait_asked && ctx->wait_op) {
        ctx->wait_asked = false;
        if (lh_wait_hold(ctx->wait_op, on_wake, t))
            return;
    } else if (ctx->wait_asked) {
        ns = ctx->wait_ns; /* sleep(); 0: a turn is all it asked for */
    }
    ctx->wait_asked = false;
    if (arm(t, ns) < 0)
        drop(t);
}

/* One time slice of t's call: to start it, fn and its nargs arguments on top of the
 * state's stack. */
static void run_slice(struct lh_timer *t, int nargs)
{
    int nres = 0;
    enum lh_call_result r = lh_call_run_slice(t->lua, &t->ctx, nargs, &nres);
    if (r == LH_CALL_OK)
        lua_pop(t->lua->L, nres);
    if (r == LH_CALL_YIELD)
        next_turn(t);
    else
        end_run(t);
}

/* t is due: a new call of fn(handle), under the limits a handler runs under. */
static void start_run(struct lh_timer *t)
{
    lua_State *L = t->lua->L;
    t->ctx = (struct lh_ctx){.req = &t->req, .lua = t->lua, .body = "", .path = "",
                             .co_ref = LUA_NOREF, .req_ref = LUA_NOREF,
                             .res_ref = LUA_NOREF, .stream_ref = LUA_NOREF,
                             .what_kind = name_of(t), .what_pattern = t->where};
    t->running = true;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->handle_ref);
    lua_getiuservalue(L, -1, 1);
    lua_insert(L, -2);
    run_slice(t, 1);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    struct lh_timer *t = arg;
    if (t->running)
        run_slice(t, 0);
    else
        start_run(t);
}

/* ---- the Lua side ------------------------------------------------------------------------- */

/* timer.after(seconds, fn) / timer.every(seconds, fn): the handle. */
static int make_timer(lua_State *L, bool every)
{
    const char *name = every ? "timer.every" : "timer.after";
    int64_t ns;
    if (lh_wait_seconds_ns(luaL_checknumber(L, 1), &ns) < 0 || (every && ns == 0))
        return luaL_argerror(L, 1, every ? "a finite number of seconds > 0 expected"
                                         : "a finite number of seconds >= 0 expected");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    struct lh_lua *lua = lh_host_of(L);
    struct lh_timer_list *list = list_of(lua);
    if (!list)
        return luaL_error(L, "%s: not enough memory", name);
    if (list->stopped)
        return luaL_error(L, "%s: the timers of this configuration have stopped (a reload "
                             "or shutdown)",
                          name);
    if (list->count >= LH_TIMER_MAX)
        return luaL_error(L, "%s: too many pending timers (%d in this worker)", name,
                          LH_TIMER_MAX);
    lua_settop(L, 2);
    struct lh_timer **slot = lua_newuserdatauv(L, sizeof *slot, 1);
    *slot = NULL;
    luaL_setmetatable(L, HANDLE_META);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 3, 1);
    lua_pushvalue(L, 3);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    struct lh_timer *t = calloc(1, sizeof *t);
    if (!t) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "%s: not enough memory", name);
    }
    t->lua = lua;
    t->handle_ref = ref;
    t->delay_ns = ns;
    t->every_ns = every ? ns : 0;
    lua_Debug ar;
    lua_pushvalue(L, 2);
    lua_getinfo(L, ">S", &ar);
    if (ar.linedefined > 0)
        snprintf(t->where, sizeof t->where, "%s:%d", ar.short_src, ar.linedefined);
    else
        snprintf(t->where, sizeof t->where, "%s", ar.short_src);
    t->prev = list->tail;
    *(list->tail ? &list->tail->next : &list->head) = t;
    list->tail = t;
    list->count++;
    *slot = t;
    if (list->started && arm(t, ns) < 0) {
        free_timer(L, t);
        return luaL_error(L, "%s: not enough memory for a timer", name);
    }
    lua_settop(L, 3);
    return 1;
}

static int api_after(lua_State *L) { return make_timer(L, false); }
static int api_every(lua_State *L) { return make_timer(L, true); }

/* handle:cancel(): true when it stopped a timer that would have run (again), false
 * when there was none (it has run, or was cancelled already). */
static int handle_cancel(lua_State *L)
{
    struct lh_timer **slot = luaL_checkudata(L, 1, HANDLE_META);
    struct lh_timer *t = *slot;
    bool stopped = t && !t->cancelled && (!t->running || t->every_ns);
    if (stopped && t->running)
        t->cancelled = true; /* its call goes on to its end */
    else if (stopped)
        free_timer(L, t);
    lua_pushboolean(L, stopped);
    return 1;
}

void lh_timer_install(lua_State *L)
{
    static const luaL_Reg fns[] = {{"after", api_after}, {"every", api_every}, {NULL, NULL}};
    static const luaL_Reg methods[] = {{"cancel", handle_cancel}, {NULL, NULL}};
    luaL_newmetatable(L, HANDLE_META);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setglobal(L, "timer");
}

/* ---- the worker's side -------------------------------------------------------------------- */

int lh_timer_start(struct lh_lua *lua)
{
    if (!lua)
        return 0;
    struct lh_timer_list *list = list_of(lua);
    if (!list || !lh_wait_base())
        return -1;
    if (list->started || list->stopped)
        return 0;
    list->started = true;
    int rc = 0;
    for (struct lh_timer *t = list->head, *next; t; t = next) {
        next = t->next;
        if (arm(t, t->delay_ns) < 0) {
            drop(t);
            rc = -1;
        }
    }
    return rc;
}

void lh_timer_stop(struct lh_lua *lua)
{
    struct lh_timer_list *list = lua && lua->L ? list_of(lua) : NULL;
    if (!list)
        return;
    list->stopped = true;
    while (list->head) {
        struct lh_timer *t = list->head;
        if (t->running) /* paused: its wait is cancelled, its coroutine closed */
            lh_lua_request_done(lua, &t->ctx);
        free_timer(lua->L, t); /* (cancel() never frees a running one) */
    }
}

int lh_timer_count(const struct lh_lua *lua)
{
    return lua && lua->timers ? lua->timers->count : 0;
}

void lh_timer_free(struct lh_lua *lua)
{
    if (!lua)
        return;
    lh_timer_stop(lua);
    free(lua->timers);
    lua->timers = NULL;
}
