/* Unit tests for lua_sql.c: `sql` in Lua on a plain state, each test in a fresh
 * temporary folder (the base_dir of relative paths). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>
#include <sqlite3.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "lua_sql.h"
#include "lua_test_util.h"

struct fx {
    lua_State *L;
    char dir[64];
};

/* ---- what the tests watch ---------------------------------------------------------------- */

static int time_up;          /* what over_time answers */
static lua_State *asked_L;   /* the thread it was last asked about */
static int asked;            /* how often */

static int test_over_time(lua_State *L)
{
    asked_L = L;
    asked++;
    return time_up;
}

/* Statements prepared, counted by standing in for SQLite's own function (lua_sql.o is
 * linked into this program, so its calls come here). */
static int prepares;

int sqlite3_prepare_v3(sqlite3 *db, const char *sql, int n, unsigned int flags,
                       sqlite3_stmt **st, const char **tail)
{
    static int (*real)(sqlite3 *, const char *, int, unsigned int, sqlite3_stmt **,
                       const char **);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_prepare_v3");
    prepares++;
    return real(db, sql, n, flags, st, tail);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static lua_State *new_state(const char *base_dir)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lh_sql_install(L, base_dir, &(struct lh_sql_host){.over_time = test_over_time});
    lua_pushstring(L, base_dir);
    lua_setglobal(L, "DIR");
    return L;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/lh-sql-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->L = new_state(f->dir);
    time_up = 0;
    asked = 0;
    asked_L = NULL;
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->L)
        lua_close(f->L);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* The notices sql.open writes go nowhere, except where a test reads them. */
static int group_setup(void **state)
{
    lh_log_set_error_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    return 0;
}

static int group_teardown(void **state)
{
    lh_log_set_error_fd(2);
    return 0;
}

static const char ITEMS[] =
    "db = sql.open('app.db')\n"
    "db:exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, v)')\n"
    "function count() return db:row('SELECT count(*) AS n FROM items').n end\n"
    "return true";

/* Run chunk in a child process (forked now); its exit status: 0 when it ran. */
static pid_t in_child(lua_State *L, const char *chunk)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = luaL_dostring(L, chunk);
        if (rc != LUA_OK)
            fprintf(stderr, "child: %s\n", lua_tostring(L, -1));
        _exit(rc == LUA_OK ? 0 : 1);
    }
    return pid;
}

static void child_succeeded(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- values ------------------------------------------------------------------------------ */

static void test_binding_each_type(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    /* what SQLite stored, as SQLite sees it */
    check(L, "local function t(v) return db:row('SELECT typeof(?) AS t, ? IS NULL AS n', v, v) end\n"
             "return t(nil).t == 'null' and t(nil).n == 1 and t(true).t == 'integer'\n"
             "  and t(1).t == 'integer' and t(0.5).t == 'real' and t('x').t == 'text'");
    check(L, "db:exec('INSERT INTO items (id, v) VALUES (1, ?)', nil)\n"
             "local r = db:row('SELECT * FROM items WHERE id = 1')\n"
             "return r.id == 1 and r.v == nil and r.name == nil");
    check(L, "db:exec('INSERT INTO items (id, v) VALUES (2, ?), (3, ?)', true, false)\n"
             "return db:row('SELECT v FROM items WHERE id = 2').v == 1\n"
             "  and db:row('SELECT v FROM items WHERE id = 3').v == 0");
    check(L, "local big, small = math.maxinteger, math.mininteger\n"
             "db:exec('INSERT INTO items (id, v) VALUES (4, ?), (5, ?)', big, small)\n"
             "local a, b = db:row('SELECT v FROM items WHERE id = 4').v,\n"
             "             db:row('SELECT v FROM items WHERE id = 5').v\n"
             "return a == big and b == small and math.type(a) == 'integer'");
    check(L, "db:exec('INSERT INTO items (id, v) VALUES (6, ?), (7, ?)', 0.5, 2.0)\n"
             "local a, b = db:row('SELECT v FROM items WHERE id = 6').v,\n"
             "             db:row('SELECT v FROM items WHERE id = 7').v\n"
             "return a == 0.5 and math.type(a) == 'float' and math.type(b) == 'float'");
    check(L, "local s = 'a\\0b\\255\\254\\0' .. string.rep('\\200', 3)\n"
             "db:exec('INSERT INTO items (id, name) VALUES (8, ?)', s)\n"
             "local r = db:row('SELECT name, length(CAST(name AS BLOB)) AS n FROM items "
             "WHERE id = 8')\n"
             "return r.name == s and #r.name == 9 and r.n == 9\n"
             "  and db:row('SELECT id FROM items WHERE name = ?', s).id == 8");
    check(L, "db:exec('INSERT INTO items (id, name) VALUES (9, ?)', '')\n"
             "return db:row('SELECT name FROM items WHERE id = 9').name == ''");
}

static void test_rows_by_column_name_with_types(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, "db = sql.open(':memory:')\n"
             "local r = db:row(\"SELECT 7 AS i, 1.5 AS f, 'txt' AS t, x'00ff' AS b, NULL AS n\")\n"
             "return math.type(r.i) == 'integer' and r.i == 7 and math.type(r.f) == 'float'\n"
             "  and r.f == 1.5 and r.t == 'txt' and r.b == '\\0\\255' and r.n == nil\n"
             "  and rawget(r, 'n') == nil and r[1] == nil");
    check(L, "local r = db:row(\"SELECT x'' AS b, '' AS t\") return r.b == '' and r.t == ''");
    check(L, "local n = 0 for k in pairs(db:row('SELECT 1 AS a, NULL AS b, 2 AS c')) do\n"
             "  n = n + 1 end return n == 2");
    check(L, "db:exec('CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, score REAL)')\n"
             "db:exec(\"INSERT INTO p (name, score) VALUES ('a', 1), ('b', NULL), (NULL, 3.25)\")\n"
             "local rows = db:query('SELECT id, name, score FROM p WHERE id > ? ORDER BY id', 0)\n"
             "return #rows == 3 and rows[1].name == 'a' and rows[1].score == 1.0\n"
             "  and math.type(rows[1].score) == 'float' and rows[2].score == nil\n"
             "  and rows[3].name == nil and rows[3].id == 3 and rows[3].score == 3.25");
    check(L, "local rows = db:query('SELECT * FROM p WHERE id > ?', 10)\n"
             "return type(rows) == 'table' and #rows == 0 and next(rows) == nil");
}

