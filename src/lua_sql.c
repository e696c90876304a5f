/* lua_sql.c - `sql` in Lua: SQLite databases for handlers (contract section 10). See
 * lua_sql.h.
 *
 * A handle (a "sql.db" userdata) owns one connection, in WAL mode so that every worker
 * can have the same file open, and a small cache of prepared statements keyed by their
 * SQL text. Three things shape the rest:
 * - fork: config.lua may open a database in the master, whose workers inherit the Lua
 *   state. A connection must never be used on both sides of a fork, so a handle notes
 *   the pid that opened it; used in another process, it opens the same file again.
 *   More than that: SQLite keeps a process-wide record of the locks its connections
 *   hold on each file, which a child inherits, so a connection the child opens to a
 *   file the parent has open believes it holds the parent's locks and takes none of
 *   its own; the parent, closing later, then takes itself for the last user and
 *   checkpoints and deletes the WAL under the child, and the child's later writes are
 *   lost. So just before a fork an atfork handler closes every connection of this
 *   process that is idle (no transaction open); its handle opens again on its next
 *   use, on either side. A connection that was busy is inherited: the child forgets
 *   it and its statements without closing them (they are the parent's, and SQLite
 *   must not touch them here), and opens its own.
 * - time: a statement runs in C, where the count hook cannot reach it, so SQLite's
 *   progress handler asks over_time() every PROGRESS_STEPS VM steps, and the busy
 *   handler asks it between its short sleeps.
 * - yields: db:tx calls fn with lua_pcallk, so that fn may yield (the server pauses
 *   handlers from its hook). The transaction ends in the continuation, in C, where the
 *   hook that raises at every instruction once time is up cannot stop it halfway. A
 *   to-be-closed guard rolls back a transaction whose coroutine is closed, or
 *   collected, while paused inside fn.
 * A row is turned into Lua values while its statement is still stepping. That runs
 * under lua_pcall, so that a Lua error there (out of memory) still resets the
 * statement, and the handle keeps it in `active` meanwhile: any allocation may run a
 * finalizer (__gc), and one that uses the same handle then gets an error rather than
 * resetting, rebinding or finalizing the statement under the query. */
#include "lua_sql.h"

#include "log.h"

#include <lauxlib.h>
#include <sqlite3.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_META "sql.db"
#define TX_META "sql.tx"
#define CACHE_SIZE 64       /* prepared statements kept per handle */
#define PROGRESS_STEPS 1000 /* SQLite VM steps between two looks at over_time */
#define BUSY_MS 5000        /* how long a statement waits for another's lock in all */

struct cached {
    sqlite3_stmt *st;
    char *sql;     /* the key: a copy of the SQL text (malloc) */
    size_t len;
    uint64_t hash;
    uint64_t used; /* the handle's clock at its last use: the oldest goes first */
};

struct lh_sql_db {
    sqlite3 *db;                    /* NULL: not (re)opened yet, or closed */
    pid_t pid;                      /* the process that opened db */
    unsigned gen;                   /* counts opens: a tx guard knows its connection */
    bool closed;                    /* by db:close(), __close or __gc: for good */
    int tx_depth;                   /* db:tx levels open now */
    sqlite3_stmt *active;           /* the statement whose rows are being built */
    lua_State *L;                   /* the thread that runs a statement now */
    int (*over_time)(lua_State *L); /* may be NULL */
    const void *(*owner)(lua_State *L); /* may be NULL */
    const void *tx_owner;           /* who began the open db:tx (owner(L) then) */
    bool interrupted;               /* over_time said so during the statement */
    bool quiet;                     /* ending a transaction or closing: no interrupts */
    int64_t busy_since;
    uint64_t clock;
    int ncached;
    struct cached cache[CACHE_SIZE];
    struct lh_sql_db *prev, *next;  /* on open_list while it holds a connection */
    bool listed;
    char path[];                    /* the resolved path, or ":memory:" */
};

/* Every handle holding a connection, for the atfork handler. A handle leaves the list
 * in __gc at the latest, before Lua frees it. */
static struct lh_sql_db *open_list;

/* sql.open's upvalue: what lh_sql_install was given. */
struct lib {
    struct lh_sql_host host;
    char base_dir[];
};

/* One db:tx level; its user value is the handle. */
struct tx_guard {
    int depth;    /* the level it opened: 1 is BEGIN, more a savepoint lh_tx<depth> */
    unsigned gen; /* the handle's gen then */
    bool pending; /* begun, not yet ended */
};

