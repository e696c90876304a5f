/* Unit tests for lua_wait.c: sleep's argument, what a sleeping handler leaves for the
 * server (ctx.wait_asked, wait_ns), a wait nobody took, and the worker table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/lua_int.h"
#include "lua_fixture.h"
#include "config.h"
#include "http.h"

static const char CONFIG[] =
    "seen = tostring(worker.id) .. '/' .. tostring(worker.count)\n"
    "route('GET', '/sleep', function(req) sleep(0.25); return 'slept' end)\n"
    "route('GET', '/zero', function(req) sleep(0); return 'turn' end)\n"
    "route('GET', '/worker', function(req)\n"
    "  return seen .. ' ' .. worker.id .. '/' .. worker.count end)\n";

struct fx {
    char dir[64], path[96];
    struct lh_config cfg;
    struct lh_lua *lua;
    struct lh_request req;
    struct lh_response resp;
    struct lh_ctx ctx;
    char pathbuf[64], raw[256];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->lua = lua_fixture_load(f->dir, f->path, &f->cfg, CONFIG, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lh_response_free(&f->resp);
    lua_fixture_free(f->lua, &f->cfg, f->dir, f->path);
    free(f);
    return 0;
}

/* Start GET path on f->ctx: its first slice. */
static enum lh_step start(struct fx *f, const char *path)
{
    snprintf(f->raw, sizeof f->raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    size_t scanned = 0;
    assert_true(lh_http_parse_head(f->raw, strlen(f->raw), &scanned, 8192, &f->req) > 0);
    snprintf(f->pathbuf, sizeof f->pathbuf, "%s", path);
    f->ctx = (struct lh_ctx){.req = &f->req, .resp = &f->resp, .lua = f->lua, .body = "",
                             .remote_addr = "127.0.0.1", .pathbuf = f->pathbuf,
                             .pathcap = sizeof f->pathbuf};
    lh_response_free(&f->resp);
    lh_dispatch_init(&f->ctx);
    f->ctx.path = f->pathbuf;
    return lh_lua_route(f->lua, &f->ctx);
}

static void finish(struct fx *f)
{
    lh_lua_request_done(f->lua, &f->ctx);
}

static void assert_body(struct fx *f, const char *want)
{
    assert_int_equal(f->resp.body_len, strlen(want));
    assert_memory_equal(f->resp.body, want, strlen(want));
}

static void test_seconds(void **state)
{
    int64_t ns = 0;
    assert_int_equal(lh_wait_seconds_ns(0, &ns), 0);
    assert_int_equal(ns, 0);
    assert_int_equal(lh_wait_seconds_ns(1.5, &ns), 0);
    assert_int_equal(ns, 1500000000LL);
    assert_int_equal(lh_wait_seconds_ns(0.001, &ns), 0);
    assert_int_equal(ns, 1000000);
    assert_int_equal(lh_wait_seconds_ns(-0.001, &ns), -1);
    assert_int_equal(lh_wait_seconds_ns(NAN, &ns), -1);
    assert_int_equal(lh_wait_seconds_ns(INFINITY, &ns), -1);
    assert_int_equal(lh_wait_seconds_ns(1e12, &ns), -1);
}

/* The handler suspends with the wait for the server to take; taken, it goes on. */
static void test_sleep_asks_the_server(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, "/sleep"), LH_SUSPENDED);
    assert_true(f->ctx.wait_asked);
    assert_true(f->ctx.wait_ns == 250000000LL);
    assert_true(f->ctx.hook_paused); /* the server's pause: not run time */
    f->ctx.wait_asked = false;       /* what runq.c does when it arms the timer */
    assert_int_equal(lh_lua_route(f->lua, &f->ctx), LH_ANSWERED);
    assert_int_equal(f->resp.status, 200);
    assert_body(f, "slept");
    finish(f);
}

/* A caller that resumes without taking the wait: sleep raises, never returns early. */
static void test_wait_not_taken_raises(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, "/sleep"), LH_SUSPENDED);
    assert_int_equal(lh_lua_route(f->lua, &f->ctx), LH_ANSWERED);
    assert_int_equal(f->resp.status, 500);
    finish(f);
}

static void test_sleep_zero_is_a_turn(void **state)
{
    struct fx *f = *state;
    assert_int_equal(start(f, "/zero"), LH_SUSPENDED);
    assert_true(f->ctx.wait_asked);
    assert_true(f->ctx.wait_ns == 0);
    f->ctx.wait_asked = false;
    assert_int_equal(lh_lua_route(f->lua, &f->ctx), LH_ANSWERED);
    assert_body(f, "turn");
    finish(f);
}

/* nil while config.lua runs; a worker's own values once set. */
static void test_worker_table(void **state)
{
    struct fx *f = *state;
    assert_int_equal(lh_lua_set_worker(f->lua, 3, 4), 0);
    assert_int_equal(start(f, "/worker"), LH_ANSWERED);
    assert_body(f, "nil/nil 3/4");
    finish(f);
    assert_int_equal(lh_lua_set_worker(NULL, 0, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seconds),
        cmocka_unit_test_setup_teardown(test_sleep_asks_the_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_not_taken_raises, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_zero_is_a_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