static void test_row_is_nil_when_there_is_none(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "return db:row('SELECT * FROM items WHERE id = ?', 1) == nil");
    check(L, "db:exec(\"INSERT INTO items (name) VALUES ('a'), ('b')\")\n"
             "return db:row('SELECT name FROM items ORDER BY id').name == 'a'\n"
             "  and db:row('SELECT * FROM items WHERE id = ?', 3) == nil");
    /* only blanks or a comment: nothing to run */
    check(L, "return db:row('  -- nothing') == nil and #db:query('') == 0\n"
             "  and db:exec('').changes == 0");
}

static void test_bad_values_raise(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check_error(L, "db:exec('INSERT INTO items (name, v) VALUES (?, ?)', 'a', {})",
                "sql: cannot bind a table (value 2)");
    check_error(L, "db:row('SELECT ?', print)", "sql: cannot bind a function (value 1)");
    check_error(L, "db:query('SELECT ?, ?', 1, io.stdout)", "sql: cannot bind a userdata (value 2)");
    check_error(L, "db:query('SELECT ?', coroutine.create(print))",
                "sql: cannot bind a thread (value 1)");
    check_error(L, "db:exec('INSERT INTO items (name, v) VALUES (?, ?)', 'a')",
                "sql: the statement takes 2 values, 1 given");
    check_error(L, "db:row('SELECT ?', 1, 2)", "sql: the statement takes 1 value, 2 given");
    check_error(L, "db:row('SELECT 1', nil)", "sql: the statement takes 0 values, 1 given");
    check_error(L, "db:row('SELECT :name', 1)", "only ? placeholders");
    /* none of it got in, and the statements work afterwards */
    check(L, "return count() == 0 and\n"
             "  db:exec('INSERT INTO items (name, v) VALUES (?, ?)', 'a', 1).changes == 1");
    check_error(L, "db.row(42, 'SELECT 1')", "sql.db expected");
}

static void test_exec_returns_changes_and_last_id(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "local r = db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "return r.changes == 1 and r.last_id == 1");
    check(L, "local r = db:exec(\"INSERT INTO items (id, name) VALUES (10, 'b'), (11, 'c')\")\n"
             "return r.changes == 2 and r.last_id == 11");
    check(L, "local r = db:exec('UPDATE items SET v = ? WHERE id >= ?', 5, 10)\n"
             "return r.changes == 2 and r.last_id == 11");
    /* a statement that changes no rows is not given the last one's count */
    check(L, "return db:exec('CREATE TABLE other (x)').changes == 0\n"
             "  and db:exec('SELECT * FROM items').changes == 0");
    check(L, "return db:exec('UPDATE items SET v = 1 WHERE id = 99').changes == 0");
    check(L, "return db:exec('DELETE FROM items').changes == 3 and count() == 0");
    check(L, "local id = db:exec('INSERT INTO items (name) VALUES (?)', 'z').last_id\n"
             "return db:row('SELECT name FROM items WHERE id = ?', id).name == 'z'");
}

static void test_exec_runs_a_schema_script(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, "db = sql.open('s.db')\n"
             "local r = db:exec([[\n"
             "  -- the schema\n"
             "  CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\n"
             "  CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id));\n"
             "  INSERT INTO a (x) VALUES ('one'), ('two');\n"
             "  INSERT INTO b (a_id) VALUES (2);  /* a comment at the end */\n"
             "]])\n"
             "return r.changes == 3 and r.last_id == 1\n"
             "  and db:row('SELECT count(*) AS n FROM a').n == 2\n"
             "  and db:row('SELECT a.x FROM b JOIN a ON a.id = b.a_id').x == 'two'");
    /* foreign_keys is on */
    check_error(L, "db:exec('INSERT INTO b (a_id) VALUES (?)', 99)", "FOREIGN KEY constraint failed");
    /* a script stops at its first failure, after running what came before */
    check_error(L, "db:exec(\"INSERT INTO a (x) VALUES ('three'); INSERT INTO nope VALUES (1)\")",
                "no such table: nope");
    check(L, "return db:row('SELECT count(*) AS n FROM a').n == 3");
    /* several statements only where exec has no values */
    check_error(L, "db:exec('INSERT INTO a (x) VALUES (?); DELETE FROM a', 'x')",
                "more than one statement");
    check_error(L, "db:query('SELECT 1; SELECT 2')", "more than one statement");
    check_error(L, "db:row('SELECT 1; DELETE FROM a')", "more than one statement");
    check_error(L, "db:exec('SELECT 1; SELECT ?')", "takes 1 value, 0 given");
    check(L, "return db:row('SELECT count(*) AS n FROM a').n == 3");
    /* one statement, a semicolon and a comment after it: no script */
    check(L, "return db:exec('INSERT INTO a (x) VALUES (?); -- done', 'four').changes == 1");
}