/* This process's id, kept up to date across fork by an atfork handler: a handle asks
 * on every call, and getpid(2) is a system call (a sixth of a db:row by primary key,
 * 1 us of 6, in the VM where it was measured). */
static pid_t this_pid;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the connection --------------------------------------------------------------------- */

static int on_progress(void *ud)
{
    struct lh_sql_db *h = ud;
    if (h->quiet || !h->L || !h->over_time(h->L))
        return 0;
    h->interrupted = true;
    return 1; /* the statement fails with SQLITE_INTERRUPT */
}

/* Another connection holds the lock: wait in short sleeps, BUSY_MS in all, unless the
 * handler's time is up first. Nonzero: try again. */
static int on_busy(void *ud, int count)
{
    struct lh_sql_db *h = ud;
    int64_t now = now_ms();
    if (count == 0)
        h->busy_since = now;
    else if (now - h->busy_since >= BUSY_MS)
        return 0;
    if (!h->quiet && h->over_time && h->L && h->over_time(h->L)) {
        h->interrupted = true;
        return 0;
    }
    int ms = count < 4 ? 1 << count : 10;
    nanosleep(&(struct timespec){0, ms * 1000000L}, NULL);
    return 1;
}

/* Reset the active statement and drop its bindings (which point into strings on the
 * stack of the call that made them). */
static void settle(struct lh_sql_db *h)
{
    sqlite3_reset(h->active);
    sqlite3_clear_bindings(h->active);
    h->active = NULL;
}

static void list_add(struct lh_sql_db *h)
{
    h->prev = NULL;
    h->next = open_list;
    if (open_list)
        open_list->prev = h;
    open_list = h;
    h->listed = true;
}

static void list_remove(struct lh_sql_db *h)
{
    if (!h->listed)
        return;
    if (h->prev)
        h->prev->next = h->next;
    else
        open_list = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->listed = false;
}

/* Let go of the connection and its statements: closed when this process opened them,
 * only forgotten when they came through fork. */
static void drop_conn(struct lh_sql_db *h)
{
    list_remove(h);
    bool own = h->pid == this_pid;
    for (int i = 0; i < h->ncached; i++) {
        if (own)
            sqlite3_finalize(h->cache[i].st);
        free(h->cache[i].sql);
    }
    h->ncached = 0;
    h->active = NULL;
    h->tx_depth = 0;
    if (own && h->db) {
        h->quiet = true;
        sqlite3_close_v2(h->db); /* rolls back a transaction left open */
        h->quiet = false;
    }
    h->db = NULL;
}

/* Open h->path with the settings every connection gets; raises on failure. */
static void open_conn(lua_State *L, struct lh_sql_db *h)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(h->path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK) {
        h->db = db;
        h->pid = this_pid;
        list_add(h);
        h->gen++;
        h->L = L;
        sqlite3_busy_handler(db, on_busy, h);
        if (h->over_time)
            sqlite3_progress_handler(db, PROGRESS_STEPS, on_progress, h);
        rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                              "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        return;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    h->db = NULL;
    list_remove(h);
    luaL_error(L, "sql: cannot open %s: %s", h->path, msg);
}

/* ---- fork (see the top of the file) ---- */

static void before_fork(void)
{
    for (struct lh_sql_db *h = open_list, *next; h; h = next) {
        next = h->next;
        if (h->pid == this_pid && h->tx_depth == 0 && sqlite3_get_autocommit(h->db))
            drop_conn(h);
    }
}

static void note_pid(void)
{
    this_pid = getpid();
}

static void watch_fork(void)
{
    note_pid();
    pthread_atfork(before_fork, NULL, note_pid);
}

/* The handle at index 1, open in this process (opened again after a fork). */
static struct lh_sql_db *get(lua_State *L)
{
    struct lh_sql_db *h = luaL_checkudata(L, 1, DB_META);
    if (h->closed)
        luaL_error(L, "sql: the database is closed");
    if (h->active)
        luaL_error(L, "sql: the database is in use: a query on it is building its rows "
                      "(a __gc finalizer ran meanwhile)");
    if (!h->db || h->pid != this_pid) {
        drop_conn(h);
        open_conn(L, h);
    }
    if (h->tx_depth > 0 && h->owner && h->owner(L) != h->tx_owner)
        luaL_error(L, "sql: %s is inside a transaction that another request began and "
                      "paused in (do not wait inside db:tx)", h->path);
    /* SQLite ends a transaction itself on some errors (INSERT OR ROLLBACK, a trigger's
     * RAISE(ROLLBACK), a full disk): what fn does after catching such an error would
     * otherwise be committed statement by statement, outside any transaction */
    if (h->tx_depth > 0 && sqlite3_get_autocommit(h->db))
        luaL_error(L, "sql: the transaction was rolled back by an error; nothing more runs "
                      "in it");
    h->L = L;
    h->interrupted = false;
    return h;
}

