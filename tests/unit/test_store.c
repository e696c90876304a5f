/* Unit tests for store.c: the shared store, its TTLs, its LRU eviction, its check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm_alloc.h"
#include "store.h"
#include "test_util.h"

#define KIB ((size_t)1024)
#define K(s) s, sizeof(s) - 1 /* a literal key and its length, NULs included */

/* ---- helpers ------------------------------------------------------------------- */

static void *store_new(size_t bytes)
{
    void *arena = aligned_alloc(4096, bytes);
    assert_non_null(arena);
    memset(arena, 0xee, bytes); /* no zeroed memory to lean on */
    assert_int_equal(lh_store_init(arena, bytes), 0);
    assert_int_equal(lh_store_check(arena), 0);
    return arena;
}

static struct lh_store_stats stats(void *arena)
{
    struct lh_store_stats st;
    lh_store_stats(arena, &st);
    assert_true(st.bytes <= st.capacity);
    return st;
}

static struct lh_store_val sval(const char *s, size_t n)
{
    return (struct lh_store_val){.type = LH_STORE_STRING, .data = s, .len = n};
}

static struct lh_store_val ival(int64_t i)
{
    return (struct lh_store_val){.type = LH_STORE_INT, .num.i = i};
}

static struct lh_store_val fval(double f)
{
    return (struct lh_store_val){.type = LH_STORE_FLOAT, .num.f = f};
}

static void set_ok(void *arena, const char *key, size_t klen, struct lh_store_val v,
                   int64_t ttl, int64_t now)
{
    assert_int_equal(lh_store_set(arena, key, klen, &v, ttl, now, 0), LH_STORE_OK);
}

static void set_int(void *arena, const char *key, size_t klen, int64_t i, int64_t ttl,
                    int64_t now)
{
    set_ok(arena, key, klen, ival(i), ttl, now);
}

static enum lh_store_rc get(void *arena, const char *key, size_t klen, int64_t now,
                            struct lh_store_val *out)
{
    static struct lh_store_buf buf; /* reused, as a caller would */
    return lh_store_get(arena, key, klen, now, out, &buf);
}

static void expect_bytes(void *arena, const char *key, size_t klen, int64_t now,
                         enum lh_store_type type, const void *data, size_t len)
{
    struct lh_store_val v;
    assert_int_equal(get(arena, key, klen, now, &v), LH_STORE_OK);
    assert_int_equal(v.type, type);
    assert_int_equal(v.len, len);
    assert_non_null(v.data);
    if (len)
        assert_memory_equal(v.data, data, len);
}

static void expect_int(void *arena, const char *key, size_t klen, int64_t now, int64_t i)
{
    struct lh_store_val v;
    assert_int_equal(get(arena, key, klen, now, &v), LH_STORE_OK);
    assert_int_equal(v.type, LH_STORE_INT);
    assert_true(v.num.i == i);
}

static void expect_float(void *arena, const char *key, size_t klen, int64_t now, double f)
{
    struct lh_store_val v;
    assert_int_equal(get(arena, key, klen, now, &v), LH_STORE_OK);
    assert_int_equal(v.type, LH_STORE_FLOAT);
    assert_true(v.num.f == f);
}

static void expect_absent(void *arena, const char *key, size_t klen, int64_t now)
{
    struct lh_store_val v;
    assert_int_equal(get(arena, key, klen, now, &v), LH_STORE_NOT_FOUND);
}

static int64_t ttl_of(void *arena, const char *key, size_t klen, int64_t now)
{
    int64_t left = 12345;
    assert_int_equal(lh_store_ttl(arena, key, klen, now, &left), LH_STORE_OK);
    return left;
}

static void fill(char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)pattern(seed, i);
}

/* A fixed-width key: "k" and i (< 100000) in 5 digits. */
static const char *key_n(char *k, unsigned i)
{
    k[0] = 'k';
    for (int d = 5; d >= 1; d--, i /= 10)
        k[d] = (char)('0' + i % 10);
    k[6] = 0;
    return k;
}

/* ---- init ---------------------------------------------------------------------- */

static void test_init_bounds(void **state)
{
    (void)state;
    size_t bytes = 256 * KIB;
    char *buf = aligned_alloc(4096, bytes);
    assert_non_null(buf);
    memset(buf, 0xee, bytes);
    assert_int_equal(lh_store_init(NULL, bytes), -1);
    assert_int_equal(lh_store_init(buf + 8, bytes - 4096), -1);
    assert_int_equal(lh_store_init(buf, LH_STORE_MIN - 1), -1);
    assert_int_equal(lh_store_init(buf, 64 * KIB), -1);
    for (size_t i = 0; i < bytes; i++) /* nothing written */
        assert_int_equal((uint8_t)buf[i], 0xee);
    assert_int_equal(lh_store_check(buf), -1); /* never laid out */

    assert_int_equal(lh_store_init(buf, LH_STORE_MIN), 0);
    assert_int_equal(lh_store_check(buf), 0);
    struct lh_store_stats st = stats(buf);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.expired, 0);
    assert_true(st.capacity >= 60 * KIB && st.capacity < LH_STORE_MIN);

    memset(buf, 0, bytes);
    assert_int_equal(lh_store_check(buf), -1);
    assert_int_equal(lh_store_init(buf, bytes), 0); /* an odd size works too */
    assert_int_equal(lh_store_check(buf), 0);
    assert_true(stats(buf).capacity > bytes - 8 * KIB);
    assert_int_equal(lh_store_init(buf, bytes - 4096 + 7), 0);
    assert_int_equal(lh_store_check(buf), 0);
    free(buf);
}

/* ---- values and keys ----------------------------------------------------------- */