static void test_sql_errors_carry_sqlite_messages(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check_error(L, "db:query('SELECT * FROM nope WHERE id = ?', 1)", "sql: no such table: nope");
    check_error(L, "db:query('SELECT * FROM nope WHERE id = ?', 1)",
                "(in \"SELECT * FROM nope WHERE id = ?\")");
    check_error(L, "db:exec('\\n  SELEC 1')", "syntax error (in \"SELEC 1\")");
    check_error(L, "db:exec('SELECT x FROM items WHERE ' .. string.rep('1 = 1 AND ', 20) .. 'y')",
                "sql: no such column: x (in \"SELECT x FROM items WHERE 1 = 1 AND 1 = 1 AND 1 = 1...\")");
    check(L, "db:exec('CREATE UNIQUE INDEX u ON items (name)')\n"
             "db:exec('INSERT INTO items (name) VALUES (?)', 'a') return true");
    check_error(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'a')",
                "sql: UNIQUE constraint failed: items.name");
    /* an error is a Lua error a handler may catch, and the handle goes on */
    check(L, "local ok, e = pcall(db.exec, db, 'INSERT INTO items (name) VALUES (?)', 'a')\n"
             "return not ok and e:find('^sql: ') and count() == 1");
}

static void test_injection_strings_are_stored_verbatim(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "local evil = { \"'); DROP TABLE items; --\", \"Robert'); DROP TABLE items;--\",\n"
             "  \"1 OR 1=1\", \"x' OR 'a'='a\", '\\\"; DELETE FROM items; --', '?', '%s %d' }\n"
             "for _, s in ipairs(evil) do db:exec('INSERT INTO items (name) VALUES (?)', s) end\n"
             "for i, s in ipairs(evil) do\n"
             "  if db:row('SELECT name FROM items WHERE id = ?', i).name ~= s then return false end\n"
             "  if db:row('SELECT id FROM items WHERE name = ?', s).id ~= i then return false end\n"
             "end\n"
             "return count() == #evil and #db:query('SELECT * FROM items WHERE name = ?',\n"
             "  \"x' OR 'a'='a\") == 1");
}

/* ---- transactions ----------------------------------------------------------------------- */

static void test_tx_commits_and_returns_results(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "local a, b, c = db:tx(function(d)\n"
             "  assert(d == db)\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'b')\n"
             "  return 1, nil, 'three'\n"
             "end)\n"
             "return a == 1 and b == nil and c == 'three' and count() == 2");
    check(L, "return select('#', db:tx(function() end)) == 0");
    /* a second handle on the file sees it: committed */
    check(L, "local other = sql.open('app.db')\n"
             "local n = other:row('SELECT count(*) AS n FROM items').n other:close() return n == 2");
    check_error(L, "db:tx(42)", "function expected");
}

static void test_tx_error_rolls_back_and_raises_the_same_value(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'kept') return count() == 1");
    check(L, "local ok, e = pcall(db.tx, db, function()\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'lost')\n"
             "  db:exec('UPDATE items SET name = ?', 'changed')\n"
             "  error('boom', 0)\n"
             "end)\n"
             "return not ok and e == 'boom' and count() == 1\n"
             "  and db:row('SELECT name FROM items').name == 'kept'");
    check(L, "local err = { code = 42 }\n"
             "local ok, e = pcall(db.tx, db, function()\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'lost') error(err) end)\n"
             "return not ok and rawequal(e, err) and count() == 1");
    /* an SQL error inside rolls back what came before it */
    check(L, "local ok, e = pcall(db.tx, db, function()\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'lost')\n"
             "  db:exec('INSERT INTO nope VALUES (1)') end)\n"
             "return not ok and e:find('no such table: nope') and count() == 1");
    /* and the handle is out of the transaction: another one begins */
    check(L, "db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'b') end)\n"
             "return count() == 2");
}

