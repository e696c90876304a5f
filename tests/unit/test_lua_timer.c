/* Unit tests for lua_timer.c: timer.after and timer.every on an event loop of the
 * test's own (lh_wait_set_base), with the error log in a file: firing, cancelling,
 * errors and timeouts logged, the cap and the argument checks, waits inside a timer
 * (sleep, and a wait.h wait the test finishes), time slices, and stopping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/lua_int.h"
#include "log.h"
#include "lua_fixture.h"
#include "lua_timer.h"
#include "wait.h"

struct fx {
    char dir[64], path[96], log[128];
    struct lh_config cfg;
    struct lh_lua *lua;
    struct event_base *base;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    lh_wait_set_base(f->base);
    strcpy(f->log, "/tmp/lh-timer-log-XXXXXX");
    int fd = mkstemp(f->log);
    assert_true(fd >= 0);
    lh_log_set_error_fd(fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->lua)
        lua_fixture_free(f->lua, &f->cfg, f->dir, f->path); /* its timers' events too */
    lh_wait_set_base(NULL);
    event_base_free(f->base);
    lh_log_set_error_fd(open("/dev/null", O_WRONLY | O_CLOEXEC)); /* closes the file */
    unlink(f->log);
    free(f);
    return 0;
}

/* Load config as config.lua; its timers wait until start(). */
static void load(struct fx *f, const char *config)
{
    f->lua = lua_fixture_load(f->dir, f->path, &f->cfg, config, NULL);
}

static void start(struct fx *f)
{
    assert_int_equal(lh_timer_start(f->lua), 0);
}

/* The value of the Lua expression expr is true. */
static bool is_true(struct fx *f, const char *expr)
{
    lua_State *L = f->lua->L;
    char chunk[512];
    snprintf(chunk, sizeof chunk, "return %s", expr);
    if (luaL_dostring(L, chunk) != LUA_OK)
        fail_msg("%s\n-> error: %s", expr, lua_tostring(L, -1));
    bool yes = lua_toboolean(L, -1);
    lua_settop(L, 0);
    return yes;
}

static void check(struct fx *f, const char *expr)
{
    if (!is_true(f, expr))
        fail_msg("not true: %s", expr);
}

static double now_s(void) { return lh_now_ns() / 1e9; }

