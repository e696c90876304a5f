/* lua_call.c - calling into Lua: each handler or hook in a coroutine of its own, for
 * a time slice at a time, under the time limit; a failure to the error log (and to
 * the --dev page). See lua_int.h.
 *
 * The time limit. Every handler and hook runs in a coroutine of its own (ctx->co)
 * through lh_call_run_slice(), which sets lua->running to the request for exactly as
 * long as lua_resume runs. Lua code that runs meanwhile, in ctx->co or in a coroutine
 * the handler created, belongs to that request: the count hook (on_count) reads
 * lua->running, never the thread's own state. (lua_newthread gives a new coroutine
 * the creating thread's hook but the main thread's extra space, so per-thread data
 * would be wrong for every coroutine a handler makes.) The request's run time
 * (ctx->lua_ns) is summed over its resumes, and checked before each resume and by
 * the hook every HOOK_EVERY instructions; past limits.handler_timeout_ms the hook
 * raises, and from then on at every instruction until the call has ended, so a
 * pcall in a loop cannot swallow it. After SLICE_NS of running, the hook pauses
 * ctx->co (not a coroutine of the handler's own: that would look to the handler as
 * if its coroutine had yielded) so the worker serves other clients and resumes the
 * handler later. A handler's own coroutine.yield() in ctx->co gives other clients a
 * turn too; the time until it is resumed counts as run time, so a loop around
 * coroutine.yield() runs out of time like any other loop. The allocator (lua_alloc.c)
 * enforces limits.lua_memory_mb. A single long call into C (string.rep, a backtracking find)
 * runs no Lua instructions: neither pauses nor timeouts reach it, only the memory
 * limit. The hook is put on a call only once it has run for a while: see "the watch"
 * below. */
#include "lua_int.h"

#include "lua_sql.h"

#include "log.h"

#include <lauxlib.h>
#include <lua.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_EVERY 1000 /* instructions between two looks at the clock */
#ifndef LH_CONFIG_MS
#define LH_CONFIG_MS 5000 /* config.lua itself must finish within this */
#endif
#define SLICE_NS (10 * 1000000LL) /* a handler pauses for other clients after this long */

/* ---- the time limit --------------------------------------------------------------------- */

/* From now on, fire at every instruction until the call has ended, so that a
 * pcall cannot swallow the error. */
static void raise_every_instruction(lua_State *L, lua_Hook hook)
{
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
}

static void on_count(lua_State *L, lua_Debug *ar)
{
    struct lh_lua *lua = lh_host_of(L);
    struct lh_ctx *ctx = lua->running;
    if (!ctx) { /* config.lua, at load time; nothing else runs Lua outside a request */
        if (!lua->loading)
            return;
        if (!lua->config_timed_out && lh_now_ns() < lua->config_deadline)
            return;
        lua->config_timed_out = true;
        raise_every_instruction(L, on_count);
        luaL_error(L, "config.lua ran longer than %d ms", LH_CONFIG_MS);
    }
    if (!ctx->timed_out) {
        int64_t now = lh_now_ns();
        if (ctx->lua_ns + (now - ctx->resumed_at) < lua->timeout_ns) {
            /* not inside a db:tx: another request would find the database in
             * the middle of it */
            if (now >= ctx->slice_end && (L == ctx->co || L == ctx->wrapped_co) &&
                lua_isyieldable(L) && !lh_sql_in_tx(ctx->co)) {
                ctx->hook_paused = true;
                lua_yield(L, 0); /* the VM pauses the coroutine once the hook returns */
            }
            return;
        }
        ctx->timed_out = true;
    }
    raise_every_instruction(L, on_count);
    luaL_error(L, "handler ran longer than limits.handler_timeout_ms (%d ms)",
               (int)lua->timeout_ms);
}

const void *lh_call_owner(lua_State *L)
{
    /* the call's coroutine: the same at every resume (ctx itself is moved when its
     * request is parked), and no other call's while this one has not finished */
    const struct lh_ctx *ctx = lh_host_of(L)->running;
    return ctx ? ctx->co : NULL;
}