static void test_types(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    static const char nuls[] = "a\0b\0\0c";
    static const char table[] = "\x01\x00{\"t\":[1,2]}\xff";
    set_ok(a, K("s"), sval(nuls, sizeof nuls), 0, 1);
    set_ok(a, K("empty"), sval("", 0), 0, 1);
    set_ok(a, K("empty-null"), sval(NULL, 0), 0, 1);
    set_int(a, K("i"), -42, 0, 1);
    set_int(a, K("min"), INT64_MIN, 0, 1);
    set_ok(a, K("f"), fval(3.25), 0, 1);
    set_ok(a, K("big"), fval(-1e300), 0, 1);
    struct lh_store_val t = {.type = LH_STORE_BOOL, .num.i = 1};
    set_ok(a, K("yes"), t, 0, 1);
    t.num.i = 0;
    set_ok(a, K("no"), t, 0, 1);
    t.num.i = 7; /* any nonzero is true, stored as 1 */
    set_ok(a, K("seven"), t, 0, 1);
    struct lh_store_val tb = {.type = LH_STORE_TABLE, .data = table, .len = sizeof table};
    set_ok(a, K("t"), tb, 0, 1);

    expect_bytes(a, K("s"), 2, LH_STORE_STRING, nuls, sizeof nuls);
    expect_bytes(a, K("empty"), 2, LH_STORE_STRING, "", 0);
    expect_bytes(a, K("empty-null"), 2, LH_STORE_STRING, "", 0);
    expect_int(a, K("i"), 2, -42);
    expect_int(a, K("min"), 2, INT64_MIN);
    expect_float(a, K("f"), 2, 3.25);
    expect_float(a, K("big"), 2, -1e300);
    struct lh_store_val v;
    assert_int_equal(get(a, K("yes"), 2, &v), LH_STORE_OK);
    assert_int_equal(v.type, LH_STORE_BOOL);
    assert_int_equal(v.num.i, 1);
    assert_int_equal(get(a, K("no"), 2, &v), LH_STORE_OK);
    assert_int_equal(v.type, LH_STORE_BOOL);
    assert_int_equal(v.num.i, 0);
    assert_int_equal(get(a, K("seven"), 2, &v), LH_STORE_OK);
    assert_int_equal(v.num.i, 1);
    expect_bytes(a, K("t"), 2, LH_STORE_TABLE, table, sizeof table);
    assert_int_equal(stats(a).entries, 11);

    /* a set replaces the type too */
    set_int(a, K("s"), 5, 0, 3);
    expect_int(a, K("s"), 3, 5);
    set_ok(a, K("i"), sval(K("now a string")), 0, 3);
    expect_bytes(a, K("i"), 3, LH_STORE_STRING, K("now a string"));
    assert_int_equal(stats(a).entries, 11);
    assert_int_equal(lh_store_check(a), 0);

    /* the buffer holds the value copied out, not a view of the arena */
    struct lh_store_buf own = {0};
    assert_int_equal(lh_store_get(a, K("t"), 3, &v, &own), LH_STORE_OK);
    assert_ptr_equal(v.data, own.data);
    assert_int_equal(own.len, sizeof table);
    assert_true(own.cap >= own.len);
    set_ok(a, K("t"), sval(K("other")), 0, 3);
    assert_memory_equal(v.data, table, sizeof table);
    free(own.data);
    free(a);
}