/* Raise the error of the statement that just failed (after its reset). */
static int raise_sql(lua_State *L, struct lh_sql_db *h)
{
    if (h->interrupted)
        return luaL_error(L, "sql: interrupted: the handler ran out of time");
    return luaL_error(L, "sql: %s", sqlite3_errmsg(h->db));
}

/* ---- statements ------------------------------------------------------------------------ */

static uint64_t hash_sql(const char *s, size_t len)
{
    uint64_t x = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        x = (x ^ (unsigned char)s[i]) * 1099511628211ULL;
    return x;
}

/* Prepare the first statement of sql[0..len) (NUL-terminated at len); raises with
 * SQLite's message and the statement's start. NULL when it holds no statement. */
static sqlite3_stmt *prepare(lua_State *L, struct lh_sql_db *h, const char *sql, size_t len,
                             unsigned flags, const char **tail)
{
    if (len >= INT_MAX)
        luaL_error(L, "sql: the statement is too long");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(h->db, sql, (int)len + 1, flags, &st, tail) == SQLITE_OK)
        return st;
    while (len > 0 && (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')) {
        sql++;
        len--;
    }
    char start[52];
    size_t n = 0;
    for (; n < len && n < sizeof start - 1; n++) /* one line, whatever the SQL holds */
        start[n] = (unsigned char)sql[n] < ' ' ? ' ' : sql[n];
    start[n] = '\0';
    luaL_error(L, "sql: %s (in \"%s%s\")", sqlite3_errmsg(h->db), start, n < len ? "..." : "");
    return NULL;
}

/* Does p..end hold a statement, not just blanks and comments? */
static bool holds_statement(struct lh_sql_db *h, const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p == end)
        return false;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(h->db, p, (int)(end - p) + 1, 0, &st, NULL);
    sqlite3_finalize(st);
    return rc != SQLITE_OK || st; /* a failure: it depends on an earlier one, say */
}

/* Keep st under the key sql[0..len), in place of the longest unused one if full.
 * Raises (having finalized st) when out of memory. */
static void cache_add(lua_State *L, struct lh_sql_db *h, sqlite3_stmt *st, const char *sql,
                      size_t len, uint64_t hash)
{
    char *key = malloc(len + 1);
    if (!key) {
        sqlite3_finalize(st);
        luaL_error(L, "sql: out of memory");
    }
    memcpy(key, sql, len + 1);
    struct cached *c = &h->cache[h->ncached];
    if (h->ncached == CACHE_SIZE) {
        c = &h->cache[0];
        for (int i = 1; i < CACHE_SIZE; i++)
            if (h->cache[i].used < c->used)
                c = &h->cache[i];
        sqlite3_finalize(c->st);
        free(c->sql);
    } else {
        h->ncached++;
    }
    *c = (struct cached){.st = st, .sql = key, .len = len, .hash = hash, .used = ++h->clock};
}

/* The statement sql[0..len) holds: the cached one, or prepared and cached. NULL when
 * it holds none (only blanks or comments). It must hold one statement, except where
 * script is given: a text of several then comes back as its first statement, not
 * cached (the caller finalizes it), and *script points to the rest. */
static sqlite3_stmt *acquire(lua_State *L, struct lh_sql_db *h, const char *sql, size_t len,
                             const char **script)
{
    uint64_t hash = hash_sql(sql, len);
    for (int i = 0; i < h->ncached; i++) {
        struct cached *c = &h->cache[i];
        if (c->hash == hash && c->len == len && memcmp(c->sql, sql, len) == 0) {
            c->used = ++h->clock;
            return c->st;
        }
    }
    const char *tail;
    sqlite3_stmt *st = prepare(L, h, sql, len, SQLITE_PREPARE_PERSISTENT, &tail);
    if (!st)
        return NULL;
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (name) {
            char copy[64]; /* the name goes with st */
            snprintf(copy, sizeof copy, "%s", name);
            sqlite3_finalize(st);
            luaL_error(L, "sql: only ? placeholders are supported (not %s)", copy);
        }
    }
    if (holds_statement(h, tail, sql + len)) {
        if (script) {
            *script = tail;
            return st;
        }
        sqlite3_finalize(st);
        luaL_error(L, "sql: more than one statement (only db:exec without values runs "
                      "several)");
    }
    cache_add(L, h, st, sql, len, hash);
    return st;
}