int lh_call_over_time(lua_State *L)
{
    struct lh_lua *lua = lh_host_of(L);
    struct lh_ctx *ctx = lua->running;
    int64_t now = lh_now_ns();
    if (!ctx) {
        if (!lua->loading || (!lua->config_timed_out && now < lua->config_deadline))
            return 0;
        lua->config_timed_out = true;
    } else if (ctx->timed_out || ctx->lua_ns + (now - ctx->resumed_at) >= lua->timeout_ns) {
        ctx->timed_out = true; /* a 503, and no pcall gets past it (as in on_count) */
    } else
        return 0;
    raise_every_instruction(L, on_count);
    return 1;
}

void lh_call_begin_config(struct lh_lua *lua)
{
    lua_sethook(lua->L, on_count, LUA_MASKCOUNT, HOOK_EVERY);
    lua->config_deadline = lh_now_ns() + LH_CONFIG_MS * 1000000LL; /* a loop fails, not hangs */
    lua->loading = lua->capped = true;
}

void lh_call_end_config(struct lh_lua *lua)
{
    lua->loading = lua->capped = false;
    lua_sethook(lua->L, NULL, 0, 0);
}

/* ---- the watch ---------------------------------------------------------------------------
 * A count hook sends every Lua instruction through the debug machinery (a loop of
 * arithmetic runs two thirds longer under it), so a call starts without one. When it
 * starts, the process's one-shot timer (CLOCK_MONOTONIC, LH_LUA_WATCH_SIGNAL to the
 * process: a worker is one thread) is set to fire once its slice is over, or its time
 * if that comes first, unless the timer is due by then already. The signal handler
 * puts on_count on the request's coroutine and on the one it is running now
 * (ctx->wrapped_co), as lua.c does on Ctrl-C: lua_sethook may be called from a
 * signal handler. From then on the call is watched as before, every HOOK_EVERY
 * instructions, until it has ended. A coroutine the handler made before the hook
 * came gets it when it is resumed or closed, and its resumer gets it back from it
 * (lua_coro.c).
 *
 * The timer is made on first use, by the process that runs handlers: a worker (the
 * master only runs config.lua, under the hook from the start), or a unit test. A
 * child of fork inherits neither the timer nor a pending signal, but would inherit
 * the note that the timer was made: forget_watch clears it in the child, which makes
 * its own. The handler is installed with SA_RESTART, so that a read, write or accept
 * the signal interrupts is restarted rather than failing with EINTR; epoll_wait, where
 * it often lands (the timer fires after a short call has ended), returns EINTR
 * whatever the flag, and libevent goes round its loop again. Where no timer can be
 * made, every call starts with the hook. */

static struct lh_ctx *volatile watch_ctx; /* whose Lua code runs now */
static volatile sig_atomic_t watch_armed; /* the timer is set, due at: */
static int64_t watch_due;
static int watch_made;                    /* 1: made, -1: cannot be, 0: not yet */
static timer_t watch_timer;

/* Watch co from now on, unless it is watched already (perhaps raising at every
 * instruction after a timeout: that stays). */
static void hook_if_none(lua_State *co)
{
    if (co && !lua_gethook(co))
        lua_sethook(co, on_count, LUA_MASKCOUNT, HOOK_EVERY);
}

static void on_watch(int sig)
{
    watch_armed = 0;
    struct lh_ctx *ctx = watch_ctx;
    if (ctx && !ctx->timed_out) {
        hook_if_none(ctx->co);
        hook_if_none(ctx->wrapped_co);
    }
}

/* In the child of a fork: the timer was the parent's. */
static void forget_watch(void)
{
    watch_ctx = NULL;
    watch_made = 0;
    watch_armed = 0;
}

/* This process's timer, made on first use. false: there is none. */
static bool watch_timer_made(void)
{
    if (watch_made == 0) {
        static bool atfork;
        if (!atfork)
            atfork = pthread_atfork(NULL, NULL, forget_watch) == 0;
        struct sigaction sa = {.sa_handler = on_watch, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL,
                               .sigev_signo = LH_LUA_WATCH_SIGNAL};
        watch_made = atfork && sigaction(LH_LUA_WATCH_SIGNAL, &sa, NULL) == 0 &&
                             timer_create(CLOCK_MONOTONIC, &sev, &watch_timer) == 0
                         ? 1
                         : -1;
    }
    return watch_made > 0;
}

