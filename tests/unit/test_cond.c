/* Unit tests for cond.c: HTTP dates, ETags, conditional requests, Range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cond.h"

#define S(x) x, strlen(x)
static const time_t T = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
#define DAY 86400

/* ---- HTTP dates ---------------------------------------------------------------- */

static void test_date_format(void **state)
{
    (void)state;
    char d[LH_HTTP_DATE_LEN + 1];
    static const struct {
        time_t t;
        const char *s;
    } cases[] = {
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
        {4102444799, "Thu, 31 Dec 2099 23:59:59 GMT"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(d, 'X', sizeof d);
        lh_http_date(cases[i].t, d);
        assert_string_equal(d, cases[i].s);
        assert_int_equal(strlen(d), LH_HTTP_DATE_LEN);
    }
}

/* a wild mtime is clamped to the years 0000-9999, never printed as garbage */
static void test_date_format_clamps(void **state)
{
    (void)state;
    char d[LH_HTTP_DATE_LEN + 1];
    lh_http_date((time_t)INT64_MAX, d);
    assert_string_equal(d, "Fri, 31 Dec 9999 23:59:59 GMT");
    lh_http_date((time_t)INT64_MIN, d);
    assert_string_equal(d, "Sat, 01 Jan 0000 00:00:00 GMT");
}

static void test_date_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        time_t t;
    } cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},  /* IMF-fixdate */
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777}, /* RFC 850 */
        {"Sun Nov  6 08:49:37 1994", 784111777},       /* asctime */
        {"Wed Nov 16 08:49:37 1994", 784111777 + 10 * DAY},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Thursday, 01-Jan-70 00:00:00 GMT", 0},       /* 70-99: 19xx */
        {"Saturday, 01-Jan-00 00:00:00 GMT", 946684800}, /* 00-69: 20xx */
        {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},  /* a leap day */
        {"Wed, 31 Dec 1969 23:59:59 GMT", -1},
        {"Mon, 01 Jan 1900 00:00:00 GMT", -2208988800LL}, /* a 4-digit year is literal */
        {"Tue, 14 Nov 2023 22:13:20 GMT", 1700000000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        time_t t = 12345;
        if (lh_http_date_parse(cases[i].s, strlen(cases[i].s), &t) != 0)
            fail_msg("refused '%s'", cases[i].s);
        if (t != cases[i].t)
            fail_msg("'%s': got %lld, want %lld", cases[i].s, (long long)t,
                     (long long)cases[i].t);
    }
}

static void test_date_parse_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "yesterday",
        "784111777",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMTx",
        "Sun, 06 Nov 1994 08:49:37 GM",
        " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 32 Oct 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT", /* November has 30 days */
        "Sun, 29 Feb 1900 08:49:37 GMT", /* 1900 was no leap year */
        "Sun, 30 Feb 2000 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",   /* RFC 850 wants the long day name */
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 6 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        time_t t = 12345;
        if (lh_http_date_parse(bad[i], strlen(bad[i]), &t) == 0)
            fail_msg("accepted '%s'", bad[i]);
        if (t != 12345)
            fail_msg("'%s': *t written on failure", bad[i]);
    }
}

static void test_date_parse_uses_len(void **state)
{
    (void)state;
    time_t t;
    const char *s = "Sun, 06 Nov 1994 08:49:37 GMT, and more";
    assert_int_equal(lh_http_date_parse(s, LH_HTTP_DATE_LEN, &t), 0);
    assert_int_equal(t, T);
    assert_int_equal(lh_http_date_parse(s, LH_HTTP_DATE_LEN - 1, &t), -1);
    assert_int_equal(lh_http_date_parse(s, LH_HTTP_DATE_LEN + 1, &t), -1);
}

static void test_date_roundtrip(void **state)
{
    (void)state;
    char d[LH_HTTP_DATE_LEN + 1];
    for (time_t t = -3000000000LL; t < 5000000000LL; t += 86399 * 37 + 13) {
        time_t back;
        lh_http_date(t, d);
        assert_int_equal(lh_http_date_parse(d, strlen(d), &back), 0);
        assert_int_equal(back, t);
    }
}

