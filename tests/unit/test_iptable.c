/* Unit tests for iptable.c: per-IP connection counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

#include "iptable.h"

/* An IPv4 address as the IPv4-mapped IPv6 key the server builds. */
static struct lh_ipkey ip4(uint32_t n)
{
    struct lh_ipkey k;
    memset(&k, 0, sizeof k);
    k.b[10] = k.b[11] = 0xff;
    memcpy(k.b + 12, &n, 4);
    return k;
}

static void test_format(void **state)
{
    (void)state;
    char out[LH_IP_STRLEN];
    assert_string_equal(lh_ipkey_format(&(struct lh_ipkey){0}, out), "::");
    struct lh_ipkey k = ip4(htonl(0x7f000001));
    assert_string_equal(lh_ipkey_format(&k, out), "127.0.0.1");
    k = ip4(htonl(0));
    assert_string_equal(lh_ipkey_format(&k, out), "0.0.0.0");
    k = ip4(htonl(0xffffffff));
    assert_string_equal(lh_ipkey_format(&k, out), "255.255.255.255");
    k = ip4(htonl(0x0a140309));
    assert_string_equal(lh_ipkey_format(&k, out), "10.20.3.9");
    k = ip4(htonl(0x6463c80a));
    assert_string_equal(lh_ipkey_format(&k, out), "100.99.200.10");
    struct lh_ipkey one = {.b = {[15] = 1}};
    assert_string_equal(lh_ipkey_format(&one, out), "::1");
    struct lh_ipkey full;
    memset(full.b, 0xab, sizeof full.b);
    assert_string_equal(lh_ipkey_format(&full, out),
                        "abab:abab:abab:abab:abab:abab:abab:abab");
    /* every IPv4 octet value, against inet_ntop */
    for (unsigned v = 0; v < 256; v++) {
        char want[16];
        k = ip4(htonl(v << 24 | v << 16 | (255 - v) << 8 | v));
        inet_ntop(AF_INET, k.b + 12, want, sizeof want);
        assert_string_equal(lh_ipkey_format(&k, out), want);
    }
}

static void test_limit(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    assert_non_null(t);
    struct lh_ipkey a = ip4(1), b = ip4(2);
    assert_int_equal(lh_iptable_size(t), 0);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), 0);
    assert_int_equal(lh_iptable_count(t, &a), 1);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), 0);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), -1); /* over the limit ... */
    assert_int_equal(lh_iptable_count(t, &a), 2);       /* ... counts nothing */
    assert_int_equal(lh_iptable_acquire(t, &a, 3), 0);  /* the limit is per call */
    assert_int_equal(lh_iptable_count(t, &a), 3);
    lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_acquire(t, &b, 2), 0); /* other IPs are not affected */
    assert_int_equal(lh_iptable_size(t), 2);
    lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), 0); /* a release makes room */
    assert_int_equal(lh_iptable_count(t, &a), 2);
    lh_iptable_release(t, &a);
    lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_count(t, &a), 0);
    assert_int_equal(lh_iptable_size(t), 1); /* a is gone, b is still there */
    assert_int_equal(lh_iptable_count(t, &b), 1);
    lh_iptable_release(t, &b);
    assert_int_equal(lh_iptable_size(t), 0);
    assert_int_equal(lh_iptable_count(t, &b), 0);
    /* the emptied table works as new */
    assert_int_equal(lh_iptable_acquire(t, &b, 1), 0);
    assert_int_equal(lh_iptable_acquire(t, &b, 1), -1);
    assert_int_equal(lh_iptable_size(t), 1);
    lh_iptable_free(t);
}

static void test_limit_one(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey a = ip4(5);
    assert_int_equal(lh_iptable_acquire(t, &a, 1), 0);
    assert_int_equal(lh_iptable_acquire(t, &a, 1), -1);
    assert_int_equal(lh_iptable_count(t, &a), 1);
    assert_int_equal(lh_iptable_size(t), 1);
    lh_iptable_free(t);
}

static void test_unlimited(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey a = ip4(7), b = ip4(8);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(lh_iptable_acquire(t, &a, 0), 0);
        assert_int_equal(lh_iptable_acquire(t, &b, -1), 0); /* negative: no limit too */
    }
    assert_int_equal(lh_iptable_count(t, &a), 1000);
    assert_int_equal(lh_iptable_count(t, &b), 1000);
    assert_int_equal(lh_iptable_size(t), 2);
    for (int i = 0; i < 1000; i++)
        lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_count(t, &a), 0);
    assert_int_equal(lh_iptable_size(t), 1);
    lh_iptable_free(t);
}

/* all 16 bytes are the key: keys differing in any one byte are different clients */
static void test_whole_key(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey k[17];
    memset(k, 0, sizeof k);
    for (int i = 0; i < 16; i++)
        k[i + 1].b[i] = 1;
    for (int i = 0; i < 17; i++)
        assert_int_equal(lh_iptable_acquire(t, &k[i], 1), 0);
    assert_int_equal(lh_iptable_size(t), 17);
    for (int i = 0; i < 17; i++)
        assert_int_equal(lh_iptable_count(t, &k[i]), 1);
    lh_iptable_free(t);
}