static void test_nested_tx_uses_a_savepoint(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    /* the inner error, caught, undoes the inner level only */
    check(L, "db:tx(function()\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'outer')\n"
             "  local ok, e = pcall(db.tx, db, function()\n"
             "    db:exec('INSERT INTO items (name) VALUES (?)', 'inner')\n"
             "    error('inner fails', 0) end)\n"
             "  assert(not ok and e == 'inner fails')\n"
             "  assert(count() == 1)\n"
             "  db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'inner2') end)\n"
             "end)\n"
             "local names = {} for _, r in ipairs(db:query('SELECT name FROM items ORDER BY id')) do\n"
             "  names[#names + 1] = r.name end\n"
             "return table.concat(names, ',') == 'outer,inner2'");
    /* the outer error undoes an inner level that had succeeded */
    check(L, "local ok = pcall(db.tx, db, function()\n"
             "  db:tx(function() db:tx(function()\n"
             "    db:exec('INSERT INTO items (name) VALUES (?)', 'deep') end) end)\n"
             "  assert(count() == 3)\n"
             "  error('outer fails') end)\n"
             "return not ok and count() == 2");
    check(L, "return db:tx(function() return db:tx(function() return 'x' end) end) == 'x'");
    /* an inner level whose coroutine never came back: the outer one cannot commit */
    check(L, "local ok, e = pcall(db.tx, db, function()\n"
             "  paused = coroutine.create(function()\n"
             "    db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'never')\n"
             "      coroutine.yield() end) end)\n"
             "  coroutine.resume(paused)\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'after')\n"
             "end)\n"
             "assert(coroutine.close(paused))\n"
             "return not ok and e:find('an inner db:tx was still open') and count() == 2\n"
             "  and db:tx(function() return count() end) == 2");
}

static void test_tx_fn_may_yield(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "other = sql.open('app.db')\n"
             "function seen() return other:row('SELECT count(*) AS n FROM items').n end\n"
             "co = coroutine.wrap(function()\n"
             "  return db:tx(function()\n"
             "    db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "    local v = coroutine.yield('paused')\n"
             "    db:exec('INSERT INTO items (name) VALUES (?)', v)\n"
             "    return 'done', v\n"
             "  end)\n"
             "end)\n"
             "return co() == 'paused'");
    /* paused inside: the other connection sees nothing yet, this one sees its row */
    check(L, "return seen() == 0 and count() == 1");
    check(L, "local a, b = co('b') return a == 'done' and b == 'b' and seen() == 2");
    /* an error after the yield still rolls back */
    check(L, "co = coroutine.wrap(function()\n"
             "  return pcall(db.tx, db, function()\n"
             "    db:exec('INSERT INTO items (name) VALUES (?)', 'x')\n"
             "    coroutine.yield()\n"
             "    error({ 'after the yield' })\n"
             "  end)\n"
             "end)\n"
             "co()\n"
             "local ok, e = co()\n"
             "return not ok and e[1] == 'after the yield' and seen() == 2 and count() == 2");
    /* a yield inside a nested level */
    check(L, "co = coroutine.wrap(function()\n"
             "  return db:tx(function()\n"
             "    local ok = pcall(db.tx, db, function()\n"
             "      db:exec('INSERT INTO items (name) VALUES (?)', 'inner')\n"
             "      coroutine.yield() error('no') end)\n"
             "    db:exec('INSERT INTO items (name) VALUES (?)', 'outer')\n"
             "    return ok end)\n"
             "end)\n"
             "co()\n"
             "return co() == false and seen() == 3\n"
             "  and db:row('SELECT name FROM items ORDER BY id DESC').name == 'outer'");
}

/* A coroutine paused inside fn and never resumed: closing it, or its being collected,
 * rolls the transaction back (and lets go of the write lock). */
static void test_abandoned_tx_is_rolled_back(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "other = sql.open('app.db')\n"
             "local co = coroutine.create(function()\n"
             "  db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "    coroutine.yield() end) end)\n"
             "coroutine.resume(co)\n"
             "assert(count() == 1)\n"
             "assert(coroutine.close(co))\n"
             "return count() == 0 and\n"
             "  other:exec('INSERT INTO items (name) VALUES (?)', 'b').changes == 1");
    check(L, "local co = coroutine.create(function()\n"
             "  db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'c')\n"
             "    coroutine.yield() end) end)\n"
             "coroutine.resume(co)\n"
             "assert(count() == 2)\n"
             "co = nil collectgarbage() collectgarbage()\n"
             "return count() == 1 and\n"
             "  db:tx(function() return db:row('SELECT name FROM items').name end) == 'b'");
}

/* ---- time ------------------------------------------------------------------------------ */

static const char LONG_QUERY[] =
    "'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
    "SELECT count(*) AS n FROM c'";

static void test_over_time_interrupts_a_query(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    char chunk[1024];
    check(L, "db = sql.open('t.db') return db:row('SELECT 1 AS x').x == 1");
    time_up = 1;
    double t0 = now_s();
    snprintf(chunk, sizeof chunk,
             "return coroutine.wrap(function()\n"
             "  CO = coroutine.running()\n"
             "  local ok, e = pcall(db.row, db, %s)\n"
             "  return not ok and e == 'sql: interrupted: the handler ran out of time'\n"
             "end)()", LONG_QUERY);
    check(L, chunk);
    assert_true(now_s() - t0 < 2);
    assert_true(asked > 0);
    lua_getglobal(L, "CO");
    assert_ptr_equal(asked_L, lua_tothread(L, -1)); /* asked about the running thread */
    lua_pop(L, 1);
    /* a query too short to reach PROGRESS_STEPS is not asked */
    asked = 0;
    check(L, "return db:row('SELECT 2 AS x').x == 2");
    assert_int_equal(asked, 0);
    /* time again: the handle works */
    time_up = 0;
    check(L, "return db:row('SELECT 1 AS x').x == 1 and\n"
             "  db:row([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c\n"
             "    WHERE x < 10000) SELECT count(*) AS n FROM c]]).n == 10000");
    assert_true(asked > 0);
}

