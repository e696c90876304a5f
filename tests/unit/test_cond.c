/* Unit tests for cond.c: HTTP dates, ETags, conditional requests, Range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cond.h"

#define S(x) x, strlen(x)
static const time_t T = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

static void test_date_format(void **state)
{
    char d[LH_HTTP_DATE_LEN + 1];
    lh_http_date(T, d);
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    lh_http_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static void test_date_parse(void **state)
{
    time_t t;
    assert_int_equal(lh_http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), &t), 0);
    assert_int_equal(t, T);
    assert_int_equal(lh_http_date_parse(S("Sunday, 06-Nov-94 08:49:37 GMT"), &t), 0);
    assert_int_equal(t, T);
    assert_int_equal(lh_http_date_parse(S("Sun Nov  6 08:49:37 1994"), &t), 0);
    assert_int_equal(t, T);
    static const char *bad[] = {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC",
                                "Sun, 06 Nov 1994 08:49:37 GMTx", "Sun, 6 Nov 1994 08:49:37 GMT",
                                "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (lh_http_date_parse(bad[i], strlen(bad[i]), &t) == 0)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_date_roundtrip(void **state)
{
    char d[LH_HTTP_DATE_LEN + 1];
    for (time_t t = 0; t < 2000000000; t += 86399 * 37) {
        time_t back;
        lh_http_date(t, d);
        assert_int_equal(lh_http_date_parse(d, strlen(d), &back), 0);
        assert_int_equal(back, t);
    }
}

static void test_etag(void **state)
{
    char e[48];
    assert_int_equal(lh_etag(615, T, 0, e), strlen("\"2ebc98a1.0-267\""));
    assert_string_equal(e, "\"2ebc98a1.0-267\"");
    char e2[48];
    lh_etag(616, T, 0, e2);
    assert_string_not_equal(e, e2);
    lh_etag(615, T, 999999999, e2); /* same second, same size, another write */
    assert_string_not_equal(e, e2);
}

static void test_etag_match(void **state)
{
    const char *e = "\"abc-1\"";
    assert_true(lh_etag_match(S("\"abc-1\""), e));
    assert_true(lh_etag_match(S("W/\"abc-1\""), e));
    assert_true(lh_etag_match(S("\"x\", \"abc-1\""), e));
    assert_true(lh_etag_match(S("*"), e));
    assert_false(lh_etag_match(S("\"abc-2\""), e));
    assert_false(lh_etag_match(S("\"abc-1"), e));
    assert_false(lh_etag_match(S(""), e));
}

static void test_not_modified(void **state)
{
    const char *e = "\"abc\"";
    assert_true(lh_not_modified(S("\"abc\""), NULL, 0, e, T));
    /* If-None-Match decides alone: a matching date does not rescue a stale tag */
    assert_false(lh_not_modified(S("\"old\""), S("Sun, 06 Nov 1994 08:49:37 GMT"), e, T));
    assert_true(lh_not_modified(NULL, 0, S("Sun, 06 Nov 1994 08:49:37 GMT"), e, T));
    assert_true(lh_not_modified(NULL, 0, S("Mon, 07 Nov 1994 08:49:37 GMT"), e, T));
    assert_false(lh_not_modified(NULL, 0, S("Sat, 05 Nov 1994 08:49:37 GMT"), e, T));
    assert_false(lh_not_modified(NULL, 0, S("garbage"), e, T));
    assert_false(lh_not_modified(NULL, 0, NULL, 0, e, T));
}

static void test_range(void **state)
{
    int64_t a, b;
    assert_int_equal(lh_range_parse(S("bytes=0-99"), 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 0 && b == 99);
    assert_int_equal(lh_range_parse(S("bytes=100-"), 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 100 && b == 999);
    assert_int_equal(lh_range_parse(S("bytes=-50"), 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 950 && b == 999);
    assert_int_equal(lh_range_parse(S("bytes=-5000"), 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 0 && b == 999);
    assert_int_equal(lh_range_parse(S("bytes=990-2000"), 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 990 && b == 999);
    assert_int_equal(lh_range_parse(S("bytes=5-5"), 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 5 && b == 5);
}

static void test_range_unsatisfiable(void **state)
{
    int64_t a, b;
    assert_int_equal(lh_range_parse(S("bytes=1000-"), 1000, &a, &b), LH_RANGE_UNSATISFIABLE);
    assert_int_equal(lh_range_parse(S("bytes=2000-3000"), 1000, &a, &b), LH_RANGE_UNSATISFIABLE);
    assert_int_equal(lh_range_parse(S("bytes=-0"), 1000, &a, &b), LH_RANGE_UNSATISFIABLE);
    assert_int_equal(lh_range_parse(S("bytes=0-"), 0, &a, &b), LH_RANGE_UNSATISFIABLE);
}

static void test_range_ignored(void **state)
{
    int64_t a, b;
    static const char *ignored[] = {"bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=",
                                    "bytes=a-b", "bytes=+1-2", "bytes=1 -2", "bytes=--1",
                                    "bytes=99999999999999999999-", ""};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (lh_range_parse(ignored[i], strlen(ignored[i]), 1000, &a, &b) != LH_RANGE_NONE)
            fail_msg("'%s' was not ignored", ignored[i]);
}

static void test_if_range(void **state)
{
    assert_true(lh_if_range_ok(S("\"abc\""), "\"abc\"", T));
    assert_false(lh_if_range_ok(S("\"abd\""), "\"abc\"", T));
    assert_false(lh_if_range_ok(S("W/\"abc\""), "\"abc\"", T)); /* weak never matches */
    assert_true(lh_if_range_ok(S("Sun, 06 Nov 1994 08:49:37 GMT"), "\"abc\"", T));
    assert_false(lh_if_range_ok(S("Mon, 07 Nov 1994 08:49:37 GMT"), "\"abc\"", T));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_format),   cmocka_unit_test(test_date_parse),
        cmocka_unit_test(test_date_roundtrip), cmocka_unit_test(test_etag),
        cmocka_unit_test(test_etag_match),    cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_range),         cmocka_unit_test(test_range_unsatisfiable),
        cmocka_unit_test(test_range_ignored), cmocka_unit_test(test_if_range),
    };
    return cmocka_run_group_tests_name("cond", tests, NULL, NULL);
}