static void test_key_bytes(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    set_int(a, all, sizeof all, 1000, 0, 1);
    for (int i = 0; i < 256; i++)
        set_int(a, &all[i], 1, i, 0, 1);
    set_int(a, "", 0, -1, 0, 1);
    expect_int(a, NULL, 0, 1, -1); /* no bytes: any pointer */
    set_int(a, all, 2, 2000, 0, 1); /* "\0\1": not "\0" */
    set_int(a, all + 1, 255, 3000, 0, 1);
    assert_int_equal(stats(a).entries, 256 + 4);
    for (int i = 0; i < 256; i++)
        expect_int(a, &all[i], 1, 2, i);
    expect_int(a, all, sizeof all, 2, 1000);
    expect_int(a, all, 2, 2, 2000);
    expect_int(a, all + 1, 255, 2, 3000);
    expect_absent(a, all, 3, 2);
    expect_absent(a, all + 1, 254, 2);
    assert_int_equal(lh_store_delete(a, NULL, 0, 2), LH_STORE_OK);
    expect_absent(a, "", 0, 2);
    expect_int(a, all, 1, 2, 0);
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

static void test_key_max(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    char *key = malloc(LH_STORE_KEY_MAX + 1);
    fill(key, LH_STORE_KEY_MAX + 1, 7);
    set_ok(a, key, LH_STORE_KEY_MAX, sval(K("long")), 0, 1);
    expect_bytes(a, key, LH_STORE_KEY_MAX, 1, LH_STORE_STRING, K("long"));
    expect_absent(a, key, LH_STORE_KEY_MAX - 1, 1);
    assert_int_equal(ttl_of(a, key, LH_STORE_KEY_MAX, 1), -1);

    size_t n = LH_STORE_KEY_MAX + 1;
    struct lh_store_val v = ival(1), out;
    struct lh_store_buf buf = {0};
    int64_t left;
    size_t count;
    struct lh_store_stats before = stats(a);
    assert_int_equal(lh_store_set(a, key, n, &v, 0, 1, 0), LH_STORE_BAD_KEY);
    assert_int_equal(lh_store_set(a, key, n, &v, 0, 1, 1), LH_STORE_BAD_KEY);
    assert_int_equal(lh_store_get(a, key, n, 1, &out, &buf), LH_STORE_BAD_KEY);
    assert_int_equal(lh_store_incr(a, key, n, &v, &v, 0, 1, &out), LH_STORE_BAD_KEY);
    assert_int_equal(lh_store_delete(a, key, n, 1), LH_STORE_BAD_KEY);
    assert_int_equal(lh_store_expire(a, key, n, 5, 1), LH_STORE_BAD_KEY);
    assert_int_equal(lh_store_ttl(a, key, n, 1, &left), LH_STORE_BAD_KEY);
    assert_int_equal(stats(a).entries, before.entries);
    assert_int_equal(stats(a).bytes, before.bytes);

    assert_int_equal(lh_store_keys(a, NULL, 0, 1, &buf, &count), LH_STORE_OK);
    assert_int_equal(count, 1);
    uint32_t len;
    memcpy(&len, buf.data, sizeof len);
    assert_int_equal(len, LH_STORE_KEY_MAX);
    assert_memory_equal(buf.data + 4, key, LH_STORE_KEY_MAX);
    assert_int_equal(lh_store_delete(a, key, LH_STORE_KEY_MAX, 1), LH_STORE_OK);
    assert_int_equal(stats(a).bytes, 0);
    assert_int_equal(lh_store_check(a), 0);
    free(buf.data);
    free(key);
    free(a);
}

/* ---- time ---------------------------------------------------------------------- */

static void test_ttl_expiry(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    int64_t t0 = 10000;
    set_ok(a, K("k"), sval(K("v")), 1500, t0);
    set_int(a, K("forever"), 1, 0, t0);
    assert_int_equal(ttl_of(a, K("k"), t0), 1500);
    assert_int_equal(ttl_of(a, K("k"), t0 + 1499), 1);
    assert_int_equal(ttl_of(a, K("forever"), t0 + 1499), -1);
    expect_bytes(a, K("k"), t0 + 1499, LH_STORE_STRING, K("v"));
    int64_t left;
    assert_int_equal(lh_store_ttl(a, K("k"), t0 + 1500, &left), LH_STORE_NOT_FOUND);
    assert_int_equal(stats(a).entries, 2); /* ttl only reads */
    expect_absent(a, K("k"), t0 + 1500);
    assert_int_equal(stats(a).entries, 1); /* get removed it */
    assert_int_equal(stats(a).expired, 1);
    assert_int_equal(lh_store_ttl(a, K("nope"), t0, &left), LH_STORE_NOT_FOUND);
    expect_int(a, K("forever"), INT64_MAX - 1, 1);

    /* a set replaces the TTL: with one, then none */
    set_ok(a, K("r"), sval(K("1")), 100, t0);
    set_ok(a, K("r"), sval(K("2")), 0, t0 + 50);
    assert_int_equal(ttl_of(a, K("r"), t0 + 500), -1);
    set_ok(a, K("r"), sval(K("3")), 7, t0 + 500);
    assert_int_equal(ttl_of(a, K("r"), t0 + 500), 7);
    expect_absent(a, K("r"), t0 + 507);

    /* a TTL past the end of time saturates and does not expire */
    set_int(a, K("huge"), 3, INT64_MAX, t0);
    assert_int_equal(ttl_of(a, K("huge"), t0), INT64_MAX - t0);
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

static void test_expire(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    set_ok(a, K("k"), sval(K("v")), 0, 1000);
    assert_int_equal(lh_store_expire(a, K("k"), 500, 1000), LH_STORE_OK);
    assert_int_equal(ttl_of(a, K("k"), 1000), 500);
    expect_bytes(a, K("k"), 1499, LH_STORE_STRING, K("v"));
    expect_absent(a, K("k"), 1500);

    set_ok(a, K("p"), sval(K("v")), 100, 1000);
    assert_int_equal(lh_store_expire(a, K("p"), 0, 1050), LH_STORE_OK); /* no TTL now */
    assert_int_equal(ttl_of(a, K("p"), 1050), -1);
    expect_bytes(a, K("p"), 1000000000, LH_STORE_STRING, K("v"));
    assert_int_equal(lh_store_expire(a, K("p"), 20, 2000), LH_STORE_OK); /* a new one */
    assert_int_equal(ttl_of(a, K("p"), 2001), 19);

    assert_int_equal(lh_store_expire(a, K("absent"), 10, 1000), LH_STORE_NOT_FOUND);
    set_ok(a, K("gone"), sval(K("v")), 10, 1000);
    assert_int_equal(lh_store_expire(a, K("gone"), 1000, 1010), LH_STORE_NOT_FOUND);
    expect_absent(a, K("gone"), 1010);
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

static void test_add(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    struct lh_store_val v1 = sval(K("first")), v2 = sval(K("second"));
    assert_int_equal(lh_store_set(a, K("k"), &v1, 0, 1, 1), LH_STORE_OK);
    assert_int_equal(lh_store_set(a, K("k"), &v2, 0, 2, 1), LH_STORE_EXISTS);
    expect_bytes(a, K("k"), 3, LH_STORE_STRING, K("first"));
    assert_int_equal(stats(a).entries, 1);

    assert_int_equal(lh_store_set(a, K("t"), &v1, 10, 100, 1), LH_STORE_OK);
    assert_int_equal(lh_store_set(a, K("t"), &v2, 0, 109, 1), LH_STORE_EXISTS);
    assert_int_equal(lh_store_set(a, K("t"), &v2, 50, 110, 1), LH_STORE_OK); /* expired */
    expect_bytes(a, K("t"), 159, LH_STORE_STRING, K("second"));
    assert_int_equal(ttl_of(a, K("t"), 159), 1);
    assert_int_equal(stats(a).expired, 1);
    assert_int_equal(stats(a).entries, 2);
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

/* ---- incr ---------------------------------------------------------------------- */

static void incr_ok(void *a, const char *key, size_t klen, struct lh_store_val by,
                    struct lh_store_val init, int64_t ttl, int64_t now,
                    struct lh_store_val *out)
{
    assert_int_equal(lh_store_incr(a, key, klen, &by, &init, ttl, now, out), LH_STORE_OK);
}

static void test_incr(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    struct lh_store_val out;
    incr_ok(a, K("c"), ival(5), ival(10), 1000, 0, &out); /* missing: init + by */
    assert_int_equal(out.type, LH_STORE_INT);
    assert_int_equal(out.num.i, 15);
    expect_int(a, K("c"), 0, 15);
    assert_int_equal(ttl_of(a, K("c"), 0), 1000);

    struct lh_store_stats before = stats(a);
    for (int i = 0; i < 1000; i++)
        incr_ok(a, K("c"), ival(1), ival(0), 5, 100, &out); /* keeps its TTL */
    assert_int_equal(out.num.i, 1015);
    assert_int_equal(ttl_of(a, K("c"), 100), 900);
    assert_int_equal(stats(a).bytes, before.bytes); /* in place */
    assert_int_equal(stats(a).entries, before.entries);

    incr_ok(a, K("c"), fval(0.5), ival(0), 0, 100, &out); /* INT + FLOAT: FLOAT */
    assert_int_equal(out.type, LH_STORE_FLOAT);
    assert_true(out.num.f == 1015.5);
    expect_float(a, K("c"), 100, 1015.5);
    incr_ok(a, K("c"), ival(-2), ival(0), 0, 100, &out); /* FLOAT + INT: FLOAT */
    assert_int_equal(out.type, LH_STORE_FLOAT);
    assert_true(out.num.f == 1013.5);
    assert_int_equal(ttl_of(a, K("c"), 100), 900);
    assert_int_equal(stats(a).bytes, before.bytes);

    incr_ok(a, K("f"), ival(2), fval(1.5), 0, 100, &out); /* FLOAT init */
    assert_int_equal(out.type, LH_STORE_FLOAT);
    assert_true(out.num.f == 3.5);
    incr_ok(a, K("g"), fval(0.25), ival(1), 0, 100, &out); /* FLOAT by */
    assert_true(out.type == LH_STORE_FLOAT && out.num.f == 1.25);
    assert_int_equal(ttl_of(a, K("g"), 100), -1);
    set_ok(a, K("sf"), fval(2.5), 0, 100);
    incr_ok(a, K("sf"), fval(0.25), ival(0), 0, 100, &out);
    expect_float(a, K("sf"), 100, 2.75);

    set_int(a, K("w"), INT64_MAX, 0, 100); /* wraps as Lua's integers do */
    incr_ok(a, K("w"), ival(1), ival(0), 0, 100, &out);
    assert_true(out.type == LH_STORE_INT && out.num.i == INT64_MIN);
    expect_int(a, K("w"), 100, INT64_MIN);
    incr_ok(a, K("w"), ival(-1), ival(0), 0, 100, &out);
    assert_true(out.num.i == INT64_MAX);
    incr_ok(a, K("nw"), ival(INT64_MAX), ival(INT64_MAX), 0, 100, &out);
    assert_true(out.num.i == -2);

    /* not a number: nothing changes */
    struct lh_store_val by = ival(1), init = ival(0);
    set_ok(a, K("s"), sval(K("12")), 0, 100);
    struct lh_store_val b = {.type = LH_STORE_BOOL, .num.i = 1};
    set_ok(a, K("b"), b, 0, 100);
    struct lh_store_val t = {.type = LH_STORE_TABLE, .data = "\x01", .len = 1};
    set_ok(a, K("t"), t, 0, 100);
    before = stats(a);
    assert_int_equal(lh_store_incr(a, K("s"), &by, &init, 0, 100, &out), LH_STORE_NOT_NUMBER);
    assert_int_equal(lh_store_incr(a, K("b"), &by, &init, 0, 100, &out), LH_STORE_NOT_NUMBER);
    assert_int_equal(lh_store_incr(a, K("t"), &by, &init, 0, 100, &out), LH_STORE_NOT_NUMBER);
    expect_bytes(a, K("s"), 100, LH_STORE_STRING, K("12"));
    expect_bytes(a, K("t"), 100, LH_STORE_TABLE, "\x01", 1);
    assert_int_equal(stats(a).bytes, before.bytes);
    assert_int_equal(stats(a).entries, before.entries);

    /* an expired number is absent: made again from init, with the new TTL */
    set_int(a, K("e"), 100, 10, 100);
    incr_ok(a, K("e"), ival(1), ival(0), 0, 110, &out);
    assert_int_equal(out.num.i, 1);
    assert_int_equal(ttl_of(a, K("e"), 110), -1);
    assert_int_equal(stats(a).expired, 1);
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

static void test_delete(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    set_ok(a, K("k"), sval(K("v")), 0, 1);
    set_ok(a, K("t"), sval(K("v")), 5, 1);
    assert_int_equal(lh_store_delete(a, K("k"), 2), LH_STORE_OK);
    expect_absent(a, K("k"), 2);
    assert_int_equal(lh_store_delete(a, K("k"), 2), LH_STORE_NOT_FOUND);
    assert_int_equal(lh_store_delete(a, K("t"), 6), LH_STORE_NOT_FOUND); /* expired */
    struct lh_store_stats st = stats(a);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.expired, 1);
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

/* ---- keys ---------------------------------------------------------------------- */

/* Whether the keys() output in buf holds exactly the n keys given. */
static void expect_keys(const struct lh_store_buf *buf, size_t count, const char *const *keys,
                        const size_t *lens, size_t n)
{
    assert_int_equal(count, n);
    int seen[16] = {0};
    size_t at = 0;
    for (size_t k = 0; k < count; k++) {
        uint32_t len;
        assert_true(at + sizeof len <= buf->len);
        memcpy(&len, buf->data + at, sizeof len);
        at += sizeof len;
        assert_true(at + len <= buf->len);
        size_t i = 0;
        while (i < n && (lens[i] != len || memcmp(keys[i], buf->data + at, len) != 0))
            i++;
        assert_true(i < n);
        assert_false(seen[i]);
        seen[i] = 1;
        at += len;
    }
    assert_int_equal(at, buf->len);
}

static void test_keys(void **state)
{
    (void)state;
    void *a = store_new(256 * KIB);
    static const char *const all[] = {"user:1", "user:2", "usex", "a\0b1", "a\0b2", "a\0c", "",
                                      "user:3"};
    static const size_t lens[] = {6, 6, 4, 4, 4, 3, 0, 6};
    for (int i = 0; i < 7; i++)
        set_int(a, all[i], lens[i], i, 0, 100);
    set_int(a, all[7], lens[7], 7, 50, 100); /* user:3 expires at 150 */

    struct lh_store_buf buf = {0};
    size_t count = 99;
    assert_int_equal(lh_store_keys(a, NULL, 0, 100, &buf, &count), LH_STORE_OK);
    expect_keys(&buf, count, all, lens, 8);
    assert_int_equal(lh_store_keys(a, "", 0, 150, &buf, &count), LH_STORE_OK);
    expect_keys(&buf, count, all, lens, 7);
    assert_int_equal(lh_store_keys(a, K("user:"), 149, &buf, &count), LH_STORE_OK);
    static const char *const users[] = {"user:1", "user:2", "user:3"};
    static const size_t ulens[] = {6, 6, 6};
    expect_keys(&buf, count, users, ulens, 3);
    assert_int_equal(lh_store_keys(a, K("user:"), 150, &buf, &count), LH_STORE_OK);
    expect_keys(&buf, count, users, ulens, 2);
    assert_int_equal(lh_store_keys(a, K("a\0b"), 150, &buf, &count), LH_STORE_OK);
    expect_keys(&buf, count, all + 3, lens + 3, 2);
    assert_int_equal(lh_store_keys(a, K("a\0"), 150, &buf, &count), LH_STORE_OK);
    expect_keys(&buf, count, all + 3, lens + 3, 3);
    assert_int_equal(lh_store_keys(a, K("a"), 150, &buf, &count), LH_STORE_OK);
    expect_keys(&buf, count, all + 3, lens + 3, 3);
    assert_int_equal(lh_store_keys(a, K("user:10"), 150, &buf, &count), LH_STORE_OK);
    assert_int_equal(count, 0);
    assert_int_equal(buf.len, 0);
    assert_int_equal(stats(a).entries, 8); /* keys only reads */
    free(buf.data);
    free(a);
}

/* ---- making room --------------------------------------------------------------- */

#define VAL 1000 /* the value size of the fill tests */

static void set_fill(void *a, unsigned i, int64_t ttl, int64_t now)
{
    char k[8], v[VAL];
    fill(v, VAL, i);
    set_ok(a, key_n(k, i), 6, sval(v, VAL), ttl, now);
}

static int present(void *a, unsigned i, int64_t now)
{
    char k[8], v[VAL];
    struct lh_store_val out;
    enum lh_store_rc rc = get(a, key_n(k, i), 6, now, &out);
    if (rc == LH_STORE_NOT_FOUND)
        return 0;
    assert_int_equal(rc, LH_STORE_OK);
    fill(v, VAL, i);
    assert_int_equal(out.len, VAL);
    assert_memory_equal(out.data, v, VAL);
    return 1;
}

/* How many VAL entries fill a fresh store of `bytes` without an eviction. */
static unsigned fill_count(size_t bytes)
{
    void *a = store_new(bytes);
    unsigned n = 0;
    while (set_fill(a, n, 0, 1), stats(a).evictions == 0)
        n++;
    free(a);
    return n;
}

/* Whether key is there, without using it. */
static int held(void *a, const char *key, size_t klen, int64_t now)
{
    int64_t left;
    return lh_store_ttl(a, key, klen, now, &left) == LH_STORE_OK;
}

static void test_lru_order(void **state)
{
    (void)state;
    void *a = store_new(LH_STORE_MIN);
    struct lh_store_val out, by = ival(1);
    set_int(a, K("counter"), 0, 0, 1); /* the oldest, but incr uses it */
    assert_int_equal(lh_store_incr(a, K("counter"), &by, &by, 0, 1, &out), LH_STORE_OK);
    unsigned n = 0;
    while (stats(a).evictions == 0)
        set_fill(a, n++, 0, 1);
    assert_true(n > 30);
    /* the first to go: k0, after the counter had its second chance */
    assert_true(held(a, K("counter"), 1));
    assert_false(held(a, K("k00000"), 1));
    for (unsigned i = 1; i < n; i++)
        assert_true(held(a, key_n((char[8]){0}, i), 6, 1));
    assert_true(present(a, 1, 2)); /* k1: the most recently used now */
    for (unsigned i = n; i < n + 20; i++) {
        set_fill(a, i, 0, 3);
        assert_int_equal(lh_store_incr(a, K("counter"), &by, &by, 0, 3, &out), LH_STORE_OK);
    }
    /* one eviction per new entry (the same sizes), least recently used first */
    struct lh_store_stats st = stats(a);
    assert_int_equal(st.evictions, 21);
    assert_int_equal(st.expired, 0);
    assert_true(held(a, K("counter"), 4));
    expect_int(a, K("counter"), 4, 21);
    assert_true(present(a, 1, 4));
    for (unsigned i = 2; i < 22; i++)
        assert_false(present(a, i, 4));
    for (unsigned i = 22; i < n + 20; i++)
        assert_true(present(a, i, 4));
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

static void test_expired_first(void **state)
{
    (void)state;
    size_t bytes = LH_STORE_MIN;
    unsigned n = fill_count(bytes);
    void *a = store_new(bytes);
    unsigned half = n / 2;
    for (unsigned i = 0; i < half; i++) /* the oldest: no TTL */
        set_fill(a, i, 0, 1);
    for (unsigned i = half; i < n; i++) /* newer, expiring at 101 */
        set_fill(a, i, 100, 1);
    assert_int_equal(stats(a).evictions, 0);
    set_fill(a, 1000, 0, 101); /* no room: the expired ones go, all of them */
    struct lh_store_stats st = stats(a);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.expired, n - half);
    assert_int_equal(st.entries, half + 1);
    for (unsigned i = 0; i < half; i++)
        assert_true(present(a, i, 101));
    assert_int_equal(lh_store_check(a), 0);

    /* expire() moves the hint: the entry it gave a TTL goes first, not the oldest */
    free(a);
    a = store_new(bytes);
    for (unsigned i = 0; i < n; i++)
        set_fill(a, i, 0, 1);
    char k[8];
    assert_int_equal(lh_store_expire(a, key_n(k, n / 2), 6, 10, 1), LH_STORE_OK);
    set_fill(a, 1000, 0, 11);
    st = stats(a);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.evictions, 0);
    assert_true(present(a, 0, 11));
    assert_false(present(a, n / 2, 11));
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t bytes = 256 * KIB;
    void *a = store_new(bytes);
    set_ok(a, K("k"), sval(K("old")), 0, 1);
    for (unsigned i = 0; i < 50; i++)
        set_fill(a, i, 0, 1);
    struct lh_store_stats before = stats(a);
    void *copy = malloc(bytes);
    memcpy(copy, a, bytes);
    size_t cap = before.capacity;
    char *big = malloc(cap + 1);
    fill(big, cap + 1, 3);

    struct lh_store_val v = sval(big, cap);
    assert_int_equal(lh_store_set(a, K("k"), &v, 0, 2, 0), LH_STORE_TOO_LARGE);
    assert_int_equal(lh_store_set(a, K("new"), &v, 0, 2, 1), LH_STORE_TOO_LARGE);
    v.len = SIZE_MAX;
    assert_int_equal(lh_store_set(a, K("k"), &v, 0, 2, 0), LH_STORE_TOO_LARGE);
    assert_memory_equal(a, copy, bytes); /* not a byte changed */
    assert_int_equal(lh_store_check(a), 0);
    struct lh_store_stats after = stats(a);
    assert_int_equal(after.entries, before.entries);
    assert_int_equal(after.bytes, before.bytes);
    assert_int_equal(after.evictions, 0);
    expect_bytes(a, K("k"), 2, LH_STORE_STRING, K("old"));

    /* the largest value that fits the empty store: found on a copy, by halving */
    size_t lo = 0, hi = cap;
    while (lo + 1 < hi) {
        size_t mid = lo + (hi - lo) / 2;
        memcpy(a, copy, bytes);
        v.len = mid;
        if (lh_store_set(a, K("k"), &v, 0, 2, 0) == LH_STORE_OK)
            lo = mid;
        else
            hi = mid;
    }
    assert_true(lo > cap - 128);
    memcpy(a, copy, bytes);
    v.len = lo; /* fits only once everything else is gone: the old value too */
    assert_int_equal(lh_store_set(a, K("k"), &v, 0, 2, 0), LH_STORE_OK);
    struct lh_store_stats st = stats(a);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.evictions, 50);
    expect_bytes(a, K("k"), 3, LH_STORE_STRING, big, lo);
    v.len = lo + 1;
    assert_int_equal(lh_store_set(a, K("k"), &v, 0, 4, 0), LH_STORE_TOO_LARGE);
    expect_bytes(a, K("k"), 5, LH_STORE_STRING, big, lo);
    assert_int_equal(lh_store_check(a), 0);
    free(big);
    free(copy);
    free(a);
}

/* ---- many random operations against a model ------------------------------------ */

#define MKEYS 300

struct mkey {
    int live;
    enum lh_store_type type;
    int64_t i;
    double f;
    size_t len;
    uint32_t seed;
    int64_t expires;
    uint64_t evictions; /* the store's count when it was last written */
};

static struct mkey model[MKEYS];

static size_t random_len(void)
{
    uint64_t r = rng();
    switch (r % 20) {
    case 0:
        return r / 32 % (20 * KIB);
    case 1: case 2: case 3:
        return r / 32 % 4000;
    default:
        return r / 32 % 300;
    }
}

static int model_live(const struct mkey *m, int64_t now)
{
    return m->live && (m->expires == 0 || now < m->expires);
}

/* The store has lost a key the model holds: only an eviction since it was written
 * could have done that. */
static void vanished(struct mkey *m, void *a, unsigned *gone)
{
    assert_true(stats(a).evictions > m->evictions);
    m->live = 0;
    ++*gone;
}

static void model_write(struct mkey *m, void *a, const struct lh_store_val *v,
                        int64_t expires, uint32_t seed)
{
    *m = (struct mkey){.live = 1, .type = v->type, .len = v->len, .seed = seed,
                       .expires = expires, .evictions = stats(a).evictions};
    if (v->type == LH_STORE_INT)
        m->i = v->num.i;
    if (v->type == LH_STORE_FLOAT)
        m->f = v->num.f;
}

static void model_check_value(const struct mkey *m, const struct lh_store_val *v)
{
    assert_int_equal(v->type, m->type);
    if (m->type == LH_STORE_INT)
        assert_true(v->num.i == m->i);
    else if (m->type == LH_STORE_FLOAT)
        assert_true(v->num.f == m->f);
    else {
        assert_int_equal(v->len, m->len);
        for (size_t j = 0; j < m->len; j++)
            if ((uint8_t)v->data[j] != pattern(m->seed, j))
                fail_msg("value of %zu bytes differs at %zu", m->len, j);
    }
}

static int64_t expiry(int64_t ttl, int64_t now)
{
    return ttl > 0 ? now + ttl : 0;
}

static void random_step(void *a, int64_t now, uint32_t step, char *val, unsigned *gone)
{
    unsigned ki = (unsigned)(rng() % MKEYS);
    struct mkey *m = &model[ki];
    char k[8];
    key_n(k, ki);
    int live = model_live(m, now);
    int64_t ttl = rng() % 4 == 0 ? (int64_t)(1 + rng() % 400) : 0;
    struct lh_store_val v, out;
    unsigned op = (unsigned)(rng() % 100);
    if (op < 35) { /* set, or add */
        int add = op < 5;
        if (rng() % 4 == 0) {
            v = rng() % 2 ? ival((int64_t)rng()) : fval((double)(rng() % 1000) / 8);
        } else {
            v = sval(val, random_len());
            fill(val, v.len, step);
        }
        enum lh_store_rc rc = lh_store_set(a, k, 6, &v, ttl, now, add);
        if (add && live && rc == LH_STORE_EXISTS)
            return;
        assert_int_equal(rc, LH_STORE_OK);
        if (add && live) /* OK: it must have been evicted */
            vanished(m, a, gone);
        model_write(m, a, &v, expiry(ttl, now), step);
    } else if (op < 60) { /* get */
        enum lh_store_rc rc = get(a, k, 6, now, &out);
        if (!live) {
            assert_int_equal(rc, LH_STORE_NOT_FOUND);
            m->live = 0;
        } else if (rc == LH_STORE_NOT_FOUND) {
            vanished(m, a, gone);
        } else {
            assert_int_equal(rc, LH_STORE_OK);
            model_check_value(m, &out);
        }
    } else if (op < 75) { /* incr */
        struct lh_store_val by = rng() % 8 ? ival((int64_t)(rng() % 100) - 50) : fval(0.5);
        /* an init no counter reaches, so that one made again is told apart */
        struct lh_store_val init = ival((int64_t)step * 1000003);
        enum lh_store_rc rc = lh_store_incr(a, k, 6, &by, &init, ttl, now, &out);
        int number = m->type == LH_STORE_INT || m->type == LH_STORE_FLOAT;
        if (live && !number) {
            if (rc == LH_STORE_NOT_NUMBER)
                return;
            vanished(m, a, gone);
        }
        assert_int_equal(rc, LH_STORE_OK);
        struct lh_store_val cur = {.type = m->type, .num.i = m->i};
        if (m->type == LH_STORE_FLOAT)
            cur.num.f = m->f;
        if (live && number) {
            int fl = cur.type == LH_STORE_FLOAT || by.type == LH_STORE_FLOAT;
            double f = (cur.type == LH_STORE_FLOAT ? cur.num.f : (double)cur.num.i) +
                       (by.type == LH_STORE_FLOAT ? by.num.f : (double)by.num.i);
            int64_t i = (int64_t)((uint64_t)cur.num.i + (uint64_t)by.num.i);
            int matches = fl ? out.type == LH_STORE_FLOAT && out.num.f == f
                             : out.type == LH_STORE_INT && out.num.i == i;
            if (matches) {
                m->type = out.type;
                m->i = out.num.i;
                m->f = out.num.f;
                return;
            }
            vanished(m, a, gone); /* then it was made again from init */
        }
        int64_t want_i = init.num.i + by.num.i;
        if (by.type == LH_STORE_FLOAT)
            assert_true(out.type == LH_STORE_FLOAT && out.num.f == (double)init.num.i + 0.5);
        else
            assert_true(out.type == LH_STORE_INT && out.num.i == want_i);
        model_write(m, a, &out, expiry(ttl, now), step);
    } else if (op < 85) { /* delete */
        enum lh_store_rc rc = lh_store_delete(a, k, 6, now);
        if (live && rc == LH_STORE_NOT_FOUND)
            vanished(m, a, gone);
        else
            assert_int_equal(rc, live ? LH_STORE_OK : LH_STORE_NOT_FOUND);
        m->live = 0;
    } else if (op < 92) { /* expire */
        enum lh_store_rc rc = lh_store_expire(a, k, 6, ttl, now);
        if (live && rc == LH_STORE_NOT_FOUND) {
            vanished(m, a, gone);
        } else {
            assert_int_equal(rc, live ? LH_STORE_OK : LH_STORE_NOT_FOUND);
            if (live)
                m->expires = expiry(ttl, now);
        }
    } else { /* ttl */
        int64_t left;
        enum lh_store_rc rc = lh_store_ttl(a, k, 6, now, &left);
        if (live && rc == LH_STORE_NOT_FOUND) {
            vanished(m, a, gone);
        } else {
            assert_int_equal(rc, live ? LH_STORE_OK : LH_STORE_NOT_FOUND);
            if (live)
                assert_true(left == (m->expires ? m->expires - now : -1));
        }
    }
}

static void test_random_against_model(void **state)
{
    (void)state;
    void *a = store_new(128 * KIB);
    memset(model, 0, sizeof model);
    rng_state = 0x2545f4914f6cdd1dull;
    char *val = malloc(20 * KIB);
    int64_t now = 1000;
    unsigned gone = 0;
    for (uint32_t step = 1; step <= 100000; step++) {
        now += (int64_t)(rng() % 4);
        random_step(a, now, step, val, &gone);
        if (step % 1000 == 0) {
            assert_int_equal(lh_store_check(a), 0);
            for (unsigned i = 0; i < MKEYS; i++) { /* every TTL, and what is there */
                char k[8];
                int64_t left;
                enum lh_store_rc rc = lh_store_ttl(a, key_n(k, i), 6, now, &left);
                if (!model_live(&model[i], now))
                    assert_int_equal(rc, LH_STORE_NOT_FOUND);
                else if (rc == LH_STORE_NOT_FOUND)
                    vanished(&model[i], a, &gone);
                else
                    assert_true(left == (model[i].expires ? model[i].expires - now : -1));
            }
            struct lh_store_stats st = stats(a);
            unsigned live = 0;
            for (int i = 0; i < MKEYS; i++)
                live += model[i].live;
            assert_true(st.entries <= live); /* the model may not know of evictions */
        }
    }
    struct lh_store_stats st = stats(a);
    assert_true(gone > 0); /* the test ran under pressure ... */
    assert_true(st.evictions >= gone);
    assert_true(st.expired > 0); /* ... and with expiry */
    assert_int_equal(lh_store_check(a), 0);
    free(val);
    free(a);
}

/* ---- addresses and damage ------------------------------------------------------ */

static void test_two_addresses(void **state)
{
    (void)state;
    size_t bytes = 256 * KIB;
    void *a = store_new(bytes);
    for (unsigned i = 0; i < 40; i++)
        set_fill(a, i, 0, 1);
    set_int(a, K("n"), 42, 1000, 1);
    void *b = aligned_alloc(4096, bytes);
    memcpy(b, a, bytes);
    memset(a, 0, bytes); /* nothing of b may point back into a */
    free(a);
    assert_int_equal(lh_store_check(b), 0);
    for (unsigned i = 0; i < 40; i++)
        assert_true(present(b, i, 2));
    expect_int(b, K("n"), 2, 42);
    assert_int_equal(ttl_of(b, K("n"), 2), 999);
    struct lh_store_val out, by = ival(1);
    assert_int_equal(lh_store_incr(b, K("n"), &by, &by, 0, 2, &out), LH_STORE_OK);
    assert_int_equal(out.num.i, 43);
    assert_int_equal(lh_store_delete(b, K("k00003"), 2), LH_STORE_OK);
    set_fill(b, 100, 0, 2);
    assert_int_equal(lh_store_check(b), 0);
    free(b);
}

/* A full store whose entries keep expiring: every insert needs room and finds an
 * expired entry somewhere, but the walks of the whole store that find them are spaced
 * (1 ms per 1,024 entries), not one per insert; and expired entries still go before
 * live ones when they are the oldest. */
static void test_sweeps_are_spaced(void **state)
{
    (void)state;
    void *a = store_new(4096 * KIB);
    char key[32];
    int64_t now = 1000;
    unsigned n = 0;
    /* fill it with live entries */
    while (stats(a).evictions == 0) {
        int len = snprintf(key, sizeof key, "live:%u", n++);
        set_int(a, key, (size_t)len, n, 0, now);
    }
    size_t entries = stats(a).entries;
    assert_true(entries > 20000);
    uint64_t sweeps0 = stats(a).sweeps;
    /* 2,000 ms, an insert each ms whose entry lives 1 ms */
    for (unsigned i = 0; i < 2000; i++, now++) {
        int len = snprintf(key, sizeof key, "brief:%u", i);
        set_int(a, key, (size_t)len, i, 1, now);
    }
    uint64_t sweeps = stats(a).sweeps - sweeps0, gap = entries >> 10;
    if (sweeps < 2 || sweeps > 2000 / gap + 2)
        fail_msg("%llu sweeps in 2000 ms with %zu entries", (unsigned long long)sweeps,
                 entries);
    assert_true(stats(a).expired > 1900); /* the brief ones went, sooner or later */
    assert_int_equal(lh_store_check(a), 0);
    free(a);
}

/* Where the store keeps things, as store.c lays them out: a 256-byte head, then one
 * uint32 per bucket (the first entry's heap offset / 16), then the heap; an entry
 * opens with its chain, newer and older links. For damaging on purpose. */
#define HEAD_BYTES 256

static uint32_t *bucket_array(void *a, size_t bytes, size_t *n)
{
    size_t nb = 1;
    while (nb * 2 <= bytes / 256)
        nb *= 2;
    *n = nb;
    return (uint32_t *)((char *)a + HEAD_BYTES);
}

static uint32_t *entry_words(void *a, size_t nb, uint32_t u)
{
    return (uint32_t *)((char *)a + HEAD_BYTES + nb * 4 + (size_t)u * 16);
}

/* The one 8-byte word of the head that holds value (a count, a time). */
static uint64_t *head_word(void *a, uint64_t value)
{
    uint64_t *w = a, *found = NULL;
    for (int i = 0; i < HEAD_BYTES / 8; i++) {
        if (w[i] == value) {
            assert_null(found);
            found = &w[i];
        }
    }
    assert_non_null(found);
    return found;
}

static void test_check_finds_damage(void **state)
{
    (void)state;
    size_t bytes = 256 * KIB, nb;
    void *a = store_new(bytes);
    for (unsigned i = 0; i < 60; i++)
        set_fill(a, i, 0, 1);
    void *good = malloc(bytes);
    memcpy(good, a, bytes);
    uint32_t *buckets = bucket_array(a, bytes, &nb);
    size_t used = 0, empty = 0;
    /* neither the newest nor one of the two oldest (the hash is seeded at random, so
       which entry lands first varies from run to run) */
    while (!buckets[used] || !entry_words(a, nb, buckets[used])[1] ||
           !entry_words(a, nb, buckets[used])[2] ||
           !entry_words(a, nb, entry_words(a, nb, buckets[used])[2])[2])
        used++;
    while (buckets[empty])
        empty++;
    uint32_t u = buckets[used];
    uint32_t *e = entry_words(a, nb, u);

    ((uint8_t *)a)[0] ^= 1; /* the magic */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    ((uint8_t *)a)[8] ^= 1; /* a size */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);

    buckets[used] = u + 1; /* inside the entry */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    buckets[empty] = u; /* the wrong bucket */
    buckets[used] = 0;
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    buckets[used] = 0; /* a chain lost */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    e[0] = u; /* a chain that loops */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);

    e[1] = e[2]; /* newer := older: the LRU links disagree */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    e[2] = 0; /* the LRU list cut short */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    e[2] = u; /* an LRU list that loops */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    uint32_t older = e[2], skip = entry_words(a, nb, older)[2];
    assert_true(skip != 0);
    e[2] = skip; /* the list skips one, linked both ways */
    entry_words(a, nb, skip)[1] = u;
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    uint32_t newest = 0, oldest = 0; /* the ends, as the head has them */
    for (size_t b = 0; b < nb; b++) {
        for (uint32_t at = buckets[b]; at; at = entry_words(a, nb, at)[0]) {
            if (!entry_words(a, nb, at)[1])
                newest = at;
            if (!entry_words(a, nb, at)[2])
                oldest = at;
        }
    }
    uint64_t *ends = head_word(a, newest | (uint64_t)oldest << 32);
    *ends = newest | (uint64_t)older << 32; /* the wrong oldest */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);

    ((char *)e)[48] ^= 0x20; /* a key byte: its hash no longer matches */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    e[-1] ^= 1; /* the heap block's header */
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    void *heap = (char *)a + HEAD_BYTES + nb * 4; /* a block no entry holds */
    assert_true(lh_shm_alloc(heap, 100) > 0);
    assert_int_equal(lh_shm_alloc_check(heap), 0);
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);
    uint64_t *count = head_word(a, 60); /* the entry count */
    *count = 61;
    assert_int_equal(lh_store_check(a), -1);
    *count = 59;
    assert_int_equal(lh_store_check(a), -1);
    memcpy(a, good, bytes);

    /* an entry that expires before the store's earliest-expiry hint says */
    set_fill(a, 100, 500, 501); /* expires at 1001 */
    assert_int_equal(lh_store_check(a), 0);
    uint64_t *hint = head_word(a, 1001);
    *hint = 1002;
    assert_int_equal(lh_store_check(a), -1);
    *hint = 1000;
    assert_int_equal(lh_store_check(a), 0); /* a lower bound, not the exact time */
    memcpy(a, good, bytes);

    assert_int_equal(lh_store_check(a), 0);
    set_fill(a, 100, 0, 2);
    assert_int_equal(lh_store_check(a), 0);
    ((uint8_t *)a)[0] ^= 1;
    assert_int_equal(lh_store_init(a, bytes), 0); /* what a caller does on -1 */
    assert_int_equal(lh_store_check(a), 0);
    assert_int_equal(stats(a).entries, 0);
    free(good);
    free(a);
}