/* Bind the values from stack index first to the top to st's placeholders. Strings are
 * bound without a copy: they stay on the stack until the call returns, and the
 * bindings are cleared before it does (or, after a Lua error, by settle). */
static void bind_values(lua_State *L, sqlite3_stmt *st, int first)
{
    int n = lua_gettop(L) - first + 1, want = sqlite3_bind_parameter_count(st);
    if (n != want)
        luaL_error(L, "sql: the statement takes %d value%s, %d given", want,
                   want == 1 ? "" : "s", n);
    for (int i = 1; i <= n; i++) {
        int idx = first + i - 1, rc;
        size_t len;
        const char *s;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            rc = sqlite3_bind_null(st, i);
            break;
        case LUA_TBOOLEAN:
            rc = sqlite3_bind_int(st, i, lua_toboolean(L, idx));
            break;
        case LUA_TNUMBER:
            rc = lua_isinteger(L, idx) ? sqlite3_bind_int64(st, i, lua_tointeger(L, idx))
                                       : sqlite3_bind_double(st, i, lua_tonumber(L, idx));
            break;
        case LUA_TSTRING:
            s = lua_tolstring(L, idx, &len);
            rc = sqlite3_bind_text64(st, i, s, len, SQLITE_STATIC, SQLITE_UTF8);
            break;
        default:
            sqlite3_clear_bindings(st);
            luaL_error(L, "sql: cannot bind a %s (value %d)", luaL_typename(L, idx), i);
            return;
        }
        if (rc != SQLITE_OK) {
            sqlite3_clear_bindings(st);
            luaL_error(L, "sql: cannot bind value %d: %s", i, sqlite3_errstr(rc));
        }
    }
}

/* Run st to its end (rows are dropped), adding the rows it changed to *changes, and
 * reset it. SQLITE_OK or the error code. */
static int run_to_end(struct lh_sql_db *h, sqlite3_stmt *st, lua_Integer *changes)
{
    sqlite3_int64 before = sqlite3_total_changes64(h->db);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    /* sqlite3_changes64 keeps the count of the last INSERT, UPDATE or DELETE: it is
     * this statement's only when the total moved */
    if (rc == SQLITE_DONE && sqlite3_total_changes64(h->db) != before)
        *changes += sqlite3_changes64(h->db);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Run st, the first statement of a script, then each statement of rest..end. */
static void run_script(lua_State *L, struct lh_sql_db *h, sqlite3_stmt *st, const char *rest,
                       const char *end, lua_Integer *changes)
{
    for (;;) {
        if (st) {
            int want = sqlite3_bind_parameter_count(st);
            int rc = want ? SQLITE_MISUSE : run_to_end(h, st, changes);
            sqlite3_finalize(st);
            if (want)
                luaL_error(L, "sql: the statement takes %d value%s, 0 given", want,
                           want == 1 ? "" : "s");
            if (rc != SQLITE_OK)
                raise_sql(L, h);
        }
        const char *next = rest;
        if (next >= end)
            return;
        st = prepare(L, h, next, (size_t)(end - next), 0, &rest);
        if (!st && rest == next) /* a NUL byte: SQLite reads no further */
            return;
    }
}

/* ---- rows ------------------------------------------------------------------------------ */

static void push_names(lua_State *L, sqlite3_stmt *st, int ncol)
{
    for (int i = 0; i < ncol; i++) {
        const char *name = sqlite3_column_name(st, i);
        if (!name)
            luaL_error(L, "sql: out of memory");
        lua_pushstring(L, name);
    }
}

/* Push the row st is on as a table; names is the stack index of the column names. */
static void push_row(lua_State *L, sqlite3_stmt *st, int ncol, int names)
{
    lua_createtable(L, 0, ncol);
    for (int i = 0; i < ncol; i++) {
        int type = sqlite3_column_type(st, i);
        if (type == SQLITE_NULL)
            continue;
        lua_pushvalue(L, names + i);
        if (type == SQLITE_INTEGER) {
            lua_pushinteger(L, sqlite3_column_int64(st, i));
        } else if (type == SQLITE_FLOAT) {
            lua_pushnumber(L, sqlite3_column_double(st, i));
        } else {
            const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, i)
                                                : sqlite3_column_blob(st, i);
            size_t n = (size_t)sqlite3_column_bytes(st, i);
            if (!p && (type == SQLITE_TEXT || n > 0))
                luaL_error(L, "sql: out of memory");
            lua_pushlstring(L, p, n);
        }
        lua_rawset(L, -3);
    }
}

