/* lua_shared.c - the `shared` table handlers see: the shared store of store.h, in the
 * arena of the region every worker maps (shm.h), behind the region's lock.
 *
 * Values are copied in and out. Strings, numbers (integer or float) and booleans are
 * stored as they are; any other value (a table, json.null) is written in a small
 * binary form of our own rather than JSON, so that what comes back is equal to what
 * went in: integer and float keys and values keep their kind, strings may hold any
 * byte, and tables marked as JSON arrays stay marked. Functions, coroutines and
 * userdata cannot be stored.
 *
 * Nothing between lh_shm_lock and lh_shm_unlock may raise a Lua error (the lock would
 * stay held): the arguments are checked and a table written before the lock is
 * taken, and what is read is copied into a buffer of this process and only turned
 * into Lua values after the lock is dropped. */
#include "lua_shared.h"

#include "log.h"
#include "lua_int.h"
#include "shm.h"
#include "store.h"

#include <lauxlib.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UP_ARRAY_MT lua_upvalueindex(1)
#define MAX_DEPTH 100                 /* nested tables; also what stops a cycle */
#define BUF_KEEP ((size_t)1 << 20)    /* a scratch buffer larger than this is freed after use */
#define TTL_MAX_S (100.0 * 365 * 86400) /* a longer TTL is taken as this */

static struct lh_shm *g_shm;
static struct lh_store_buf g_in;  /* what the store copied out */
static struct lh_store_buf g_out; /* a value being written, before it goes in */

void lh_shared_attach(struct lh_shm *shm)
{
    g_shm = shm;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void trim(struct lh_store_buf *b)
{
    if (b->cap > BUF_KEEP) {
        free(b->data);
        *b = (struct lh_store_buf){0};
    }
}

/* ---- a value, written ----------------------------------------------------------------- */

/* One tag byte per value; numbers and lengths in native byte order. */
enum tag {
    T_FALSE = 'f',
    T_TRUE = 't',
    T_INT = 'i',   /* 8 bytes */
    T_FLOAT = 'd', /* 8 bytes */
    T_STR = 's',   /* uint32 length, bytes */
    T_TABLE = '{', /* key, value, ... T_END */
    T_ARRAY = '[', /* the same, for a table marked as a JSON array */
    T_END = '}',
    T_NULL = 'z',  /* json.null */
};

static void out_put(lua_State *L, const void *p, size_t n)
{
    if (g_out.cap - g_out.len < n) {
        size_t cap = g_out.cap ? g_out.cap : 256;
        while (cap - g_out.len < n)
            cap *= 2;
        char *d = realloc(g_out.data, cap);
        if (!d)
            luaL_error(L, "shared: not enough memory to copy the value");
        g_out.data = d;
        g_out.cap = cap;
    }
    memcpy(g_out.data + g_out.len, p, n);
    g_out.len += n;
}

static void out_tag(lua_State *L, char t)
{
    out_put(L, &t, 1);
}

static void write_value(lua_State *L, int idx, int depth);

static void write_table(lua_State *L, int idx, int depth)
{
    if (depth >= MAX_DEPTH)
        luaL_error(L, "shared: tables nested more than %d deep (a cycle?)", MAX_DEPTH);
    luaL_checkstack(L, 4, "shared: tables nested too deep");
    bool array = false;
    if (lua_getmetatable(L, idx)) {
        array = lua_rawequal(L, -1, UP_ARRAY_MT);
        lua_pop(L, 1);
    }
    out_tag(L, array ? T_ARRAY : T_TABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        write_value(L, lua_gettop(L) - 1, depth + 1);
        write_value(L, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    out_tag(L, T_END);
}

static void write_value(lua_State *L, int idx, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        out_tag(L, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            int64_t i = lua_tointeger(L, idx);
            out_tag(L, T_INT);
            out_put(L, &i, sizeof i);
        } else {
            double f = lua_tonumber(L, idx);
            out_tag(L, T_FLOAT);
            out_put(L, &f, sizeof f);
        }
        return;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > UINT32_MAX)
            luaL_error(L, "shared: a string in the table is longer than 4 GiB");
        uint32_t n = (uint32_t)len;
        out_tag(L, T_STR);
        out_put(L, &n, sizeof n);
        out_put(L, s, len);
        return;
    }
    case LUA_TTABLE:
        write_table(L, idx, depth);
        return;
    case LUA_TLIGHTUSERDATA:
        if (!lua_touserdata(L, idx)) {
            out_tag(L, T_NULL);
            return;
        }
        break;
    }
    luaL_error(L, "shared: cannot store a %s", luaL_typename(L, idx));
}

/* ---- a value, read back --------------------------------------------------------------- */