static void test_over_time_in_tx_rolls_back(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    char chunk[1024];
    check(L, ITEMS);
    time_up = 1;
    snprintf(chunk, sizeof chunk,
             "local ok, e = pcall(db.tx, db, function()\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "  db:row(%s) end)\n"
             "return not ok and e:find('interrupted')", LONG_QUERY);
    check(L, chunk);
    time_up = 0;
    check(L, "return count() == 0 and\n"
             "  db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'b') end) == nil\n"
             "  and count() == 1");
}

/* Another connection holds the write lock: a writer waits for it, but not past its
 * handler's time. */
static void test_busy_wait_gives_up_when_over_time(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "other = sql.open('app.db') other:exec('BEGIN IMMEDIATE') return true");
    time_up = 1;
    double t0 = now_s();
    check_error(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'a')",
                "sql: interrupted: the handler ran out of time");
    check_error(L, "db:tx(function() end)", "sql: interrupted");
    assert_true(now_s() - t0 < 1);
    time_up = 0;
    check(L, "other:exec('COMMIT')\n"
             "return db:exec('INSERT INTO items (name) VALUES (?)', 'a').changes == 1");
}

static void test_busy_wait_outlasts_a_short_lock(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* holds the lock for 300 ms */
        int ok = luaL_dostring(L, "db:exec('BEGIN IMMEDIATE')\n"
                                  "db:exec('INSERT INTO items (name) VALUES (?)', 'child')") == 0;
        ok = ok && write(p[1], "x", 1) == 1;
        usleep(300 * 1000);
        ok = ok && luaL_dostring(L, "db:exec('COMMIT')") == 0;
        _exit(ok ? 0 : 1);
    }
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    double t0 = now_s();
    check(L, "return db:exec('INSERT INTO items (name) VALUES (?)', 'parent').changes == 1");
    assert_true(now_s() - t0 > 0.2);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check(L, "return count() == 2");
    close(p[0]);
    close(p[1]);
}

/* ---- files and processes ------------------------------------------------------------------ */

static void test_relative_path_is_under_base_dir(void **state)
{
    struct fx *f = *state;
    lua_State *L = f->L;
    check(L, "db = sql.open('data/deeper/app.db') db:exec('CREATE TABLE t (x)') return true");
    char path[256];
    snprintf(path, sizeof path, "%s/data/deeper/app.db", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    snprintf(path, sizeof path, "%s/data/deeper", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755 & ~(mode_t)022);
    /* an absolute path, and the same file through it */
    check(L, "local again = sql.open(DIR .. '/data/deeper/app.db')\n"
             "again:exec('INSERT INTO t VALUES (1)')\n"
             "return db:row('SELECT x FROM t').x == 1 and tostring(again):find('app.db')");
    check_error(L, "sql.open('data/')", "names a folder, not a file");
    check_error(L, "sql.open('a\\0b')", "NUL byte");
    check(L, "io.open(DIR .. '/plain', 'w'):close() return true");
    check_error(L, "sql.open('plain/x.db')", "plain is not a folder");
    /* a folder where the file should be, a file that is no database: a failed open
     * leaves nothing behind (the fork below would trip on it) */
    check_error(L, "sql.open('data')", "sql: cannot open");
    check(L, "local f = io.open(DIR .. '/junk.db', 'w') f:write(string.rep('junk', 1000))\n"
             "f:close() return true");
    check_error(L, "junk = { pcall(sql.open, 'junk.db') } error(junk[2])",
                "file is not a database");
    child_succeeded(in_child(L, "assert(db:row('SELECT x FROM t').x == 1)"));
}

static void test_dotdot_path_opens_and_is_logged(void **state)
{
    struct fx *f = *state;
    char conf[128], real[4096], want[4200];
    snprintf(conf, sizeof conf, "%s/conf", f->dir);
    assert_int_equal(mkdir(conf, 0755), 0);
    lua_close(f->L);
    f->L = new_state(conf); /* config.lua's folder is dir/conf */
    assert_non_null(realpath(f->dir, real));
    snprintf(want, sizeof want, "[notice] sql: opened %s/data/up.db\n", real);

    int p[2];
    assert_int_equal(pipe(p), 0);
    lh_log_set_error_fd(p[1]);
    check(f->L, "db = sql.open('../data/up.db') db:exec('CREATE TABLE t (x)') return true");
    lh_log_set_error_fd(open("/dev/null", O_WRONLY | O_CLOEXEC)); /* closes p[1] */
    char buf[8192];
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    if (!strstr(buf, want))
        fail_msg("log: %s\nwanted: %s", buf, want);
    char file[4300];
    snprintf(file, sizeof file, "%s/data/up.db", real);
    assert_int_equal(access(file, F_OK), 0);
}

static void test_wal_mode_and_two_handles(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "other = sql.open('app.db')\n"
             "return db:row('PRAGMA journal_mode').journal_mode == 'wal'\n"
             "  and other:row('PRAGMA journal_mode').journal_mode == 'wal'\n"
             "  and other:row('PRAGMA synchronous').synchronous == 1\n"
             "  and other:row('PRAGMA foreign_keys').foreign_keys == 1");
    check(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "other:exec('INSERT INTO items (name) VALUES (?)', 'b')\n"
             "return count() == 2 and #other:query('SELECT * FROM items') == 2");
    /* a reader does not stop the other handle writing, and goes on seeing its snapshot */
    check(L, "db:exec('BEGIN') local n = count()\n"
             "local ok = other:exec('INSERT INTO items (name) VALUES (?)', 'c').changes == 1\n"
             "local same = count() == n db:exec('COMMIT')\n"
             "return ok and same and count() == 3");
    check(L, "return sql.open(':memory:'):row('PRAGMA journal_mode').journal_mode == 'memory'");
}