/* ---- processes killed mid-call ------------------------------------------------- */

/* A child that runs random calls (incr_only: in-place incr of existing numbers)
 * until it is killed. */
static void child_loop(void *a, int incr_only, uint64_t seed)
{
    int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++)
        signal(crashes[i], SIG_DFL); /* a crash shows, not cmocka's handler */
    alarm(10);                       /* should the parent be gone */
    rng_state = seed | 1;
    char val[3000], k[8];
    struct lh_store_val out, one = ival(1), half = fval(0.5);
    for (int64_t now = 1;; now++) {
        unsigned ki = (unsigned)(rng() % (incr_only ? 16 : 200)), op = (unsigned)(rng() % 8);
        key_n(k, ki);
        if (incr_only || op < 2) {
            lh_store_incr(a, k, 6, rng() % 64 ? &one : &half, &one, 0, now, &out);
        } else if (op < 5) {
            struct lh_store_val v = sval(val, rng() % sizeof val);
            lh_store_set(a, k, 6, &v, rng() % 2 ? 0 : 5, now, op == 4);
        } else if (op < 7) {
            get(a, k, 6, now, &out);
        } else {
            lh_store_delete(a, k, 6, now);
        }
    }
}

static int run_and_kill(void *a, int incr_only, uint64_t seed)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_loop(a, incr_only, seed);
    usleep((useconds_t)(rng() % 1000));
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    return lh_store_check(a);
}

