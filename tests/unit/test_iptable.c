/* Unit tests for iptable.c: per-IP connection counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "iptable.h"

static struct lh_ipkey ip4(uint32_t n)
{
    struct lh_ipkey k;
    memset(&k, 0, sizeof k);
    k.b[10] = k.b[11] = 0xff;
    memcpy(k.b + 12, &n, 4);
    return k;
}

static void test_limit(void **state)
{
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey a = ip4(1), b = ip4(2);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), 0);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), 0);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), -1);
    assert_int_equal(lh_iptable_count(t, &a), 2);
    assert_int_equal(lh_iptable_acquire(t, &b, 2), 0); /* other IPs are not affected */
    lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_acquire(t, &a, 2), 0);
    assert_int_equal(lh_iptable_size(t), 2);
    lh_iptable_release(t, &a);
    lh_iptable_release(t, &a);
    lh_iptable_release(t, &b);
    assert_int_equal(lh_iptable_size(t), 0);
    assert_int_equal(lh_iptable_count(t, &a), 0);
    lh_iptable_free(t);
}

static void test_unlimited(void **state)
{
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey a = ip4(7);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lh_iptable_acquire(t, &a, 0), 0);
    assert_int_equal(lh_iptable_count(t, &a), 1000);
    lh_iptable_free(t);
}

static void test_many_ips_grow_and_shrink(void **state)
{
    struct lh_iptable *t = lh_iptable_new();
    for (uint32_t i = 0; i < 10000; i++) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        assert_int_equal(lh_iptable_acquire(t, &k, 1), 0);
    }
    assert_int_equal(lh_iptable_size(t), 10000);
    /* release every other one: the rest must still be found (probe chains intact) */
    for (uint32_t i = 0; i < 10000; i += 2) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        lh_iptable_release(t, &k);
    }
    for (uint32_t i = 0; i < 10000; i++) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        assert_int_equal(lh_iptable_count(t, &k), i % 2);
        if (i % 2)
            assert_int_equal(lh_iptable_acquire(t, &k, 1), -1);
    }
    for (uint32_t i = 1; i < 10000; i += 2) {
        struct lh_ipkey k = ip4(i * 2654435761u);
        lh_iptable_release(t, &k);
    }
    assert_int_equal(lh_iptable_size(t), 0);
    lh_iptable_free(t);
}

static void test_release_unknown_is_harmless(void **state)
{
    struct lh_iptable *t = lh_iptable_new();
    struct lh_ipkey a = ip4(9);
    lh_iptable_release(t, &a);
    assert_int_equal(lh_iptable_size(t), 0);
    lh_iptable_free(t);
}

static struct lh_iptable *shared;

static void *hammer(void *arg)
{
    struct lh_ipkey k = ip4(42);
    for (int i = 0; i < 20000; i++) {
        while (lh_iptable_acquire(shared, &k, 3) < 0)
            ;
        lh_iptable_release(shared, &k);
    }
    return NULL;
}

static void test_threads(void **state)
{
    shared = lh_iptable_new();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct lh_ipkey k = ip4(42);
    assert_int_equal(lh_iptable_count(shared, &k), 0);
    assert_int_equal(lh_iptable_size(shared), 0);
    lh_iptable_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_many_ips_grow_and_shrink),
        cmocka_unit_test(test_release_unknown_is_harmless),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("iptable", tests, NULL, NULL);
}