struct fetch {
    sqlite3_stmt *st;
    bool one;
    int rc; /* of the last step */
};

/* Under lua_pcall, from fetch (its one argument): step st, pushing every row in an
 * array, or the first row (nil when none). */
static int build_rows(lua_State *L)
{
    struct fetch *f = lua_touserdata(L, 1);
    sqlite3_stmt *st = f->st;
    int ncol = sqlite3_column_count(st);
    luaL_checkstack(L, ncol + 4, "sql: too many columns");
    int rows = 0;
    if (!f->one) {
        lua_newtable(L);
        rows = lua_gettop(L);
    }
    int names = lua_gettop(L) + 1, rc;
    lua_Integer n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == 0)
            push_names(L, st, ncol); /* once, for every row */
        push_row(L, st, ncol, names);
        if (f->one)
            break;
        lua_rawseti(L, rows, n);
    }
    f->rc = rc;
    if (!f->one)
        lua_settop(L, rows);
    else if (n == 0)
        lua_pushnil(L);
    return 1; /* the array, the row on top of the names, or nil */
}

/* db:query and db:row: every row in an array, or the first row (nil when none). */
static int fetch(lua_State *L, bool one)
{
    struct lh_sql_db *h = get(L);
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    sqlite3_stmt *st = acquire(L, h, sql, len, NULL);
    if (!st) {
        if (one)
            lua_pushnil(L);
        else
            lua_newtable(L);
        return 1;
    }
    luaL_checkstack(L, 2, "sql: too many values");
    bind_values(L, st, 3);
    struct fetch f = {.st = st, .one = one};
    h->active = st;
    lua_pushcfunction(L, build_rows);
    lua_pushlightuserdata(L, &f);
    int status = lua_pcall(L, 1, 1, 0);
    settle(h);
    if (status != LUA_OK)
        return lua_error(L);
    if (f.rc != SQLITE_ROW && f.rc != SQLITE_DONE)
        return raise_sql(L, h);
    return 1;
}

static int db_query(lua_State *L)
{
    return fetch(L, false);
}

static int db_row(lua_State *L)
{
    return fetch(L, true);
}

/* db:exec(sql, ...): { changes = N, last_id = N }. Without values, sql may be a
 * script of several statements, each run in turn. */
static int db_exec(lua_State *L)
{
    struct lh_sql_db *h = get(L);
    size_t len;
    const char *sql = luaL_checklstring(L, 2, &len);
    const char *script = NULL;
    lua_Integer changes = 0;
    sqlite3_stmt *st = acquire(L, h, sql, len, lua_gettop(L) == 2 ? &script : NULL);
    if (script) {
        run_script(L, h, st, script, sql + len, &changes);
    } else if (st) {
        bind_values(L, st, 3);
        if (run_to_end(h, st, &changes) != SQLITE_OK)
            return raise_sql(L, h);
    }
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, changes);
    lua_setfield(L, -2, "changes");
    lua_pushinteger(L, sqlite3_last_insert_rowid(h->db));
    lua_setfield(L, -2, "last_id");
    return 1;
}

/* ---- transactions ----------------------------------------------------------------------- */

/* Undo and end the db:tx levels from depth on. Errors are left unsaid: SQLite may
 * have rolled back already (an interrupted write does that), and the caller has an
 * error of its own to raise. */
static void rollback_to(struct lh_sql_db *h, int depth)
{
    h->quiet = true;
    if (depth <= 1) {
        if (!sqlite3_get_autocommit(h->db))
            sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        char sql[64];
        snprintf(sql, sizeof sql, "ROLLBACK TO lh_tx%d; RELEASE lh_tx%d", depth, depth);
        sqlite3_exec(h->db, sql, NULL, NULL, NULL);
    }
    h->quiet = false;
    h->tx_depth = depth - 1;
}

