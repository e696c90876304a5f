/* Unit tests for path.c: decoding, normalisation and the traversal cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "path.h"

static int norm(const char *in, char *out)
{
    return lh_path_normalize(in, strlen(in), out, 256);
}

static const struct {
    const char *in, *out;
} good[] = {
    {"/", "/"},
    {"/a/b", "/a/b"},
    {"/a//b", "/a/b"},
    {"/a/./b", "/a/b"},
    {"/a/../b", "/b"},
    {"/a/b/", "/a/b/"},
    {"/a/b/..", "/a/"},
    {"/a/b/.", "/a/b/"},
    {"/.", "/"},
    {"/a/..", "/"},
    {"/%61%62c", "/abc"},
    {"/a%20b", "/a b"},
    {"/%252e%252e/x", "/%2e%2e/x"}, /* decoded once: a literal, harmless name */
    {"/caf\xc3\xa9", "/caf\xc3\xa9"},
    {"/a/%2e/b", "/a/b"},
    {"/a/%2e%2e/b", "/b"},
    {"/...", "/..."},
};

static void test_good(void **state)
{
    char out[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int st = norm(good[i].in, out);
        if (st != 0 || strcmp(out, good[i].out) != 0)
            fail_msg("%s: status %d, got '%s', want '%s'", good[i].in, st, out, good[i].out);
    }
}

static const struct {
    const char *in;
    int status;
} bad[] = {
    {"/../x", 403},
    {"/a/../../x", 403},
    {"/..", 403},
    {"/%2e%2e/x", 403},
    {"/%2E%2e", 403},
    {"/%2E%2e%2Fx", 404},     /* encoded slash */
    {"/..%2fsecret", 404},
    {"/a%2Fb", 404},
    {"/a%5cb", 404},          /* encoded backslash */
    {"/..%5csecret", 404},
    {"/a\\b", 404},           /* raw backslash */
    {"/..\\secret", 404},
    {"/a%00b", 404},          /* NUL */
    {"/index.html%00.txt", 404},
    {"/%zz", 400},
    {"/%4", 400},
    {"/%", 400},
    {"a/b", 400},
    {"", 400},
};

static void test_bad(void **state)
{
    char out[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = norm(bad[i].in, out);
        if (st != bad[i].status)
            fail_msg("%s: got %d, want %d", bad[i].in, st, bad[i].status);
    }
}

static void test_out_too_small(void **state)
{
    char out[4];
    assert_int_equal(lh_path_normalize("/abcdef", 7, out, sizeof out), 414);
}

static void test_split(void **state)
{
    size_t plen, qlen;
    const char *q;
    lh_path_split("/a/b?x=1&y", 10, &plen, &q, &qlen);
    assert_int_equal(plen, 4);
    assert_int_equal(qlen, 5);
    assert_memory_equal(q, "x=1&y", 5);
    lh_path_split("/a", 2, &plen, &q, &qlen);
    assert_int_equal(plen, 2);
    assert_null(q);
    lh_path_split("/?", 2, &plen, &q, &qlen);
    assert_int_equal(plen, 1);
    assert_non_null(q);
    assert_int_equal(qlen, 0);
}

static void test_dotfiles(void **state)
{
    assert_true(lh_path_has_dotfile("/.env"));
    assert_true(lh_path_has_dotfile("/a/.git/config"));
    assert_true(lh_path_has_dotfile("/a/.hidden/"));
    assert_false(lh_path_has_dotfile("/a.b/c"));
    assert_false(lh_path_has_dotfile("/"));
    assert_false(lh_path_has_dotfile("/index.html"));
}

static void test_query_decode(void **state)
{
    char out[32];
    assert_int_equal(lh_query_decode("a+b%21%zz%4", 11, out, sizeof out), 9);
    assert_string_equal(out, "a b!%zz%4");
    assert_int_equal(lh_query_decode("abcdef", 6, out, 4), 3);
    assert_string_equal(out, "abc");
}

static void test_html_escape(void **state)
{
    char out[64];
    assert_int_equal(lh_html_escape("a<b>&\"'", out, sizeof out), 26);
    assert_string_equal(out, "a&lt;b&gt;&amp;&quot;&#39;");
    assert_int_equal(lh_html_escape("<<<<", out, 10), (size_t)-1);
}

static void test_url_escape(void **state)
{
    char out[64];
    assert_int_equal(lh_url_escape_path("/a b/c?#%", out, sizeof out), 17);
    assert_string_equal(out, "/a%20b/c%3F%23%25");
    assert_int_equal(lh_url_escape_path("    ", out, 8), (size_t)-1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),         cmocka_unit_test(test_bad),
        cmocka_unit_test(test_out_too_small), cmocka_unit_test(test_split),
        cmocka_unit_test(test_dotfiles),     cmocka_unit_test(test_query_decode),
        cmocka_unit_test(test_html_escape),  cmocka_unit_test(test_url_escape),
    };
    return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
