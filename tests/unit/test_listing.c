/* Unit tests for listing.c: sizes, times, order and the page of a folder listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listing.h"

/* ---- sizes and times --------------------------------------------------------- */

static const struct {
    int64_t bytes;
    const char *text;
} sizes[] = {
    {0, "0 B"},
    {1, "1 B"},
    {1023, "1023 B"},
    {1024, "1.0 KiB"},
    {1075, "1.0 KiB"},          /* 1.0498 */
    {1076, "1.1 KiB"},          /* 1.0508: rounded half up */
    {1536, "1.5 KiB"},
    {10239, "10.0 KiB"},
    {1048064, "1023.5 KiB"},
    {1048525, "1.0 MiB"},       /* 1023.95 KiB would round to 1024.0: the next unit */
    {1048576, "1.0 MiB"},
    {1572864, "1.5 MiB"},
    {1073741823, "1.0 GiB"},
    {1073741824, "1.0 GiB"},
    {5368709120, "5.0 GiB"},
    {1099511627776, "1024.0 GiB"}, /* GiB is the largest unit */
    {INT64_MAX, "8589934592.0 GiB"},
    {-5, "0 B"},
};

static void test_size(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char out[LH_LISTING_SIZE_LEN];
        lh_listing_size(sizes[i].bytes, out);
        if (strcmp(out, sizes[i].text) != 0)
            fail_msg("%lld: got '%s', want '%s'", (long long)sizes[i].bytes, out,
                     sizes[i].text);
    }
}

static void test_time(void **state)
{
    (void)state;
    char human[LH_LISTING_TIME_LEN], iso[LH_LISTING_TIME_LEN];
    lh_listing_time(1709993133, human, iso);
    assert_string_equal(human, "2024-03-09 14:05");
    assert_string_equal(iso, "2024-03-09T14:05:33Z");
    lh_listing_time(951868799, human, iso); /* a leap day, the last second */
    assert_string_equal(human, "2000-02-29 23:59");
    assert_string_equal(iso, "2000-02-29T23:59:59Z");
    lh_listing_time(0, human, iso);
    assert_string_equal(iso, "1970-01-01T00:00:00Z");
}

/* ---- order ----------------------------------------------------------------- */

static void test_sort(void **state)
{
    (void)state;
    struct lh_listing_entry v[] = {
        {.name = "b.txt"}, {.name = "Zeta", .dir = true}, {.name = "README"},
        {.name = "alpha", .dir = true}, {.name = "readme"}, {.name = "A.txt"},
        {.name = "_x"}, {.name = "caf\xc3\xa9"}, {.name = "cafe"}, {.name = "beta", .dir = true},
    };
    const char *want[] = {"alpha", "beta", "Zeta", "_x", "A.txt", "b.txt", "cafe",
                          "caf\xc3\xa9", "README", "readme"};
    size_t n = sizeof v / sizeof v[0];
    lh_listing_sort(v, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, want[i]) != 0)
            fail_msg("position %zu: got '%s', want '%s'", i, v[i].name, want[i]);
    lh_listing_sort(NULL, 0);
}

/* ---- the page -------------------------------------------------------------- */

static char *page(const char *path, const struct lh_listing_entry *v, size_t n)
{
    size_t len = 0;
    char *p = lh_listing_page(path, v, n, &len);
    assert_non_null(p);
    assert_int_equal(strlen(p), len);
    return p;
}

static void test_page_head(void **state)
{
    (void)state;
    char *p = page("/", NULL, 0);
    assert_true(strlen(p) < 2048); /* the fixed markup stays small */
    assert_non_null(strstr(p, "<!DOCTYPE html>"));
    assert_non_null(strstr(p, "<meta charset=\"utf-8\">"));
    assert_non_null(strstr(p, "<meta name=\"viewport\" "
                              "content=\"width=device-width, initial-scale=1\">"));
    assert_non_null(strstr(p, "<meta name=\"color-scheme\" content=\"light dark\">"));
    assert_non_null(strstr(p, "prefers-color-scheme:dark"));
    assert_non_null(strstr(p, "<title>Index of /</title>"));
    assert_non_null(strstr(p, "<h1>Index of /</h1>"));
    assert_null(strstr(p, "../")); /* nothing above the docroot */
    free(p);

    p = page("/a b/<x>/", NULL, 0);
    assert_non_null(strstr(p, "<title>Index of /a b/&lt;x&gt;/</title>"));
    assert_non_null(strstr(p, "<h1>Index of /a b/&lt;x&gt;/</h1>"));
    assert_non_null(strstr(p, "<a href=\"../\">../</a>"));
    free(p);
}

static void test_page_rows(void **state)
{
    (void)state;
    struct lh_listing_entry v[] = {
        {.name = "sub", .dir = true, .size = 4096, .mtime = 0},
        {.name = "<script>&\"' x\xc3\xa9\xff", .size = 1536, .mtime = 1709993133},
    };
    char *p = page("/d/", v, 2);
    const char *dir = strstr(p, "<tr><td><a href=\"sub/\">sub/</a></td>"
                                "<td class=\"r\">\xe2\x80\x94</td><td><time "
                                "datetime=\"1970-01-01T00:00:00Z\">1970-01-01 00:00</time>"
                                "</td></tr>\n");
    const char *file = strstr(p, "<tr><td><a href=\"%3Cscript%3E%26%22%27%20x%C3%A9%FF\">"
                                 "&lt;script&gt;&amp;&quot;&#39; x\xc3\xa9\xff</a></td>"
                                 "<td class=\"r\">1.5 KiB</td><td><time "
                                 "datetime=\"2024-03-09T14:05:33Z\">2024-03-09 14:05</time>"
                                 "</td></tr>\n");
    assert_non_null(dir);
    assert_non_null(file);
    assert_true(strstr(p, "../") < dir && dir < file); /* in the order given */
    assert_null(strstr(p, "<script>"));
    free(p);
}

/* Long names and paths are written whole: nothing is cut at a buffer's size. */
static void test_page_long_names(void **state)
{
    (void)state;
    size_t n = 20000;
    char *name = malloc(n + 1), *path = malloc(n + 3);
    assert_non_null(name);
    assert_non_null(path);
    memset(name, '"', n);
    name[n] = '\0';
    snprintf(path, n + 3, "/%s/", name);
    struct lh_listing_entry e = {.name = name, .size = 1};
    char *p = page(path, &e, 1);
    size_t quots = 0, encoded = 0;
    for (const char *q = p; (q = strstr(q, "&quot;")); q++)
        quots++;
    for (const char *q = p; (q = strstr(q, "%22")); q++)
        encoded++;
    assert_int_equal(quots, 3 * n); /* title, h1, link text */
    assert_int_equal(encoded, n);
    free(p);
    free(path);
    free(name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_page_head),
        cmocka_unit_test(test_page_rows),
        cmocka_unit_test(test_page_long_names),
    };
    return cmocka_run_group_tests_name("listing", tests, NULL, NULL);
}