/* Have the timer fire within `within` ns (> 0) of now. false: no timer. */
static bool watch(int64_t now, int64_t within)
{
    if (watch_armed && watch_due <= now + within)
        return true;
    if (!watch_timer_made())
        return false;
    struct itimerspec its = {.it_value = {.tv_sec = within / 1000000000,
                                          .tv_nsec = within % 1000000000}};
    watch_armed = 1; /* before: the signal of an earlier setting may clear it */
    watch_due = now + within;
    if (timer_settime(watch_timer, 0, &its, NULL) == 0)
        return true;
    watch_armed = 0;
    return false;
}

/* ---- calling into Lua ------------------------------------------------------------------- */

/* Remember the innermost Lua function on co's stack: the line that failed. */
static void note_error_position(struct lh_lua *lua, lua_State *co)
{
    lua_Debug ar;
    lua->err_line = 0;
    for (int level = 0; lua_getstack(co, level, &ar); level++)
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0 && ar.source[0] == '@') {
            snprintf(lua->err_file, sizeof lua->err_file, "%s", ar.source + 1);
            lua->err_line = ar.currentline;
            return;
        }
}

int lh_call_add_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Give ctx a coroutine: the spare one, or a new one. */
static lua_State *take_thread(struct lh_lua *lua, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    if (lua->spare_ref != LUA_NOREF) {
        ctx->co_ref = lua->spare_ref;
        lua->spare_ref = LUA_NOREF;
        lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->co_ref);
    } else {
        lua_newthread(L);
        lua_pushvalue(L, -1);
        ctx->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_State *co = lua_tothread(L, -1);
    lua_pop(L, 1);
    ctx->co = co;
    return co;
}

void lh_call_drop_thread(struct lh_lua *lua, struct lh_ctx *ctx, bool reusable)
{
    if (ctx->co_ref == LUA_NOREF)
        return;
    lua_State *co = ctx->co;
    ctx->co = NULL;
    if (reusable && lua->spare_ref == LUA_NOREF && lua_status(co) == LUA_OK &&
        lua_gettop(co) == 0) {
        if (lua_gethook(co))
            lua_sethook(co, NULL, 0, 0); /* the next call starts unwatched */
        lua->spare_ref = ctx->co_ref;
    } else {
        /* paused and never to be resumed (its time ran out, its client left): close
         * its pending to-be-closed variables now, so that an open db:tx rolls back
         * and lets go of the database's write lock at once, not whenever the
         * collector gets to the coroutine */
        if (lua_status(co) == LUA_YIELD)
            lua_resetthread(co);
        luaL_unref(lua->L, LUA_REGISTRYINDEX, ctx->co_ref);
    }
    ctx->co_ref = LUA_NOREF;
}

const char *lh_call_describe(const struct lh_ctx *ctx, char *buf, size_t size)
{
    if (ctx->what_method)
        snprintf(buf, size, "route %s %s", ctx->what_method, ctx->what_pattern);
    else if (ctx->what_pattern) /* a timer (lua_timer.c): "timer.every config.lua:3" */
        snprintf(buf, size, "%s %s", ctx->what_kind, ctx->what_pattern);
    else
        snprintf(buf, size, "%s hook %d", ctx->what_kind ? ctx->what_kind : "?",
                 ctx->what_index);
    return buf;
}

/* The error on top of co becomes the failure res of ctx's call: logged with co's
 * traceback under lh_call_describe(ctx), and kept for the --dev page. Pops the error. */