/* Is g's level still open on h's connection in this process? */
static bool tx_current(const struct lh_sql_db *h, const struct tx_guard *g)
{
    return h->db && !h->closed && h->pid == this_pid && h->gen == g->gen &&
           h->tx_depth >= g->depth;
}

/* The guard's __close and __gc: a level still pending when its coroutine is closed or
 * collected (paused inside fn, never resumed) is rolled back. */
static int guard_end(lua_State *L)
{
    struct tx_guard *g = lua_touserdata(L, 1);
    if (!g->pending)
        return 0;
    g->pending = false;
    lua_getiuservalue(L, 1, 1);
    struct lh_sql_db *h = lua_touserdata(L, -1);
    if (h && tx_current(h, g))
        rollback_to(h, g->depth);
    return 0;
}

/* What follows fn: commit (or release) and return fn's results, or roll back and raise
 * fn's error again, the same value. Stack: db, fn, guard, then the results or error. */
static int tx_done(lua_State *L, int status, lua_KContext kctx)
{
    struct lh_sql_db *h = lua_touserdata(L, 1);
    struct tx_guard *g = lua_touserdata(L, 3);
    bool current = g->pending && tx_current(h, g);
    g->pending = false;
    if (status != LUA_OK && status != LUA_YIELD) {
        if (current)
            rollback_to(h, g->depth);
        return lua_error(L);
    }
    if (!current)
        return luaL_error(L, "sql: the transaction was lost (the database was closed or "
                             "reopened meanwhile)");
    if (h->tx_depth > g->depth) {
        /* an inner level is open still, its coroutine paused inside it: what fn did
         * after that went into the inner savepoint too, so neither keeping nor undoing
         * only the inner level is right */
        rollback_to(h, g->depth);
        return luaL_error(L, "sql: an inner db:tx was still open (its coroutine paused "
                             "inside it): all rolled back");
    }
    char sql[32];
    snprintf(sql, sizeof sql, g->depth == 1 ? "COMMIT" : "RELEASE lh_tx%d", g->depth);
    h->quiet = true; /* fn has finished in time: what it did is kept */
    int rc = sqlite3_exec(h->db, sql, NULL, NULL, NULL);
    h->quiet = false;
    if (rc != SQLITE_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(h->db));
        rollback_to(h, g->depth);
        return luaL_error(L, "sql: %s", msg);
    }
    h->tx_depth = g->depth - 1;
    return lua_gettop(L) - 3;
}