struct reader {
    const char *p, *end;
};

static bool read_bytes(struct reader *r, void *to, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    memcpy(to, r->p, n);
    r->p += n;
    return true;
}

/* Push the value at r; false (nothing pushed) when the bytes are not one. */
static bool read_value(lua_State *L, struct reader *r, int depth)
{
    char t;
    if (depth > MAX_DEPTH || !read_bytes(r, &t, 1))
        return false;
    switch (t) {
    case T_FALSE:
    case T_TRUE:
        lua_pushboolean(L, t == T_TRUE);
        return true;
    case T_NULL:
        lua_pushlightuserdata(L, NULL);
        return true;
    case T_INT: {
        int64_t i;
        if (!read_bytes(r, &i, sizeof i))
            return false;
        lua_pushinteger(L, i);
        return true;
    }
    case T_FLOAT: {
        double f;
        if (!read_bytes(r, &f, sizeof f))
            return false;
        lua_pushnumber(L, f);
        return true;
    }
    case T_STR: {
        uint32_t n;
        if (!read_bytes(r, &n, sizeof n) || (size_t)(r->end - r->p) < n)
            return false;
        lua_pushlstring(L, r->p, n);
        r->p += n;
        return true;
    }
    case T_TABLE:
    case T_ARRAY:
        luaL_checkstack(L, 4, "shared: tables nested too deep");
        lua_newtable(L);
        for (;;) {
            if (r->p < r->end && *r->p == T_END) {
                r->p++;
                break;
            }
            if (!read_value(L, r, depth + 1))
                return lua_pop(L, 1), false;
            if (lua_isnil(L, -1) || !read_value(L, r, depth + 1))
                return lua_pop(L, 2), false;
            lua_rawset(L, -3);
        }
        if (t == T_ARRAY) {
            lua_pushvalue(L, UP_ARRAY_MT);
            lua_setmetatable(L, -2);
        }
        return true;
    }
    return false;
}

/* Push v, whose bytes are in g_in. Building a table allocates, and any allocation may
 * run a finalizer (__gc) that calls `shared` and so overwrites or frees g_in: a table
 * is read from a copy in a Lua string, which stays put, not from g_in. */
static void push_value(lua_State *L, const struct lh_store_val *v)
{
    switch (v->type) {
    case LH_STORE_STRING:
        lua_pushlstring(L, v->data, v->len); /* copies before it may collect */
        return;
    case LH_STORE_INT:
        lua_pushinteger(L, v->num.i);
        return;
    case LH_STORE_FLOAT:
        lua_pushnumber(L, v->num.f);
        return;
    case LH_STORE_BOOL:
        lua_pushboolean(L, v->num.i != 0);
        return;
    case LH_STORE_TABLE: {
        const char *p = lua_pushlstring(L, v->data, v->len);
        struct reader r = {p, p + v->len};
        if (read_value(L, &r, 0) && r.p == r.end) {
            lua_remove(L, -2);
            return;
        }
        break;
    }
    }
    luaL_error(L, "shared: a stored value is damaged");
}

/* ---- arguments ------------------------------------------------------------------------ */

static const char *check_key(lua_State *L, size_t *len)
{
    const char *key = luaL_checklstring(L, 1, len);
    luaL_argcheck(L, *len <= LH_STORE_KEY_MAX, 1, "key longer than 64 KiB");
    return key;
}

/* A TTL in seconds at idx (nil or 0: none) as ms, rounded up. */
static int64_t check_ttl(lua_State *L, int idx)
{
    lua_Number s = luaL_optnumber(L, idx, 0);
    luaL_argcheck(L, s >= 0, idx, "ttl must be 0 (none) or more seconds");
    if (s > TTL_MAX_S)
        s = TTL_MAX_S;
    return (int64_t)ceil(s * 1000);
}

/* The number at idx (nil: dflt). */
static struct lh_store_val check_number(lua_State *L, int idx, lua_Integer dflt)
{
    struct lh_store_val v = {.type = LH_STORE_INT, .num.i = dflt};
    if (lua_isnoneornil(L, idx))
        return v;
    luaL_checktype(L, idx, LUA_TNUMBER);
    if (lua_isinteger(L, idx))
        v.num.i = lua_tointeger(L, idx);
    else {
        v.type = LH_STORE_FLOAT;
        v.num.f = lua_tonumber(L, idx);
    }
    return v;
}