static void log_failure(struct lh_lua *lua, struct lh_ctx *ctx, lua_State *co,
                        enum lh_call_result res)
{
    lua_State *L = lua->L;
    int base = lua_gettop(L);
    lua_xmove(co, L, 1);
    /* no __tostring: it would run the handler's code outside its limits */
    size_t len = 0; /* error("a\0b"): the length, not strlen, says where it ends */
    const char *msg = res == LH_CALL_MEMORY ? "not enough memory (limits.lua_memory_mb)"
                      : lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                          ? lua_tolstring(L, -1, &len)
                          : lua_pushfstring(L, "(error object is a %s value)",
                                            luaL_typename(L, -1));
    if (len == 0)
        len = strlen(msg); /* ours, or an empty string */
    note_error_position(lua, co);
    luaL_traceback(L, co, NULL, 0);
    const char *trace = lua_tostring(L, -1);
    char what[160];
    lh_call_describe(ctx, what, sizeof what);
    char shown[LH_LOG_MSG_MAX];
    lh_log_str(shown, sizeof shown, msg, len); /* escaped by length: it may hold a NUL */
    lh_log_error_trace("error", trace, "lua: %s: %s", what, shown);
    bool dev = lua->dev && ctx->dev_loopback && res != LH_CALL_TIMEOUT;
    if (dev) {
        free(ctx->dev_error);
        ctx->dev_error = lh_devpage_render_error(ctx, what,
                                                 lua_pushfstring(L, "%s\n%s", msg, trace),
                                                 lua->err_file, lua->err_line);
    }
    /* for a JSON error body: the client's bad JSON is theirs to see; a Lua error only
     * in --dev, to this machine */
    free(ctx->err_detail);
    free(ctx->err_trace);
    ctx->err_detail = ctx->err_trace = NULL;
    ctx->err_status = 0;
    if (res == LH_CALL_BAD_JSON) {
        ctx->err_detail = strdup(msg);
        ctx->err_status = 400;
    } else if (dev) {
        ctx->err_detail = strdup(msg);
        ctx->err_trace = strdup(trace);
        ctx->err_status = 500;
    }
    lua_settop(L, base);
}

enum lh_call_result lh_call_run_slice(struct lh_lua *lua, struct lh_ctx *ctx, int nargs,
                                      int *nres)
{
    lua_State *L = lua->L, *co;
    int64_t now = lh_now_ns();
    if (ctx->co_ref == LUA_NOREF) {
        co = take_thread(lua, ctx);
        lua_xmove(L, co, nargs + 1);
        ctx->timed_out = false;
        ctx->wrapped_co = NULL; /* the last call's may be gone: the watch looks at it */
    } else {
        co = ctx->co;
        nargs = 0;
        if (ctx->charge_wait)
            ctx->lua_ns += now - ctx->resumed_at;
    }
    ctx->charge_wait = ctx->hook_paused = false;
    if (ctx->lua_ns >= lua->timeout_ns) {
        ctx->timed_out = true;
        lua_pushfstring(co, "handler ran longer than limits.handler_timeout_ms (%d ms)",
                        (int)lua->timeout_ms);
        log_failure(lua, ctx, co, LH_CALL_TIMEOUT);
        lh_call_drop_thread(lua, ctx, false);
        return LH_CALL_TIMEOUT;
    }
    ctx->resumed_at = now;
    ctx->slice_end = now + SLICE_NS;
    int n = 0;
    lua->running = ctx;
    watch_ctx = ctx;
    atomic_signal_fence(memory_order_seq_cst); /* the timer's signal from here on sees ctx */
    int64_t left = lua->timeout_ns - ctx->lua_ns;
    if (!watch(now, left < SLICE_NS ? left : SLICE_NS))
        hook_if_none(co); /* no timer: watched from the start (once per call, not per
                           * resume: lua_sethook restarts the count) */
    lua->capped = lua->mem_limit > 0;
    int rc = lua_resume(co, L, nargs, &n);
    lua->capped = false;
    watch_ctx = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    lua->running = NULL;
    now = lh_now_ns();
    ctx->lua_ns += now - ctx->resumed_at;
    if (rc == LUA_YIELD) {
        lua_pop(co, n); /* a handler's own coroutine.yield() gives nothing to us */
        if (!ctx->hook_paused) { /* it asked for the pause: the wait counts */
            ctx->charge_wait = true;
            ctx->resumed_at = now;
        }
        return LH_CALL_YIELD;
    }
    if (rc == LUA_OK) {
        lua_xmove(co, L, n);
        *nres = n;
        lh_call_drop_thread(lua, ctx, true);
        return LH_CALL_OK;
    }
    enum lh_call_result res = ctx->timed_out     ? LH_CALL_TIMEOUT
                              : rc == LUA_ERRMEM ? LH_CALL_MEMORY
                              : ctx->bad_json && lua_topointer(co, -1) == ctx->bad_json
                                  ? LH_CALL_BAD_JSON
                                  : LH_CALL_ERROR;
    log_failure(lua, ctx, co, res);
    lh_call_drop_thread(lua, ctx, false);
    lua_gc(L, LUA_GCCOLLECT);
    return res;
}