/* Two worker-like processes write into one file at once: all rows arrive. */
static void test_two_processes_write_concurrently(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    int go[2];
    assert_int_equal(pipe(go), 0);
    fflush(NULL);
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            close(go[1]);
            char c;
            (void)!read(go[0], &c, 1); /* EOF when the parent says go */
            char chunk[256];
            snprintf(chunk, sizeof chunk,
                     "for i = 1, 200 do\n"
                     "  db:exec('INSERT INTO items (name, v) VALUES (?, ?)', 'w%d', i)\n"
                     "end", k);
            if (luaL_dostring(L, chunk) != LUA_OK) {
                fprintf(stderr, "child %d: %s\n", k, lua_tostring(L, -1));
                _exit(1);
            }
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    check(L, "return count() == 400\n"
             "  and db:row('SELECT count(*) AS n FROM items WHERE name = ?', 'w0').n == 200\n"
             "  and db:row('SELECT count(*) AS n FROM items WHERE name = ?', 'w1').n == 200");
}

/* An idle handle's connection is closed just before fork, and each side opens its own
 * on next use: a TEMP table (the connection's own) is gone on both. */
static void test_fork_reopens_an_idle_handle(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "db:exec('CREATE TEMP TABLE mine (x)')\n"
             "db:exec('INSERT INTO items (name) VALUES (?)', 'parent')\n"
             "return db:row('SELECT name FROM items').name == 'parent'"); /* cached too */
    pid_t pid = in_child(L,
        "local ok, e = pcall(db.row, db, 'SELECT * FROM mine')\n"
        "assert(not ok and e:find('no such table: mine'), 'the inherited connection')\n"
        "assert(db:row('SELECT name FROM items').name == 'parent')\n"
        "db:exec('INSERT INTO items (name) VALUES (?)', 'child')\n"
        "db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'child tx') end)\n"
        "assert(db:row('PRAGMA journal_mode').journal_mode == 'wal')\n"
        "assert(db:row('PRAGMA foreign_keys').foreign_keys == 1)");
    child_succeeded(pid);
    check(L, "return count() == 3 and not pcall(db.row, db, 'SELECT * FROM mine')\n"
             "  and db:exec('INSERT INTO items (name) VALUES (?)', 'parent again').changes == 1");
}

/* A handle in a transaction at fork keeps its connection in the parent; the child
 * forgets it and opens its own. */
static void test_fork_reopens_a_busy_handle(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "db:exec('CREATE TEMP TABLE mine (x)')\n"
             "db:exec('INSERT INTO items (name) VALUES (?)', 'parent')\n"
             "db:exec('BEGIN') return count() == 1");
    pid_t pid = in_child(L,
        "assert(not pcall(db.row, db, 'SELECT * FROM mine'), 'the inherited connection')\n"
        "db:exec('INSERT INTO items (name) VALUES (?)', 'child')\n"
        "db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'child tx') end)");
    child_succeeded(pid);
    check(L, "local n = count() db:exec('COMMIT')\n" /* the parent's read snapshot */
             "return n == 1 and count() == 3 and #db:query('SELECT * FROM mine') == 0");
}

/* The parent closes its handle while a child writes through its own: nothing is lost
 * (were the child's connection to trust the locks SQLite noted for the parent's, the
 * parent's close would checkpoint and delete the WAL under it). */
static void test_parent_closing_after_fork_loses_nothing(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'parent') return true");
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        int ok = luaL_dostring(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'c1')") == 0;
        ok = ok && write(done[1], "x", 1) == 1 && read(go[0], &c, 1) == 1;
        ok = ok && luaL_dostring(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'c2')") == 0;
        _exit(ok ? 0 : 1);
    }
    char c;
    assert_int_equal(read(done[0], &c, 1), 1);
    check(L, "db:close() return true");
    assert_int_equal(write(go[1], "x", 1), 1);
    child_succeeded(pid);
    check(L, "db = sql.open('app.db') return count() == 3");
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
}

/* __gc in a child must not close a connection it inherited (SQLite's memory shows it:
 * closing frees the connection's), while a connection of its own is closed. */