/* What to store for the value at idx; a table is written into g_out. */
static struct lh_store_val check_value(lua_State *L, int idx)
{
    struct lh_store_val v = {0};
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        v.type = LH_STORE_STRING;
        v.data = lua_tolstring(L, idx, &v.len);
        return v;
    case LUA_TNUMBER:
        return check_number(L, idx, 0);
    case LUA_TBOOLEAN:
        v.type = LH_STORE_BOOL;
        v.num.i = lua_toboolean(L, idx);
        return v;
    }
    g_out.len = 0;
    write_value(L, idx, 0);
    v.type = LH_STORE_TABLE;
    v.data = g_out.data;
    v.len = g_out.len;
    return v;
}

/* ---- the lock ------------------------------------------------------------------------- */

/* Take the region's lock; the arena. A worker that died holding the lock may have
 * left the store half-changed: check it then, and empty it if it is damaged (a
 * store that lies is worse than an empty one). */
static void *lock_store(lua_State *L)
{
    if (lh_host_of(L)->loading)
        luaL_error(L, "shared: not available while config.lua loads (use it in a handler "
                      "or a hook)");
    if (!g_shm)
        luaL_error(L, "shared: not available in this process");
    int rc = lh_shm_lock(g_shm);
    if (rc < 0)
        luaL_error(L, "shared: the store's lock cannot be taken");
    size_t bytes;
    void *arena = lh_shm_arena(g_shm, &bytes);
    if (rc == 1) {
        if (lh_store_check(arena) == 0)
            lh_log_error("warn", "shared: a worker died holding the store's lock; the "
                                 "store checked out whole");
        else if (lh_store_init(arena, bytes) == 0)
            lh_log_error("error", "shared: a worker died while changing the store; it was "
                                  "left damaged and has been emptied");
        else { /* getrandom failed: not seen, but a damaged store must not be used */
            lh_shm_unlock(g_shm);
            luaL_error(L, "shared: the store was left damaged and cannot be laid out again");
        }
    }
    return arena;
}

static int fail(lua_State *L, enum lh_store_rc rc)
{
    static const char *const why[] = {
        [LH_STORE_NOT_FOUND] = "not found",  [LH_STORE_EXISTS] = "exists",
        [LH_STORE_TOO_LARGE] = "too large",  [LH_STORE_NOT_NUMBER] = "not a number",
        [LH_STORE_NO_MEMORY] = "no memory",  [LH_STORE_BAD_KEY] = "key too long",
    };
    if (rc == LH_STORE_NO_MEMORY)
        return luaL_error(L, "shared: not enough memory to copy the value out");
    lua_pushnil(L);
    lua_pushstring(L, why[rc]);
    return 2;
}

/* ---- the functions -------------------------------------------------------------------- */

/* shared.get(key) -> value | nil */
static int shared_get(lua_State *L)
{
    size_t klen;
    const char *key = check_key(L, &klen);
    void *arena = lock_store(L);
    struct lh_store_val v;
    enum lh_store_rc rc = lh_store_get(arena, key, klen, now_ms(), &v, &g_in);
    lh_shm_unlock(g_shm);
    if (rc == LH_STORE_NOT_FOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc != LH_STORE_OK)
        return fail(L, rc);
    push_value(L, &v);
    trim(&g_in);
    return 1;
}

static int set_or_add(lua_State *L, int only_if_absent)
{
    size_t klen;
    const char *key = check_key(L, &klen);
    int64_t ttl = check_ttl(L, 3);
    enum lh_store_rc rc;
    if (lua_isnoneornil(L, 2)) { /* set(key, nil) deletes, as in OpenResty */
        luaL_argcheck(L, !only_if_absent, 2, "a value to add");
        void *arena = lock_store(L);
        lh_store_delete(arena, key, klen, now_ms());
        lh_shm_unlock(g_shm);
        lua_pushboolean(L, 1);
        return 1;
    }
    struct lh_store_val v = check_value(L, 2);
    void *arena = lock_store(L);
    rc = lh_store_set(arena, key, klen, &v, ttl, now_ms(), only_if_absent);
    lh_shm_unlock(g_shm);
    trim(&g_out);
    if (rc == LH_STORE_EXISTS) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "exists");
        return 2;
    }
    if (rc != LH_STORE_OK)
        return fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* shared.set(key, value [, ttl]) -> true | nil, "too large" */
static int shared_set(lua_State *L) { return set_or_add(L, 0); }
/* shared.add(key, value [, ttl]) -> true | false, "exists" | nil, "too large" */
static int shared_add(lua_State *L) { return set_or_add(L, 1); }