/* Run the event loop for secs. */
static void run_for(struct fx *f, double secs)
{
    struct timeval tv = {.tv_sec = (time_t)secs,
                         .tv_usec = (suseconds_t)((secs - (time_t)secs) * 1e6)};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

/* Run the event loop until expr is true (fail after max seconds). */
static void run_until(struct fx *f, const char *expr, double max)
{
    double end = now_s() + max;
    while (!is_true(f, expr)) {
        if (now_s() > end)
            fail_msg("after %.1f s, still not true: %s", max, expr);
        run_for(f, 0.005);
    }
}

static char *read_log(struct fx *f)
{
    static char buf[1 << 16];
    FILE *fp = fopen(f->log, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void assert_logged(struct fx *f, const char *want)
{
    const char *log = read_log(f);
    if (!strstr(log, want))
        fail_msg("the error log does not say '%s':\n%s", want, log);
}

/* ---- the tests ------------------------------------------------------------------------- */

/* A timer config.lua made waits for the start; then fires once, with its handle. */
static void test_after_fires_once(void **state)
{
    struct fx *f = *state;
    load(f, "n = 0\nh = timer.after(0.02, function(arg) n = n + 1; got = arg end)\n");
    run_for(f, 0.05);
    check(f, "n == 0"); /* not started: the master has no loop */
    start(f);
    run_until(f, "n == 1", 5);
    run_for(f, 0.1);
    check(f, "n == 1 and got == h");
    check(f, "h:cancel() == false"); /* it has run */
}

static void test_every_repeats_until_cancelled(void **state)
{
    struct fx *f = *state;
    load(f, "n, m = 0, 0\n"
            "h = timer.every(0.01, function() n = n + 1 end)\n"
            "timer.every(0.01, function(self)\n"
            "  m = m + 1\n"
            "  if m == 2 then mine = self:cancel(); again = self:cancel() end\n"
            "end)\n");
    start(f);
    run_until(f, "n >= 3 and m >= 2", 5);
    check(f, "h:cancel() == true");
    check(f, "h:cancel() == false");
    check(f, "(function() seen = n; return true end)()");
    run_for(f, 0.1);
    check(f, "n == seen"); /* no run after cancel */
    check(f, "m == 2 and mine == true and again == false"); /* cancelled from inside */
    assert_int_equal(lh_timer_count(f->lua), 0);
}

static void test_cancel_before_firing(void **state)
{
    struct fx *f = *state;
    load(f, "n = 0\nh = timer.after(0.05, function() n = 1 end)\n"
            "h0 = timer.after(0, function() n = 2 end)\n");
    check(f, "h0:cancel() == true"); /* before the start */
    start(f);
    check(f, "h:cancel() == true and h:cancel() == false");
    run_for(f, 0.15);
    check(f, "n == 0");
    assert_int_equal(lh_timer_count(f->lua), 0);
}

/* An error is logged with its traceback under the timer's name; `every` goes on. */
static void test_error_logged_and_every_goes_on(void **state)
{
    struct fx *f = *state;
    load(f, "n = 0\n"
            "timer.every(0.01, function()\n"
            "  n = n + 1\n"
            "  error('boom ' .. n)\n"
            "end)\n");
    start(f);
    run_until(f, "n >= 3", 5);
    assert_logged(f, "[error] lua: timer.every ");
    assert_logged(f, "config.lua:2: ");
    assert_logged(f, "boom 1");
    assert_logged(f, "boom 2");
    assert_logged(f, "stack traceback:");
}

static void test_cap_and_arguments(void **state)
{
    struct fx *f = *state;
    load(f, "f = function() end\n"
            "for i = 1, 1024 do last = timer.after(100, f) end\n"
            "ok, err = pcall(timer.after, 1, f)\n"
            "ok2, err2 = pcall(timer.every, 1, f)\n");
    check(f, "ok == false and err == 'timer.after: too many pending timers (1024 in this "
             "worker)'");
    check(f, "ok2 == false and err2:find('timer.every: too many pending timers', 1, true)");
    check(f, "last:cancel()");
    check(f, "pcall(timer.every, 1, f)"); /* room for one again */
    check(f, "not pcall(timer.every, 1, f)");
    assert_int_equal(lh_timer_count(f->lua), LH_TIMER_MAX);
    start(f); /* all 1024 armed, and freed with the state */
    check(f, "select(2, pcall(timer.after, -1, f)):find('seconds >= 0', 1, true)");
    check(f, "select(2, pcall(timer.after, 0/0, f)):find('seconds >= 0', 1, true)");
    check(f, "select(2, pcall(timer.after, 1/0, f)):find('seconds >= 0', 1, true)");
    check(f, "select(2, pcall(timer.every, 0, f)):find('seconds > 0', 1, true)");
    check(f, "select(2, pcall(timer.after, 1, 'f')):find('function expected', 1, true)");
    check(f, "select(2, pcall(timer.after, 'x', f)):find('number expected', 1, true)");
}

/* sleep() inside a timer: a wait, not run time (the limit is 50 ms). */
static void test_sleep_inside(void **state)
{
    struct fx *f = *state;
    load(f, "limits = { handler_timeout_ms = 50 }\n"
            "timer.after(0, function() a = 1; sleep(0.1); b = 2 end)\n");
    start(f);
    run_until(f, "a == 1", 5);
    double t0 = now_s();
    check(f, "b == nil");
    run_until(f, "b == 2", 5);
    assert_true(now_s() - t0 >= 0.08);
    assert_int_equal(lh_timer_count(f->lua), 0);
    assert_null(strstr(read_log(f), "[error]"));
}

/* A wait of wait.h's kind, finished by the test. */
struct test_wait {
    struct lh_wait w;
    int value;
    int cancels;
};
static struct test_wait tw;

static void tw_cancel(struct lh_wait *w) { tw.cancels++; }

static int waitfor_k(lua_State *L, int status, lua_KContext k)
{
    lh_wait_resumed(L, "waitfor"); /* tw is ours again */
    lua_pushinteger(L, tw.value);
    return 1;
}

static int waitfor(lua_State *L)
{
    tw = (struct test_wait){.w = {.cancel = tw_cancel}};
    return lh_wait_yield(L, "waitfor", &tw.w, waitfor_k);
}

static void test_event_wait_inside(void **state)
{
    struct fx *f = *state;
    load(f, "timer.after(0, function() started = true; got = waitfor() end)\n");
    lua_register(f->lua->L, "waitfor", waitfor);
    start(f);
    run_until(f, "started", 5);
    run_for(f, 0.05);
    check(f, "got == nil"); /* held, not resumed */
    assert_non_null(tw.w.wake);
    tw.value = 42;
    lh_wait_done(&tw.w);
    run_until(f, "got == 42", 5);
    assert_int_equal(tw.cancels, 0); /* done and taken back, never cancelled */
}

/* A loop past handler_timeout_ms is stopped and logged; the every timer goes on. */
static void test_time_limit(void **state)
{
    struct fx *f = *state;
    load(f, "limits = { handler_timeout_ms = 50 }\n"
            "n = 0\n"
            "timer.every(0.01, function() n = n + 1; if n == 1 then while true do end end end)\n");
    start(f);
    run_until(f, "n >= 2", 10);
    assert_logged(f, "timer.every ");
    assert_logged(f, "handler ran longer than limits.handler_timeout_ms (50 ms)");
}

/* A long computation pauses after each slice: another timer runs meanwhile. */
static void test_time_slices(void **state)
{
    struct fx *f = *state;
    load(f, "ticks = 0\n"
            "timer.every(0.005, function() ticks = ticks + 1 end)\n"
            "timer.after(0, function()\n"
            "  local t0 = os.clock()\n"
            "  while os.clock() - t0 < 0.2 do end\n"
            "  seen, done = ticks, true\n"
            "end)\n");
    start(f);
    run_until(f, "done", 10);
    check(f, "seen >= 3");
}

/* A reload's or shutdown's stop: pending timers never fire, a paused call is
 * abandoned (its wait cancelled), and no new timer may be made. */
static void test_stop(void **state)
{
    struct fx *f = *state;
    load(f, "h = timer.after(0.05, function() fired = true end)\n"
            "timer.after(0, function() a = 1; sleep(0.05); b = 1 end)\n"
            "timer.after(0, function() c = 1; waitfor(); d = 1 end)\n");
    lua_register(f->lua->L, "waitfor", waitfor);
    start(f);
    run_until(f, "a == 1 and c == 1", 5);
    lh_timer_stop(f->lua);
    assert_int_equal(tw.cancels, 1);
    run_for(f, 0.15);
    check(f, "fired == nil and b == nil and d == nil");
    check(f, "h:cancel() == false");
    check(f, "select(2, pcall(timer.after, 0, print)):find('have stopped', 1, true)");
    lh_timer_stop(f->lua); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_after_fires_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_repeats_until_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_firing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_logged_and_every_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_and_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_wait_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
