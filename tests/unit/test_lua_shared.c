/* Unit tests for lua_shared.c, the `shared` table: what a worker that died holding the
 * region's lock leaves to the next caller (a whole store is kept, a damaged one
 * emptied), values that cannot be stored, and no use while config.lua loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/lua_int.h"
#include "config.h"
#include "log.h"
#include "lua_shared.h"
#include "shm.h"
#include "store.h"

#include <lauxlib.h>

struct fx {
    struct lh_shm *shm;
    struct lh_config cfg;
    struct lh_lua *lua;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct lh_shm_sizes sz = {.workers = 2, .max_connections = 16, .arena_bytes = 1 << 20};
    f->shm = lh_shm_create(&sz);
    assert_non_null(f->shm);
    size_t bytes;
    void *arena = lh_shm_arena(f->shm, &bytes);
    assert_int_equal(lh_store_init(arena, bytes), 0);
    lh_shared_attach(f->shm);
    char err[256];
    f->lua = lh_lua_new(NULL, &f->cfg, false, err, sizeof err);
    assert_non_null(f->lua);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lh_lua_free(f->lua);
    lh_config_free(&f->cfg);
    lh_shared_attach(NULL);
    lh_shm_destroy(f->shm);
    free(f);
    return 0;
}

/* Run chunk; its one result as a string (or the error), in buf. */
static const char *run(struct fx *f, const char *chunk, char *buf, size_t size)
{
    lua_State *L = f->lua->L;
    if (luaL_dostring(L, chunk) != LUA_OK)
        snprintf(buf, size, "error: %s", lua_tostring(L, -1));
    else
        snprintf(buf, size, "%s", luaL_tolstring(L, -1, NULL));
    lua_settop(L, 0);
    return buf;
}

/* The error log while fn(f) runs. */
static void capture_log(struct fx *f, void (*fn)(struct fx *), char *buf, size_t size)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    lh_log_set_error_fd(p[1]);
    fn(f);
    lh_log_set_error_fd(open("/dev/null", O_WRONLY | O_CLOEXEC)); /* closes p[1] */
    ssize_t n = read(p[0], buf, size - 1);
    close(p[0]);
    buf[n > 0 ? n : 0] = '\0';
}

/* A child takes the lock, does what hurt says to the store, and is killed. */
static void die_holding_lock(struct fx *f, void (*hurt)(void *arena))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (lh_shm_lock(f->shm) < 0)
            _exit(1);
        if (hurt)
            hurt(lh_shm_arena(f->shm, NULL));
        raise(SIGKILL);
        _exit(2);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static char out[512];

static void incr_once(struct fx *f)
{
    run(f, "return shared.incr('n', 1)", out, sizeof out);
}

static void test_a_whole_store_is_kept_after_a_death(void **state)
{
    struct fx *f = *state;
    char buf[256], log[1024];
    assert_string_equal(run(f, "return shared.incr('n', 41)", buf, sizeof buf), "41");
    die_holding_lock(f, NULL);
    capture_log(f, incr_once, log, sizeof log);
    assert_string_equal(out, "42");
    assert_non_null(strstr(log, "died holding the store's lock; the store checked out whole"));
    /* said once: the next call finds nothing to repair */
    capture_log(f, incr_once, log, sizeof log);
    assert_string_equal(out, "43");
    assert_string_equal(log, "");
}

/* Damage of any kind: lh_store_check finds it (a test of its own, in test_store.c). */
static void break_store(void *arena)
{
    ((unsigned char *)arena)[0] ^= 0xff;
}

static void test_a_damaged_store_is_emptied_after_a_death(void **state)
{
    struct fx *f = *state;
    char buf[256], log[1024];
    run(f, "shared.set('a', 'x') shared.incr('n', 5) return true", buf, sizeof buf);
    die_holding_lock(f, break_store);
    capture_log(f, incr_once, log, sizeof log);
    assert_string_equal(out, "1"); /* emptied: n starts again */
    assert_non_null(strstr(log, "left damaged and has been emptied"));
    assert_string_equal(run(f, "return tostring(shared.get('a'))", buf, sizeof buf), "nil");
    size_t bytes;
    assert_int_equal(lh_store_check(lh_shm_arena(f->shm, &bytes)), 0);
}