static void test_gc_in_the_child_leaves_the_inherited_connection(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "db:exec('BEGIN') return count() == 1"); /* busy: inherited */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        sqlite3_int64 before = sqlite3_memory_used();
        if (luaL_dostring(L, "db = nil collectgarbage() collectgarbage()") != LUA_OK)
            bad |= 1;
        if (sqlite3_memory_used() < before - 1024)
            bad |= 2; /* the inherited connection was closed */
        lua_State *own = new_state("/tmp");
        if (luaL_dostring(own, "x = sql.open(':memory:') x:exec('CREATE TABLE t (a)')") != LUA_OK)
            bad |= 4;
        before = sqlite3_memory_used();
        lua_close(own);
        if (sqlite3_memory_used() > before - 1024)
            bad |= 8; /* the measure would not have seen it */
        _exit(bad);
    }
    child_succeeded(pid);
    check(L, "db:exec('COMMIT') return count() == 1 and\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'b').changes == 1 and count() == 2");
}

/* ---- the handle ------------------------------------------------------------------------ */

static void test_use_after_close_raises(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, "db = sql.open('c.db') db:exec('CREATE TABLE t (x)') db:close() db:close()\n"
             "return tostring(db):find('closed')");
    check_error(L, "db:row('SELECT 1')", "sql: the database is closed");
    check_error(L, "db:exec('SELECT 1')", "sql: the database is closed");
    check_error(L, "db:query('SELECT 1')", "sql: the database is closed");
    check_error(L, "db:tx(function() end)", "sql: the database is closed");
    check(L, "do local d <close> = sql.open('c.db') kept = d\n"
             "  assert(d:row('SELECT count(*) AS n FROM t').n == 0) end\n"
             "return not pcall(kept.row, kept, 'SELECT 1')");
    /* closed inside its own tx: the rollback has happened, the tx says so */
    check_error(L, "local d = sql.open('c.db') d:tx(function() d:close() end)",
                "the transaction was lost");
}

static void test_statements_are_cached(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "for i = 1, 10 do db:exec('INSERT INTO items (name) VALUES (?)', 'n' .. i) end\n"
             "return true");
    int before = prepares;
    check(L, "for i = 1, 1000 do\n"
             "  local r = db:row('SELECT id, name FROM items WHERE id = ?', i % 10 + 1)\n"
             "  if r.name ~= 'n' .. (i % 10 + 1) then return false end\n"
             "end return true");
    assert_int_equal(prepares - before, 1);
    /* more texts than the cache holds: the oldest goes, and is prepared again later */
    check(L, "for i = 1, 100 do\n"
             "  if db:row('SELECT ' .. i .. ' AS x').x ~= i then return false end end\n"
             "return true");
    before = prepares;
    check(L, "return db:row('SELECT 100 AS x').x == 100");
    assert_int_equal(prepares, before); /* recent: still there */
    check(L, "return db:row('SELECT 1 AS x').x == 1");
    assert_true(prepares > before); /* evicted */
    check(L, "return db:row('SELECT id, name FROM items WHERE id = ?', 3).name == 'n3'");
    /* a schema change under a cached statement */
    check(L, "db:exec('ALTER TABLE items ADD COLUMN extra TEXT DEFAULT \\'e\\'')\n"
             "return db:row('SELECT * FROM items WHERE id = ?', 3).extra == 'e'");
}

/* A Lua memory error while rows are built leaves the statement stepping; the next use
 * resets it (else binding it fails). */
struct budget {
    size_t used, limit;
};

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct budget *b = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->used -= old;
        return NULL;
    }
    if (b->limit && nsize > old && b->used - old + nsize > b->limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        b->used = b->used - old + nsize;
    return p;
}

static void test_memory_error_mid_query_is_recovered(void **state)
{
    struct budget b = {0, 0};
    lua_State *L = lua_newstate(limited_alloc, &b);
    luaL_openlibs(L);
    lh_sql_install(L, "/tmp", NULL);
    check(L, "db = sql.open(':memory:')\n"
             "db:exec('CREATE TABLE t (x INTEGER, s TEXT)')\n"
             "db:exec([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c\n"
             "  WHERE x < 5000) INSERT INTO t SELECT x, 'padding padding' || x FROM c]])\n"
             "Q = 'SELECT x, s FROM t WHERE x > ?'\n"
             "return #db:query(Q, 0) == 5000");
    lua_gc(L, LUA_GCCOLLECT);
    b.limit = b.used + 64 * 1024;
    check(L, "local ok, e = pcall(db.query, db, Q, 0) return not ok and e:find('not enough memory')");
    b.limit = 0;
    check(L, "return #db:query(Q, 0) == 5000 and db:row(Q, 4999).x == 5000");
    lua_close(L);
}

/* Who owns() says runs now. */
static const void *owner_now;
static const void *test_owner(lua_State *L)
{
    return owner_now;
}

static void test_tx_belongs_to_whoever_began_it(void **state)
{
    struct fx *f = *state;
    static const char a = 'a', b = 'b';
    lua_close(f->L);
    f->L = luaL_newstate();
    lua_State *L = f->L;
    luaL_openlibs(L);
    lh_sql_install(L, f->dir, &(struct lh_sql_host){.owner = test_owner});
    owner_now = &a;
    check(L, ITEMS);
    /* a pauses inside its transaction */
    check(L, "co = coroutine.wrap(function()\n"
             "  return db:tx(function()\n"
             "    db:exec('INSERT INTO items (name) VALUES (?)', 'a')\n"
             "    coroutine.yield()\n"
             "    return 'done' end) end)\n"
             "co() return true");
    assert_true(lh_sql_in_tx(&a));
    assert_false(lh_sql_in_tx(&b));
    /* b may not run its statements inside a's transaction, nor begin one there */
    owner_now = &b;
    check_error(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'b')",
                "inside a transaction that another request began and paused in");
    check_error(L, "db:tx(function() end)", "inside a transaction that another request");
    owner_now = &a;
    check(L, "return co() == 'done' and count() == 1");
    assert_false(lh_sql_in_tx(&a));
    owner_now = &b;
    check(L, "db:exec('INSERT INTO items (name) VALUES (?)', 'b') return count() == 2");
    owner_now = NULL;
}