/* ---- entity tags ----------------------------------------------------------------- */

static void test_etag(void **state)
{
    (void)state;
    char e[48];
    /* "<mtime_sec hex>.<mtime_nsec hex>-<size hex>" */
    assert_int_equal(lh_etag(615, T, 0, e), strlen("\"2ebc98a1.0-267\""));
    assert_string_equal(e, "\"2ebc98a1.0-267\"");
    assert_int_equal(lh_etag(0, 0, 0, e), 7);
    assert_string_equal(e, "\"0.0-0\"");
    lh_etag(1, 0x5f1c2b3a, 0x1d2e3f, e);
    assert_string_equal(e, "\"5f1c2b3a.1d2e3f-1\"");
    char e2[48];
    lh_etag(616, T, 0, e2); /* another size */
    assert_string_equal(e2, "\"2ebc98a1.0-268\"");
    lh_etag(615, T + 1, 0, e2); /* another second */
    assert_string_equal(e2, "\"2ebc98a2.0-267\"");
    lh_etag(615, T, 999999999, e2); /* same second, same size, another write */
    assert_string_equal(e2, "\"2ebc98a1.3b9ac9ff-267\"");
}

static void test_etag_extremes_fit(void **state)
{
    (void)state;
    char e[48];
    memset(e, 'X', sizeof e);
    size_t n = lh_etag(INT64_MAX, -1, 999999999, e);
    assert_string_equal(e, "\"ffffffffffffffff.3b9ac9ff-7fffffffffffffff\"");
    assert_int_equal(n, strlen(e));
    assert_true(n < sizeof e);
    /* a nanosecond count out of range is taken as 0, so the tag still fits */
    n = lh_etag(INT64_MAX, -1, -1, e);
    assert_string_equal(e, "\"ffffffffffffffff.0-7fffffffffffffff\"");
    assert_int_equal(n, strlen(e));
    n = lh_etag(1, 1, 1000000000, e);
    assert_string_equal(e, "\"1.0-1\"");
}

static void test_etag_match(void **state)
{
    (void)state;
    const char *e = "\"abc-1\"";
    assert_true(lh_etag_match(S("\"abc-1\""), e));
    assert_true(lh_etag_match(S("W/\"abc-1\""), e)); /* weak comparison */
    assert_true(lh_etag_match(S("\"x\", \"abc-1\""), e));
    assert_true(lh_etag_match(S("\"x\",\"abc-1\""), e));
    assert_true(lh_etag_match(S("\"x\" ,\t W/\"abc-1\" , \"y\""), e));
    assert_true(lh_etag_match(S(" \"abc-1\" "), e));
    assert_true(lh_etag_match(S("*"), e));
    assert_false(lh_etag_match(S("\"abc-2\""), e));
    assert_false(lh_etag_match(S("\"abc-1"), e)); /* unterminated */
    assert_false(lh_etag_match(S("abc-1"), e));   /* unquoted */
    assert_false(lh_etag_match(S("\"ABC-1\""), e)); /* case matters */
    assert_false(lh_etag_match(S("\"abc-\""), e));
    assert_false(lh_etag_match(S("\"x\", \"y\""), e));
    assert_false(lh_etag_match(S(""), e));
    assert_false(lh_etag_match(S(", ,"), e));
    /* the length is honoured */
    assert_false(lh_etag_match("\"x\", \"abc-1\"", 5, e));
}