static void test_what_cannot_be_stored(void **state)
{
    struct fx *f = *state;
    char buf[512];
    assert_non_null(strstr(run(f, "return shared.set('f', print)", buf, sizeof buf),
                           "shared: cannot store a function"));
    assert_non_null(strstr(run(f, "return shared.set('t', { co = coroutine.create(print) })",
                               buf, sizeof buf),
                           "shared: cannot store a thread"));
    assert_non_null(strstr(run(f, "local t = {} t.t = t return shared.set('c', t)", buf,
                               sizeof buf),
                           "nested more than 100 deep (a cycle?)"));
    assert_non_null(strstr(run(f, "return shared.set('k', 1, -1)", buf, sizeof buf),
                           "ttl must be 0 (none) or more seconds"));
    assert_non_null(strstr(run(f, "return shared.incr('k', '1')", buf, sizeof buf),
                           "number expected"));
    /* nothing of the failed calls was stored, and the lock was let go */
    assert_string_equal(run(f, "return #shared.keys()", buf, sizeof buf), "0");
    assert_int_equal(lh_shm_lock(f->shm), 0);
    lh_shm_unlock(f->shm);
}

static void test_tables_keep_their_kinds(void **state)
{
    struct fx *f = *state;
    char buf[512];
    run(f, "shared.set('t', { 1, 2.0, [3.5] = 'x', [true] = false, s = 'a\\0b',"
           " n = json.null, e = json.array({}), deep = { { { 'z' } } } }) return true",
        buf, sizeof buf);
    assert_string_equal(run(f, "local t = shared.get('t')\n"
                               "return table.concat({ math.type(t[1]), math.type(t[2]),"
                               " t[3.5], tostring(t[true]), #t.s, tostring(t.n == json.null),"
                               " json.encode(t.e), t.deep[1][1][1] }, ',')",
                            buf, sizeof buf),
                        "integer,float,x,false,3,true,[],z");
}

/* A finalizer (__gc) may run at any allocation, and so while get or keys turns what
 * it copied out into Lua values; one that uses `shared` itself must not change the
 * bytes being read. */
static void test_a_finalizer_during_a_read_changes_nothing(void **state)
{
    struct fx *f = *state;
    char buf[512];
    assert_string_equal(
        run(f,
            "local a, b = {}, {}\n"
            "for i = 1, 2000 do a[i] = string.rep('a', 100) b[i] = string.rep('b', 100)"
            " shared.set(string.format('k%05d', i), i) end\n"
            "shared.set('a', a) shared.set('b', b)\n"
            "local ran = 0\n"
            "local function arm()\n"
            "  setmetatable({}, { __gc = function() ran = ran + 1 shared.get('b') arm() end })\n"
            "end\n"
            "arm()\n"
            "for round = 1, 30 do\n"
            "  local t = shared.get('a')\n"
            "  for i = 1, 2000 do\n"
            "    if t[i] ~= a[i] then return 'get: round ' .. round .. ', item ' .. i end\n"
            "  end\n"
            "  local k = shared.keys('k')\n"
            "  if #k ~= 2000 then return 'keys: round ' .. round .. ', ' .. #k .. ' keys' end\n"
            "  for i = 1, 2000 do\n"
            "    if k[i] ~= string.format('k%05d', i) then return 'keys: round ' .. round end\n"
            "  end\n"
            "end\n"
            "return ran > 30 and 'same' or 'only ' .. ran .. ' finalizers ran'",
            buf, sizeof buf),
        "same");
}

static void test_not_while_config_loads(void **state)
{
    struct fx *f = *state;
    char buf[512];
    f->lua->loading = true;
    run(f, "return shared.get('x')", buf, sizeof buf);
    f->lua->loading = false;
    assert_non_null(strstr(buf, "shared: not available while config.lua loads"));
}

int main(void)
{
    lh_log_set_error_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_whole_store_is_kept_after_a_death, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_store_is_emptied_after_a_death, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_what_cannot_be_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_keep_their_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_finalizer_during_a_read_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_while_config_loads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