/* db:tx(fn): fn(db) in a transaction (a savepoint when nested); its results. */
static int db_tx(lua_State *L)
{
    struct lh_sql_db *h = get(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    struct tx_guard *g = lua_newuserdatauv(L, sizeof *g, 1);
    *g = (struct tx_guard){.depth = h->tx_depth + 1, .gen = h->gen};
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, 3, 1);
    luaL_setmetatable(L, TX_META);
    lua_toclose(L, 3);
    char sql[32];
    /* IMMEDIATE takes the write lock now: a read that turns into a write later in fn
     * cannot then fail with SQLITE_BUSY, which no busy handler would wait out */
    snprintf(sql, sizeof sql, g->depth == 1 ? "BEGIN IMMEDIATE" : "SAVEPOINT lh_tx%d",
             g->depth);
    if (sqlite3_exec(h->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return raise_sql(L, h);
    h->tx_depth = g->depth;
    if (g->depth == 1)
        h->tx_owner = h->owner ? h->owner(L) : NULL;
    g->pending = true;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    return tx_done(L, lua_pcallk(L, 1, LUA_MULTRET, 0, 0, tx_done), 0);
}

/* ---- the handle ----------------------------------------------------------------------- */

/* db:close(), __close and __gc; closing twice is no error. */
static int db_close(lua_State *L)
{
    struct lh_sql_db *h = luaL_checkudata(L, 1, DB_META);
    if (h->active) /* not from __gc: the query holds the handle */
        return luaL_error(L, "sql: the database is in use: a query on it is building its "
                             "rows (a __gc finalizer ran meanwhile)");
    if (!h->closed) {
        h->closed = true;
        drop_conn(h);
    }
    return 0;
}

static int db_tostring(lua_State *L)
{
    struct lh_sql_db *h = luaL_checkudata(L, 1, DB_META);
    lua_pushfstring(L, "sql.db (%s%s)", h->path, h->closed ? ", closed" : "");
    return 1;
}

/* mkdir -p dir, 0755. 0, or -1 with errno. */
static int make_dirs(char *dir)
{
    for (char *p = dir;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        if (p > dir && p[-1] != '/') { /* a name ends here */
            *p = '\0';
            int rc = mkdir(dir, 0755), e = errno;
            *p = c;
            if (rc < 0 && e != EEXIST) {
                errno = e;
                return -1;
            }
        }
        if (!c)
            return 0;
    }
}

/* Where sql.open(path) points: base/path unless path is absolute, with the folder
 * made and resolved (so the log names the real place, `..` and links followed). */
static void resolve(lua_State *L, const char *base, const char *path, char out[PATH_MAX])
{
    if (strcmp(path, ":memory:") == 0) {
        strcpy(out, path);
        return;
    }
    char full[PATH_MAX], real[PATH_MAX], root[] = "/";
    int n = path[0] == '/' ? snprintf(full, sizeof full, "%s", path)
                           : snprintf(full, sizeof full, "%s/%s", base, path);
    if (n < 0 || n >= (int)sizeof full)
        luaL_error(L, "sql: the path is too long: %s", path);
    char *slash = strrchr(full, '/');
    const char *name = slash + 1;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        luaL_error(L, "sql: %s names a folder, not a file", path);
    *slash = '\0';
    char *dir = slash == full ? root : full;
    if (make_dirs(dir) < 0)
        luaL_error(L, "sql: cannot create the folder %s: %s", dir, strerror(errno));
    struct stat st;
    if (!realpath(dir, real))
        luaL_error(L, "sql: cannot resolve the folder %s: %s", dir, strerror(errno));
    if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
        luaL_error(L, "sql: %s is not a folder", real);
    n = snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") == 0 ? "" : real, name);
    if (n < 0 || n >= PATH_MAX)
        luaL_error(L, "sql: the path is too long: %s", path);
}

/* sql.open(path): a handle on the database at path (created if missing). */
static int sql_open(lua_State *L)
{
    const struct lib *lib = lua_touserdata(L, lua_upvalueindex(1));
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    if (strlen(path) != len)
        return luaL_error(L, "sql: the path holds a NUL byte");
    char resolved[PATH_MAX];
    resolve(L, lib->base_dir, path, resolved);
    size_t n = strlen(resolved);
    struct lh_sql_db *h = lua_newuserdatauv(L, sizeof *h + n + 1, 0);
    memset(h, 0, sizeof *h);
    memcpy(h->path, resolved, n + 1);
    h->pid = this_pid;
    h->over_time = lib->host.over_time;
    h->owner = lib->host.owner;
    luaL_setmetatable(L, DB_META);
    open_conn(L, h);
    lh_log_error("notice", "sql: opened %s", h->path);
    return 1;
}

bool lh_sql_in_tx(const void *owner)
{
    for (const struct lh_sql_db *h = open_list; h; h = h->next)
        if (h->tx_depth > 0 && h->tx_owner == owner && h->pid == this_pid)
            return true;
    return false;
}

void lh_sql_install(lua_State *L, const char *base_dir, const struct lh_sql_host *host)
{
    static const luaL_Reg methods[] = {
        {"exec", db_exec}, {"query", db_query}, {"row", db_row},
        {"tx", db_tx},     {"close", db_close}, {NULL, NULL},
    };
    static const luaL_Reg db_meta[] = {
        {"__gc", db_close}, {"__close", db_close}, {"__tostring", db_tostring}, {NULL, NULL},
    };
    static const luaL_Reg tx_meta[] = {{"__gc", guard_end}, {"__close", guard_end}, {NULL, NULL}};
    if (luaL_newmetatable(L, DB_META)) {
        luaL_setfuncs(L, db_meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    if (luaL_newmetatable(L, TX_META))
        luaL_setfuncs(L, tx_meta, 0);
    lua_pop(L, 2);

    pthread_once(&fork_once, watch_fork);
    if (!base_dir || !*base_dir)
        base_dir = ".";
    size_t n = strlen(base_dir);
    lua_createtable(L, 0, 1);
    struct lib *lib = lua_newuserdatauv(L, sizeof *lib + n + 1, 0);
    lib->host = host ? *host : (struct lh_sql_host){0};
    memcpy(lib->base_dir, base_dir, n + 1);
    lua_pushcclosure(L, sql_open, 1);
    lua_setfield(L, -2, "open");
    lua_setglobal(L, "sql");
}