static void test_not_modified(void **state)
{
    (void)state;
    const char *e = "\"abc\"";
    assert_true(lh_not_modified(S("\"abc\""), NULL, 0, e, T));
    assert_true(lh_not_modified(S("W/\"abc\""), NULL, 0, e, T));
    assert_true(lh_not_modified(S("*"), NULL, 0, e, T));
    assert_false(lh_not_modified(S("\"old\""), NULL, 0, e, T));
    /* If-None-Match decides alone: a matching date does not rescue a stale tag ... */
    assert_false(lh_not_modified(S("\"old\""), S("Sun, 06 Nov 1994 08:49:37 GMT"), e, T));
    /* ... and an old date does not spoil a matching one */
    assert_true(lh_not_modified(S("\"abc\""), S("Sat, 05 Nov 1994 08:49:37 GMT"), e, T));
    /* If-Modified-Since: 304 when mtime <= the date */
    assert_true(lh_not_modified(NULL, 0, S("Sun, 06 Nov 1994 08:49:37 GMT"), e, T));
    assert_true(lh_not_modified(NULL, 0, S("Mon, 07 Nov 1994 08:49:37 GMT"), e, T));
    assert_true(lh_not_modified(NULL, 0, S("Sunday, 06-Nov-94 08:49:37 GMT"), e, T));
    assert_false(lh_not_modified(NULL, 0, S("Sun, 06 Nov 1994 08:49:36 GMT"), e, T));
    assert_false(lh_not_modified(NULL, 0, S("Sat, 05 Nov 1994 08:49:37 GMT"), e, T));
    assert_false(lh_not_modified(NULL, 0, S("garbage"), e, T));
    assert_false(lh_not_modified(NULL, 0, NULL, 0, e, T));
}

/* ---- Range ------------------------------------------------------------------------ */

static void expect_range(const char *v, int64_t size, int64_t first, int64_t last)
{
    int64_t a = -7, b = -7;
    enum lh_range_result r = lh_range_parse(v, strlen(v), size, &a, &b);
    if (r != LH_RANGE_OK || a != first || b != last)
        fail_msg("'%s' size %lld: got %d [%lld, %lld], want OK [%lld, %lld]", v,
                 (long long)size, r, (long long)a, (long long)b, (long long)first,
                 (long long)last);
}

static void test_range(void **state)
{
    (void)state;
    expect_range("bytes=0-99", 1000, 0, 99);
    expect_range("bytes=100-", 1000, 100, 999);
    expect_range("bytes=-50", 1000, 950, 999);
    expect_range("bytes=-1000", 1000, 0, 999);
    expect_range("bytes=-5000", 1000, 0, 999); /* a suffix larger than the file */
    expect_range("bytes=990-2000", 1000, 990, 999); /* b clamped */
    expect_range("bytes=0-999", 1000, 0, 999);
    expect_range("bytes=0-1000", 1000, 0, 999);
    expect_range("bytes=999-999", 1000, 999, 999);
    expect_range("bytes=5-5", 1000, 5, 5);
    expect_range("bytes=0-0", 1, 0, 0);
    expect_range("bytes=-1", 1, 0, 0);
    expect_range("bytes=007-010", 1000, 7, 10); /* leading zeros are digits too */
    expect_range("Bytes=0-1", 1000, 0, 1);      /* the unit is case-insensitive */
    expect_range("bytes= 0-1 ", 1000, 0, 1);    /* optional whitespace around */
    expect_range("bytes=0-9223372036854775807", 1000, 0, 999); /* INT64_MAX still fits */
    expect_range("bytes=10-", INT64_MAX, 10, INT64_MAX - 1);
}

static void test_range_unsatisfiable(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int64_t size;
    } cases[] = {
        {"bytes=1000-", 1000},      {"bytes=1000-1000", 1000}, {"bytes=2000-3000", 1000},
        {"bytes=-0", 1000},         {"bytes=0-", 0},           {"bytes=0-0", 0},
        {"bytes=-5", 0},            {"bytes=-0", 0},
        {"bytes=9223372036854775807-", 1000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t a, b;
        enum lh_range_result r =
            lh_range_parse(cases[i].v, strlen(cases[i].v), cases[i].size, &a, &b);
        if (r != LH_RANGE_UNSATISFIABLE)
            fail_msg("'%s' size %lld: got %d, want UNSATISFIABLE", cases[i].v,
                     (long long)cases[i].size, r);
    }
}