/* A finalizer (__gc) may run at any allocation, and so while a query builds its rows;
 * one that uses the same handle must not reset, rebind or finalize the statement
 * still stepping. */
static void test_a_finalizer_during_a_query(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "db:exec([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c\n"
             "  WHERE x < 3000) INSERT INTO items (id, name) SELECT x, 'item ' || x FROM c]])\n"
             "return true");
    check(L, "local ran, refused = 0, 0\n"
             "local function arm()\n"
             "  setmetatable({}, { __gc = function()\n"
             "    arm()\n"
             "    ran = ran + 1\n"
             "    local ok, e = pcall(function()\n"
             "      db:row('SELECT 1 AS one')\n"
             "      for i = 1, 70 do db:row('SELECT ' .. i .. ' AS x') end\n"
             "    end)\n"
             "    if not ok and e:find('the database is in use') then refused = refused + 1 end\n"
             "  end })\n"
             "end\n"
             "arm()\n"
             "for round = 1, 10 do\n"
             "  local rows = db:query('SELECT id, name FROM items WHERE id > ? ORDER BY id', 0)\n"
             "  if #rows ~= 3000 then error('round ' .. round .. ': ' .. #rows .. ' rows') end\n"
             "  for i = 1, 3000 do\n"
             "    if rows[i].name ~= 'item ' .. i then error('round ' .. round .. ', row ' .. i) end\n"
             "  end\n"
             "end\n"
             "return refused > 0 or error(ran .. ' finalizers ran, none during a query')");
}

/* An error that makes SQLite end the transaction itself: what fn does after catching
 * it must not be committed outside the transaction. */
static void test_tx_ended_by_sqlite_runs_nothing_more(void **state)
{
    lua_State *L = ((struct fx *)*state)->L;
    check(L, ITEMS);
    check(L, "db:exec('INSERT INTO items (id, name) VALUES (1, ?)', 'first') return true");
    check(L, "local ok, e = pcall(db.tx, db, function()\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'in tx')\n"
             "  local ok = pcall(db.exec, db,\n"
             "    'INSERT OR ROLLBACK INTO items (id, name) VALUES (1, ?)', 'dup')\n"
             "  assert(not ok)\n"
             "  db:exec('INSERT INTO items (name) VALUES (?)', 'after')\n"
             "end)\n"
             "return not ok and e:find('the transaction was rolled back by an error')\n"
             "  and count() == 1");
    check(L, "return db:tx(function() db:exec('INSERT INTO items (name) VALUES (?)', 'b')\n"
             "  return count() end) == 2");
}

static void test_installed_without_over_time_or_base_dir(void **state)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lh_sql_install(L, NULL, NULL);
    check(L, "local db = sql.open(':memory:')\n"
             "return db:row([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c\n"
             "  WHERE x < 100000) SELECT count(*) AS n FROM c]]).n == 100000\n"
             "  and tostring(db) == 'sql.db (:memory:)'");
    lua_close(L);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_binding_each_type),
        T(test_rows_by_column_name_with_types),
        T(test_row_is_nil_when_there_is_none),
        T(test_bad_values_raise),
        T(test_exec_returns_changes_and_last_id),
        T(test_exec_runs_a_schema_script),
        T(test_sql_errors_carry_sqlite_messages),
        T(test_injection_strings_are_stored_verbatim),
        T(test_tx_commits_and_returns_results),
        T(test_tx_error_rolls_back_and_raises_the_same_value),
        T(test_nested_tx_uses_a_savepoint),
        T(test_tx_fn_may_yield),
        T(test_abandoned_tx_is_rolled_back),
        T(test_over_time_interrupts_a_query),
        T(test_over_time_in_tx_rolls_back),
        T(test_busy_wait_gives_up_when_over_time),
        T(test_busy_wait_outlasts_a_short_lock),
        T(test_relative_path_is_under_base_dir),
        T(test_dotdot_path_opens_and_is_logged),
        T(test_wal_mode_and_two_handles),
        T(test_two_processes_write_concurrently),
        T(test_fork_reopens_an_idle_handle),
        T(test_fork_reopens_a_busy_handle),
        T(test_parent_closing_after_fork_loses_nothing),
        T(test_gc_in_the_child_leaves_the_inherited_connection),
        T(test_use_after_close_raises),
        T(test_statements_are_cached),
        T(test_memory_error_mid_query_is_recovered),
        T(test_a_finalizer_during_a_query),
        T(test_installed_without_over_time_or_base_dir),
        T(test_tx_belongs_to_whoever_began_it),
        T(test_tx_ended_by_sqlite_runs_nothing_more),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
