/* Unit tests for live.h: where the live-reload tag goes in a page, which paths are
 * the server's own, what is HTML, and what a saved file means for the open pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"

static char *inject(const char *html)
{
    size_t n = 0;
    char *out = lh_live_inject(html, strlen(html), &n);
    if (!out)
        return NULL;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, out, n);
    s[n] = '\0';
    free(out);
    return s;
}

static void expect_injected(const char *html, const char *want)
{
    char *got = inject(html);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_inject(void **state)
{
    const char *t = LH_LIVE_TAG;
    char want[512];
    snprintf(want, sizeof want, "<html><body>x%s</body></html>", t);
    expect_injected("<html><body>x</body></html>", want);
    /* any case; the last </body> (one inside a comment or script text comes before) */
    snprintf(want, sizeof want, "<BODY><!-- </body> -->%s</BODY >", t);
    expect_injected("<BODY><!-- </body> --></BODY >", want);
    /* at the very start and the very end */
    snprintf(want, sizeof want, "%s</body>", t);
    expect_injected("</body>", want);
    snprintf(want, sizeof want, "a%s</body", t);
    expect_injected("a</body", want);
}

static void test_no_body_end_is_left_alone(void **state)
{
    size_t n = 7;
    assert_null(lh_live_inject("<p>fragment</p>", 15, &n));
    assert_null(lh_live_inject("", 0, &n));
    assert_null(lh_live_inject("</bod", 5, &n));
    assert_null(lh_live_inject("<body>", 6, &n));
    assert_int_equal(n, 7); /* untouched */
    /* bytes after a NUL still count: the body is bytes, not a C string */
    static const char nul[] = "a\0b</body>";
    char *out = lh_live_inject(nul, sizeof nul - 1, &n);
    assert_non_null(out);
    assert_int_equal(n, sizeof nul - 1 + strlen(LH_LIVE_TAG));
    assert_memory_equal(out, "a\0b<script", 10);
    free(out);
}

/* A streamed page's piece: where the tag would go, or the length (none whole). */
static void test_tag_at(void **state)
{
    assert_int_equal(lh_live_tag_at("<body>x</BODY></html>", 21), 7);
    assert_int_equal(lh_live_tag_at("</body><!-- </body> -->", 23), 12);
    assert_int_equal(lh_live_tag_at("</body>", 7), 0);
    assert_int_equal(lh_live_tag_at("s</bo", 5), 5);
    assert_int_equal(lh_live_tag_at("dy></html>", 10), 10);
    assert_int_equal(lh_live_tag_at("", 0), 0);
}

/* Pieces fed one after another; which of them ends a "</body" begun earlier. */
static void expect_seams(const char *const *pieces, size_t n, const char *want)
{
    struct lh_live_tail t = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lh_live_tail_feed(&t, pieces[i], strlen(pieces[i])), want[i] == '1');
}

static void test_tail_sees_a_split_body_end(void **state)
{
    expect_seams((const char *const[]){"<html><body>s</bo", "dy></html>"}, 2, "01");
    expect_seams((const char *const[]){"<", "/BODY"}, 2, "01");
    expect_seams((const char *const[]){"x</b", "o", "", "dy>"}, 4, "0001"); /* short pieces */
    expect_seams((const char *const[]){"a</body>", "b"}, 2, "00");        /* whole: not split */
    expect_seams((const char *const[]){"</bo", "xdy>", "</body"}, 3, "000");
    expect_seams((const char *const[]){"long text here </", "p></body>"}, 2, "00");
}

static void test_paths(void **state)
{
    static const struct {
        const char *target;
        enum lh_live_path want;
    } cases[] = {
        {"/__luahttpd/live.js", LH_LIVE_SCRIPT},
        {"/__luahttpd/live.js?v=2", LH_LIVE_SCRIPT},
        {"/__luahttpd/events", LH_LIVE_EVENTS},
        {"/__luahttpd/events?x", LH_LIVE_EVENTS},
        {"/__luahttpd/", LH_LIVE_OTHER},
        {"/__luahttpd/live.jsx", LH_LIVE_OTHER},
        {"/__luahttpd/events/", LH_LIVE_OTHER},
        {"/__luahttpd", LH_LIVE_NONE},
        {"/__LUAHTTPD/events", LH_LIVE_NONE},
        {"/", LH_LIVE_NONE},
        {"/x/__luahttpd/events", LH_LIVE_NONE},
        {"", LH_LIVE_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (lh_live_path_of(cases[i].target, strlen(cases[i].target)) != cases[i].want)
            fail_msg("%s", cases[i].target);
}

static void test_is_html(void **state)
{
    static const char *const yes[] = {"text/html", "text/html; charset=utf-8", "TEXT/HTML",
                                      " text/html;charset=x", "text/html ;q"};
    static const char *const no[] = {"text/htmlx", "text/plain", "application/xhtml+xml",
                                     "", "text/htm", "html"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!lh_live_is_html(yes[i], strlen(yes[i])))
            fail_msg("'%s' is HTML", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (lh_live_is_html(no[i], strlen(no[i])))
            fail_msg("'%s' is not HTML", no[i]);
}

static void test_change_of(void **state)
{
    static const struct {
        const char *name;
        enum lh_live_change want;
    } cases[] = {
        {"style.css", LH_LIVE_CSS},  {"A.CSS", LH_LIVE_CSS},
        {"index.html", LH_LIVE_RELOAD}, {"app.js", LH_LIVE_RELOAD},
        {"logo.png", LH_LIVE_RELOAD}, {"css", LH_LIVE_RELOAD},
        {".index.html.swp", LH_LIVE_IGNORE}, {"4913", LH_LIVE_IGNORE},
        {"index.html~", LH_LIVE_IGNORE}, {"#index.html#", LH_LIVE_IGNORE},
        {".hidden", LH_LIVE_IGNORE}, {"app.db-journal", LH_LIVE_IGNORE},
        {"app.db-wal", LH_LIVE_IGNORE}, {"app.db-shm", LH_LIVE_IGNORE},
        {"big.zip.part", LH_LIVE_IGNORE}, {"", LH_LIVE_IGNORE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (lh_live_change_of(cases[i].name) != cases[i].want)
            fail_msg("%s", cases[i].name);
}

static void test_script_names_its_paths(void **state)
{
    assert_non_null(strstr(lh_live_js, "/__luahttpd/events"));
    assert_non_null(strstr(lh_live_js, "__luahttpd_overlay"));
    assert_non_null(strstr(LH_LIVE_TAG, "/__luahttpd/live.js"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inject),
        cmocka_unit_test(test_no_body_end_is_left_alone),
        cmocka_unit_test(test_tag_at),
        cmocka_unit_test(test_tail_sees_a_split_body_end),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_is_html),
        cmocka_unit_test(test_change_of),
        cmocka_unit_test(test_script_names_its_paths),
    };
    return cmocka_run_group_tests_name("live", tests, NULL, NULL);
}