static void test_range_ignored(void **state)
{
    (void)state;
    static const char *ignored[] = {
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=5-2",          /* a > b: invalid */
        "bytes=2000-1000",    /* invalid even past the end */
        "bytes=0-1,5-6",      /* several ranges */
        "bytes=0-1, 5-6",
        "bytes=0-1,",
        "bytes=,0-1",
        "items=0-1",          /* another unit */
        "bytesx=0-1",
        "byte=0-1",
        "bytes 0-1",
        "bytes=a-b",
        "bytes=0-b",
        "bytes=+1-2",         /* digits only */
        "bytes=1-+2",
        "bytes=-+5",
        "bytes=1 -2",         /* no whitespace inside */
        "bytes=1- 2",
        "bytes=1-2-3",
        "bytes=--1",
        "bytes=0x10-20",
        "bytes=99999999999999999999-",  /* overflow */
        "bytes=0-99999999999999999999",
        "bytes=-99999999999999999999",
        "bytes=9223372036854775808-",   /* INT64_MAX + 1 */
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        int64_t a, b;
        if (lh_range_parse(ignored[i], strlen(ignored[i]), 1000, &a, &b) != LH_RANGE_NONE)
            fail_msg("'%s' was not ignored", ignored[i]);
    }
}

static void test_range_uses_len(void **state)
{
    (void)state;
    int64_t a, b;
    /* a header value that is not NUL-terminated where it ends */
    assert_int_equal(lh_range_parse("bytes=0-1,5-6", 9, 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 0 && b == 1);
    assert_int_equal(lh_range_parse("bytes=0-99", 9, 1000, &a, &b), LH_RANGE_OK);
    assert_true(a == 0 && b == 9);
}

/* ---- If-Range --------------------------------------------------------------------- */

static void test_if_range(void **state)
{
    (void)state;
    const char *e = "\"abc\"";
    assert_true(lh_if_range_ok(S("\"abc\""), e, T));
    assert_false(lh_if_range_ok(S("\"abd\""), e, T));
    assert_false(lh_if_range_ok(S("W/\"abc\""), e, T)); /* weak never matches */
    assert_false(lh_if_range_ok(S("*"), e, T));
    assert_false(lh_if_range_ok(S("\"abc\", \"x\""), e, T)); /* one tag, not a list */
    assert_false(lh_if_range_ok(S("\"x\", \"abc\""), e, T));
    assert_false(lh_if_range_ok(S("\"abc"), e, T));
    assert_false(lh_if_range_ok(S(""), e, T));
    assert_false(lh_if_range_ok(S("garbage"), e, T));
    /* a date must equal mtime exactly */
    assert_true(lh_if_range_ok(S("Sun, 06 Nov 1994 08:49:37 GMT"), e, T));
    assert_true(lh_if_range_ok(S("Sun Nov  6 08:49:37 1994"), e, T));
    assert_false(lh_if_range_ok(S("Mon, 07 Nov 1994 08:49:37 GMT"), e, T));
    assert_false(lh_if_range_ok(S("Sun, 06 Nov 1994 08:49:36 GMT"), e, T));
    /* dates starting with 'W' are dates, not weak tags */
    assert_true(lh_if_range_ok(S("Wed, 09 Nov 1994 08:49:37 GMT"), e, T + 3 * DAY));
    assert_true(lh_if_range_ok(S("Wednesday, 09-Nov-94 08:49:37 GMT"), e, T + 3 * DAY));
}

int main(void)
{
    /* a local zone far from UTC, so a local-time function in place of gmtime_r or
     * timegm shows up */
    setenv("TZ", "EST5EDT", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_date_format_clamps),
        cmocka_unit_test(test_date_parse),
        cmocka_unit_test(test_date_parse_rejects),
        cmocka_unit_test(test_date_parse_uses_len),
        cmocka_unit_test(test_date_roundtrip),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_etag_extremes_fit),
        cmocka_unit_test(test_etag_match),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_range_unsatisfiable),
        cmocka_unit_test(test_range_ignored),
        cmocka_unit_test(test_range_uses_len),
        cmocka_unit_test(test_if_range),
    };
    return cmocka_run_group_tests_name("cond", tests, NULL, NULL);
}