static void test_many_ips_grow_and_shrink(void **state)
{
    (void)state;
    enum { N = 10000 };
    struct lh_iptable *t = lh_iptable_new();
    for (uint32_t i = 0; i < N; i++) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        assert_int_equal(lh_iptable_acquire(t, &k, 2), 0);
        if (i % 3 == 0)
            assert_int_equal(lh_iptable_acquire(t, &k, 2), 0);
    }
    assert_int_equal(lh_iptable_size(t), N);
    /* every count survived the growth */
    for (uint32_t i = 0; i < N; i++) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        assert_int_equal(lh_iptable_count(t, &k), i % 3 == 0 ? 2 : 1);
    }
    /* release one connection of each: the IPs left at zero go, the others must still
     * be found (the probe chains stay intact around the removed entries) */
    for (uint32_t i = 0; i < N; i++) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        lh_iptable_release(t, &k);
    }
    assert_int_equal(lh_iptable_size(t), (N + 2) / 3);
    for (uint32_t i = 0; i < N; i++) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        assert_int_equal(lh_iptable_count(t, &k), i % 3 == 0 ? 1 : 0);
        if (i % 3 == 0)
            assert_int_equal(lh_iptable_acquire(t, &k, 1), -1);
    }
    for (uint32_t i = 0; i < N; i += 3) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        lh_iptable_release(t, &k);
    }
    assert_int_equal(lh_iptable_size(t), 0);
    lh_iptable_free(t);
}

/* churn: many IPs come and go while a few stay; removed entries are really gone */
static void test_churn(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey keep[8];
    for (uint32_t i = 0; i < 8; i++) {
        keep[i] = ip4(0xc0a80000u + i);
        assert_int_equal(lh_iptable_acquire(t, &keep[i], 0), 0);
    }
    for (uint32_t round = 0; round < 50; round++) {
        for (uint32_t i = 0; i < 500; i++) {
            struct lh_ipkey k = ip4(round * 500 + i + 1000);
            assert_int_equal(lh_iptable_acquire(t, &k, 1), 0);
        }
        assert_int_equal(lh_iptable_size(t), 508);
        for (uint32_t i = 0; i < 500; i++) {
            struct lh_ipkey k = ip4(round * 500 + i + 1000);
            lh_iptable_release(t, &k);
        }
        assert_int_equal(lh_iptable_size(t), 8);
        for (uint32_t i = 0; i < 8; i++)
            assert_int_equal(lh_iptable_count(t, &keep[i]), 1);
    }
    lh_iptable_free(t);
}

static void test_release_unknown_is_harmless(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey a = ip4(9), b = ip4(10);
    lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_size(t), 0);
    assert_int_equal(lh_iptable_count(t, &a), 0);
    assert_int_equal(lh_iptable_acquire(t, &b, 0), 0);
    lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_count(t, &b), 1);
    lh_iptable_free(t);
    lh_iptable_free(NULL);
}

/* ---- several threads on one IP ---------------------------------------------------- */

enum { THREADS = 4, ROUNDS = 20000, LIMIT = 3 };

struct hammer {
    struct lh_iptable *t;
    long max_seen; /* the highest count this thread saw while holding a connection */
    bool stuck;    /* refused a million times in a row */
};

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    struct lh_ipkey k = ip4(42);
    for (int i = 0; i < ROUNDS; i++) {
        /* refused while LIMIT others hold one; a count gone wrong refuses for ever */
        for (long spins = 0; lh_iptable_acquire(h->t, &k, LIMIT) < 0; spins++) {
            if (spins == 1000000) {
                h->stuck = true;
                return NULL;
            }
            sched_yield();
        }
        long n = lh_iptable_count(h->t, &k);
        if (n > h->max_seen)
            h->max_seen = n;
        lh_iptable_release(h->t, &k);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    pthread_t th[THREADS];
    struct hammer h[THREADS];
    for (int i = 0; i < THREADS; i++) {
        h[i] = (struct hammer){t, 0, false};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    struct lh_ipkey k = ip4(42);
    assert_int_equal(lh_iptable_count(t, &k), 0);
    assert_int_equal(lh_iptable_size(t), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_false(h[i].stuck);
        assert_in_range(h[i].max_seen, 1, LIMIT); /* the limit held under contention */
    }
    lh_iptable_free(t);
}

/* threads on distinct IPs at once, which makes the table grow under contention */
struct spread {
    struct lh_iptable *t;
    uint32_t base;  /* this thread's first address */
    long errors;
};

static void *spread(void *arg)
{
    struct spread *sp = arg;
    for (uint32_t i = 0; i < 3000; i++) {
        struct lh_ipkey k = ip4(sp->base + i);
        if (lh_iptable_acquire(sp->t, &k, 1) < 0)
            sp->errors++;
    }
    for (uint32_t i = 0; i < 3000; i++) {
        struct lh_ipkey k = ip4(sp->base + i);
        if (lh_iptable_count(sp->t, &k) != 1)
            sp->errors++;
        lh_iptable_release(sp->t, &k);
    }
    return NULL;
}

static void test_threads_distinct_ips(void **state)
{
    (void)state;
    struct lh_iptable *t = lh_iptable_new();
    pthread_t th[THREADS];
    struct spread sp[THREADS];
    for (int i = 0; i < THREADS; i++) {
        sp[i] = (struct spread){t, (uint32_t)i * 100000u, 0};
        assert_int_equal(pthread_create(&th[i], NULL, spread, &sp[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(sp[i].errors, 0);
    assert_int_equal(lh_iptable_size(t), 0);
    lh_iptable_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_limit_one),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_whole_key),
        cmocka_unit_test(test_many_ips_grow_and_shrink),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_release_unknown_is_harmless),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_threads_distinct_ips),
    };
    return cmocka_run_group_tests_name("iptable", tests, NULL, NULL);
}