/* shared.incr(key [, by [, init [, ttl]]]) -> number | nil, "not a number" */
static int shared_incr(lua_State *L)
{
    size_t klen;
    const char *key = check_key(L, &klen);
    struct lh_store_val by = check_number(L, 2, 1);
    struct lh_store_val init = check_number(L, 3, 0);
    int64_t ttl = check_ttl(L, 4);
    void *arena = lock_store(L);
    struct lh_store_val v;
    enum lh_store_rc rc = lh_store_incr(arena, key, klen, &by, &init, ttl, now_ms(), &v);
    lh_shm_unlock(g_shm);
    if (rc != LH_STORE_OK)
        return fail(L, rc);
    if (v.type == LH_STORE_INT)
        lua_pushinteger(L, v.num.i);
    else
        lua_pushnumber(L, v.num.f);
    return 1;
}

/* shared.delete(key) -> true */
static int shared_delete(lua_State *L)
{
    size_t klen;
    const char *key = check_key(L, &klen);
    void *arena = lock_store(L);
    lh_store_delete(arena, key, klen, now_ms());
    lh_shm_unlock(g_shm);
    lua_pushboolean(L, 1);
    return 1;
}

/* shared.expire(key, ttl) -> true | false, "not found" */
static int shared_expire(lua_State *L)
{
    size_t klen;
    const char *key = check_key(L, &klen);
    luaL_checkany(L, 2);
    int64_t ttl = check_ttl(L, 2);
    void *arena = lock_store(L);
    enum lh_store_rc rc = lh_store_expire(arena, key, klen, ttl, now_ms());
    lh_shm_unlock(g_shm);
    lua_pushboolean(L, rc == LH_STORE_OK);
    if (rc == LH_STORE_OK)
        return 1;
    lua_pushliteral(L, "not found");
    return 2;
}

/* shared.ttl(key) -> seconds left | nil (no TTL) | nil, "not found" */
static int shared_ttl(lua_State *L)
{
    size_t klen;
    const char *key = check_key(L, &klen);
    void *arena = lock_store(L);
    int64_t left;
    enum lh_store_rc rc = lh_store_ttl(arena, key, klen, now_ms(), &left);
    lh_shm_unlock(g_shm);
    if (rc != LH_STORE_OK)
        return fail(L, rc);
    if (left < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)left / 1000);
    return 1;
}

struct key_ref {
    const char *p;
    uint32_t len;
};

static int cmp_keys(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* shared.keys([prefix]) -> array of the live keys, sorted bytewise */
static int shared_keys(lua_State *L)
{
    size_t plen = 0;
    const char *prefix = luaL_optlstring(L, 1, "", &plen);
    void *arena = lock_store(L);
    size_t n = 0;
    enum lh_store_rc rc = lh_store_keys(arena, prefix, plen, now_ms(), &g_in, &n);
    lh_shm_unlock(g_shm);
    if (rc != LH_STORE_OK)
        return fail(L, rc);
    /* the keys in a Lua string, and the refs in a userdata, not malloc: freed by the
     * collector if a Lua error comes first. Not read from g_in: an allocation may run
     * a finalizer that calls `shared` and overwrites it (see push_value). */
    const char *p = lua_pushlstring(L, g_in.data, g_in.len);
    trim(&g_in);
    struct key_ref *refs = lua_newuserdatauv(L, n * sizeof *refs + 1, 0);
    for (size_t i = 0; i < n; i++) {
        memcpy(&refs[i].len, p, sizeof refs[i].len);
        refs[i].p = p + sizeof refs[i].len;
        p = refs[i].p + refs[i].len;
    }
    qsort(refs, n, sizeof *refs, cmp_keys);
    lua_createtable(L, n < INT32_MAX ? (int)n : 0, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushlstring(L, refs[i].p, refs[i].len);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* shared.stats() -> {entries, bytes, capacity, evictions, expired} */
static int shared_stats(lua_State *L)
{
    void *arena = lock_store(L);
    struct lh_store_stats st;
    lh_store_stats(arena, &st);
    lh_shm_unlock(g_shm);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)st.entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)st.bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushinteger(L, (lua_Integer)st.capacity);
    lua_setfield(L, -2, "capacity");
    lua_pushinteger(L, (lua_Integer)st.evictions);
    lua_setfield(L, -2, "evictions");
    lua_pushinteger(L, (lua_Integer)st.expired);
    lua_setfield(L, -2, "expired");
    return 1;
}

static const luaL_Reg functions[] = {
    {"get", shared_get},     {"set", shared_set},       {"add", shared_add},
    {"incr", shared_incr},   {"delete", shared_delete}, {"expire", shared_expire},
    {"ttl", shared_ttl},     {"keys", shared_keys},     {"stats", shared_stats},
    {NULL, NULL},
};

void lh_shared_install(lua_State *L, int json_idx)
{
    json_idx = lua_absindex(L, json_idx);
    luaL_newlibtable(L, functions);
    lua_getfield(L, json_idx, "array_mt");
    luaL_setfuncs(L, functions, 1);
    lua_setglobal(L, "shared");
}