static void test_killed_mid_call(void **state)
{
    (void)state;
    size_t bytes = 256 * KIB;
    void *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(a != MAP_FAILED);
    rng_state = 77;

    /* any call: the store is either whole or refused; if whole, it works on */
    assert_int_equal(lh_store_init(a, bytes), 0);
    int accepted = 0;
    for (int round = 0; round < 100; round++) {
        if (run_and_kill(a, 0, rng()) != 0) {
            assert_int_equal(lh_store_init(a, bytes), 0);
            continue;
        }
        accepted++;
        char k[8], v[500];
        for (unsigned i = 0; i < 300; i++) {
            struct lh_store_val val = sval(v, rng() % sizeof v), out;
            key_n(k, (unsigned)(rng() % 200));
            lh_store_set(a, k, 6, &val, 0, 1, 0);
            get(a, k, 6, 1, &out);
            lh_store_delete(a, key_n(k, (unsigned)(rng() % 200)), 6, 1);
        }
        assert_int_equal(lh_store_check(a), 0);
    }
    assert_true(accepted > 0);

    /* in-place incr only: never refused, and the counters only count (so many rounds
     * that a kill inside even a short unsafe stretch would be seen) */
    for (int round = 0; round < 300; round++) {
        assert_int_equal(lh_store_init(a, bytes), 0);
        char k[8];
        for (unsigned i = 0; i < 16; i++)
            set_int(a, key_n(k, i), 6, 0, 0, 1);
        assert_int_equal(run_and_kill(a, 1, rng()), 0);
        for (unsigned i = 0; i < 16; i++) {
            struct lh_store_val out;
            assert_int_equal(get(a, key_n(k, i), 6, 1, &out), LH_STORE_OK);
            if (out.type == LH_STORE_INT)
                assert_true(out.num.i >= 0);
            else
                assert_true(out.type == LH_STORE_FLOAT && out.num.f >= 0.5);
        }
        assert_int_equal(stats(a).entries, 16);
    }
    munmap(a, bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_bounds),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_key_bytes),
        cmocka_unit_test(test_key_max),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_incr),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_expired_first),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_two_addresses),
        cmocka_unit_test(test_check_finds_damage),
        cmocka_unit_test(test_killed_mid_call),
        cmocka_unit_test(test_sweeps_are_spaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
