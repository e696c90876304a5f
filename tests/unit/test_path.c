/* Unit tests for path.c: decoding, normalisation and the traversal cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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
    {"//", "/"},
    {"/a/b", "/a/b"},
    {"/a//b", "/a/b"},
    {"/a///b//", "/a/b/"},
    {"/a/./b", "/a/b"},
    {"/./a", "/a"},
    {"/a/../b", "/b"},
    {"/a/b/../../c", "/c"},
    {"/a/./../b", "/b"},
    {"/a/b/", "/a/b/"},
    {"/a/b/..", "/a/"},
    {"/a/b/.", "/a/b/"},
    {"/a/..", "/"},
    {"/a/../", "/"},
    {"/.", "/"},
    {"/./", "/"},
    {"/%2e", "/"},
    {"/a/%2e/b", "/a/b"},
    {"/a/%2e%2e/b", "/b"}, /* decoded, then resolved like ".." */
    {"/a/.%2E/b", "/b"},
    {"/%61%62c", "/abc"},
    {"/a%20b", "/a b"},
    {"/a%3fb", "/a?b"},
    {"/%252e%252e/", "/%2e%2e/"}, /* decoded once: a literal, harmless name */
    {"/%252e%252e/x", "/%2e%2e/x"},
    {"/%252fetc", "/%2fetc"},
    {"/caf\xc3\xa9/%E2%82%AC", "/caf\xc3\xa9/\xe2\x82\xac"}, /* UTF-8 passes through */
    {"/...", "/..."},
    {"/..a/a..", "/..a/a.."},
    {"/.a", "/.a"},
    {"/a.b/c.d", "/a.b/c.d"},
};

static void test_good(void **state)
{
    (void)state;
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
    {"/..", 403},
    {"/../", 403},
    {"/../x", 403},
    {"/./../x", 403},
    {"/a/../../x", 403},
    {"/a/b/../../..", 403},
    {"//../x", 403},
    {"/%2e%2e/x", 403},
    {"/%2E%2e", 403},
    {"/.%2e/x", 403},
    {"/%2E%2e%2Fx", 404}, /* encoded slash */
    {"/..%2fsecret", 404},
    {"/a%2Fb", 404},
    {"/a%2f", 404},
    {"/a%5cb", 404}, /* encoded backslash */
    {"/a%5Cb", 404},
    {"/..%5csecret", 404},
    {"/a\\b", 404}, /* raw backslash */
    {"/..\\secret", 404},
    {"/a%00b", 404}, /* NUL */
    {"/index.html%00.txt", 404},
    {"/%zz", 400},
    {"/%4", 400},
    {"/%4g", 400},
    {"/%g4", 400},
    {"/%", 400},
    {"/a%", 400},
    {"/%%41", 400},
    {"/../%zz", 400}, /* decoding comes first, so a bad escape wins over a climb */
    {"a/b", 400},
    {"./a", 400},
    {"%2fa", 400},
    {"", 400},
};

static void test_bad(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(out, "junk");
        int st = norm(bad[i].in, out);
        if (st != bad[i].status)
            fail_msg("%s: got %d, want %d", bad[i].in, st, bad[i].status);
        if (out[0] != '\0')
            fail_msg("%s: refused but left '%s' in out", bad[i].in, out);
    }
}

static void test_raw_nul(void **state)
{
    (void)state;
    char out[16];
    /* a NUL inside the given length, as a parser that kept it would pass it */
    assert_int_equal(lh_path_normalize("/a\0b", 4, out, sizeof out), 404);
    assert_int_equal(lh_path_normalize("/a\0", 3, out, sizeof out), 404);
    /* the length is honoured: bytes after it are not looked at */
    assert_int_equal(lh_path_normalize("/ab/../../x", 3, out, sizeof out), 0);
    assert_string_equal(out, "/ab");
}

static void test_out_too_small(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(lh_path_normalize("/abcdef", 7, out, 4), 414);
    assert_int_equal(lh_path_normalize("/abcdef", 7, out, 8), 414); /* len + 1 */
    assert_int_equal(lh_path_normalize("/abcdef", 7, out, 9), 0);   /* len + 2 */
    assert_string_equal(out, "/abcdef");
    assert_int_equal(lh_path_normalize("/", 1, out, 2), 414);
    assert_int_equal(lh_path_normalize("/", 1, out, 3), 0);
    assert_string_equal(out, "/");
    strcpy(out, "junk");
    assert_int_equal(lh_path_normalize("/abcdef", 7, out, 4), 414);
    assert_string_equal(out, ""); /* a refusal leaves no path behind */
}

/* ---- a randomised check against a second, independent formulation ------------ */

/*
 * The rules written as directly as possible: decode everything first (unless the
 * input is decoded already, as for lh_path_resolve), then split at '/' and resolve
 * with a stack of segments.
 */
static int reference(const char *in, size_t len, char *out, bool decoding)
{
    char dec[64];
    size_t n = 0;
    if (len == 0 || in[0] != '/')
        return 400;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        if (decoding && in[i] == '%') {
            if (i + 2 >= len || !strchr("0123456789abcdefABCDEF", in[i + 1]) ||
                !strchr("0123456789abcdefABCDEF", in[i + 2]) || !in[i + 1] || !in[i + 2])
                return 400;
            char hx[3] = {in[i + 1], in[i + 2], 0};
            sscanf(hx, "%x", &v);
            if (v == '/')
                return 404;
            i += 2;
        } else {
            v = (unsigned char)in[i];
        }
        if (v == '\\' || v == 0)
            return 404;
        dec[n++] = (char)v;
    }
    dec[n] = '\0';

    const char *stack[32];
    size_t lens[32], depth = 0;
    bool trailing = false;
    const char *p = dec + 1;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t sl = e ? (size_t)(e - p) : strlen(p);
        bool dot = sl == 1 && p[0] == '.', dotdot = sl == 2 && p[0] == '.' && p[1] == '.';
        if (dotdot) {
            if (depth == 0)
                return 403;
            depth--;
        } else if (sl > 0 && !dot) {
            stack[depth] = p;
            lens[depth++] = sl;
        }
        if (!e) {
            trailing = sl == 0 || dot || dotdot;
            break;
        }
        p = e + 1;
    }
    char *o = out;
    *o++ = '/';
    for (size_t i = 0; i < depth; i++) {
        memcpy(o, stack[i], lens[i]);
        o += lens[i];
        if (i + 1 < depth || trailing)
            *o++ = '/';
    }
    *o = '\0';
    return 0;
}

static void test_random_against_reference(void **state)
{
    (void)state;
    static const char alphabet[] = "/./..%2eEfF5cC0a\\";
    uint32_t x = 2463534242u; /* xorshift32, fixed seed: the same cases every run */
    for (int iter = 0; iter < 300000; iter++) {
        char in[20], got[64], want[64];
        size_t len = 0, max;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        max = x % 16;
        if (x & 0x10000)
            in[len++] = '/';
        while (len < max) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            in[len++] = alphabet[x % (sizeof alphabet - 1)];
        }
        in[len] = '\0';
        int st = lh_path_normalize(in, len, got, sizeof got);
        int rst = reference(in, len, want, true);
        if (st != rst || (st == 0 && strcmp(got, want) != 0))
            fail_msg("'%s': got %d '%s', want %d '%s'", in, st, st ? "" : got, rst,
                     rst ? "" : want);
        if (st != 0)
            continue;
        /* whatever the input, an accepted path is clean */
        if (got[0] != '/' || strstr(got, "//") || strstr(got, "/./") ||
            strstr(got, "/../") || strchr(got, '\\'))
            fail_msg("'%s' gave unclean '%s'", in, got);
        size_t gl = strlen(got);
        if ((gl >= 2 && strcmp(got + gl - 2, "/.") == 0) ||
            (gl >= 3 && strcmp(got + gl - 3, "/..") == 0))
            fail_msg("'%s' gave unclean '%s'", in, got);
    }
}

/* ---- lh_path_resolve: rewrites, decoded already ------------------------------- */

static int resolve(const char *in, char *out)
{
    return lh_path_resolve(in, strlen(in), out, 256);
}

static const struct {
    const char *in, *out;
} resolve_good[] = {
    {"/", "/"},
    {"/public/home.html", "/public/home.html"},
    {"/x//y/./../z//w/..", "/x/z/"},
    {"//a/b/../c//f.txt", "/a/c/f.txt"},
    {"/a/b/", "/a/b/"},
    {"/a/b/.", "/a/b/"},
    {"/a/..", "/"},
    /* '%' is an ordinary byte: nothing is decoded a second time */
    {"/public/docs/100%.txt", "/public/docs/100%.txt"},
    {"/public/%2e%2e/private.txt", "/public/%2e%2e/private.txt"},
    {"/%2E%2e", "/%2E%2e"},
    {"/a%2fb", "/a%2fb"},
    {"/a%5cb", "/a%5cb"},
    {"/a%00b", "/a%00b"},
    {"/%", "/%"},
    {"/%zz/%4", "/%zz/%4"},
    {"/caf\xc3\xa9", "/caf\xc3\xa9"},
    {"/.env", "/.env"}, /* a dotfile is the static step's business, as for a request */
};

static const struct {
    const char *in;
    int status;
} resolve_bad[] = {
    {"/..", 403},
    {"/../x", 403},
    {"/public/../../private.txt", 403},
    {"//../x", 403},
    {"/../%zz", 403}, /* no decoding, so no 400 to win over the climb */
    {"/a\\b", 404},
    {"/..\\secret", 404},
    {"public", 400},
    {"", 400},
};

static void test_resolve(void **state)
{
    (void)state;
    char out[256];
    for (size_t i = 0; i < sizeof resolve_good / sizeof resolve_good[0]; i++) {
        int st = resolve(resolve_good[i].in, out);
        if (st != 0 || strcmp(out, resolve_good[i].out) != 0)
            fail_msg("%s: status %d, got '%s', want '%s'", resolve_good[i].in, st, out,
                     resolve_good[i].out);
    }
    for (size_t i = 0; i < sizeof resolve_bad / sizeof resolve_bad[0]; i++) {
        strcpy(out, "junk");
        int st = resolve(resolve_bad[i].in, out);
        if (st != resolve_bad[i].status)
            fail_msg("%s: got %d, want %d", resolve_bad[i].in, st, resolve_bad[i].status);
        if (out[0] != '\0')
            fail_msg("%s: refused but left '%s' in out", resolve_bad[i].in, out);
    }
}

static void test_resolve_nul_and_size(void **state)
{
    (void)state;
    char out[16];
    /* a Lua string may hold a NUL: refused like a decoded %00 */
    assert_int_equal(lh_path_resolve("/a\0b", 4, out, sizeof out), 404);
    assert_int_equal(lh_path_resolve("/a\0", 3, out, sizeof out), 404);
    assert_int_equal(lh_path_resolve("/ab/../../x", 3, out, sizeof out), 0);
    assert_string_equal(out, "/ab");
    assert_int_equal(lh_path_resolve("/abcdef", 7, out, 8), 414);
    assert_string_equal(out, "");
    assert_int_equal(lh_path_resolve("/abcdef", 7, out, 9), 0);
    assert_string_equal(out, "/abcdef");
}

/* lh_path_resolve against the reference without decoding; where there is nothing to
 * decode it must agree with lh_path_normalize, and what lh_path_normalize accepts it
 * must leave as it is. */
static void test_resolve_random(void **state)
{
    (void)state;
    static const char alphabet[] = "/./..%2eEfF5cC0a\\";
    uint32_t x = 88172645u; /* xorshift32, fixed seed */
    for (int iter = 0; iter < 300000; iter++) {
        char in[20], got[64], want[64], norm_out[64], again[64];
        size_t len = 0, max;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        max = x % 16;
        if (x & 0x10000)
            in[len++] = '/';
        while (len < max) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            in[len++] = alphabet[x % (sizeof alphabet - 1)];
        }
        in[len] = '\0';
        int st = lh_path_resolve(in, len, got, sizeof got);
        int rst = reference(in, len, want, false);
        if (st != rst || (st == 0 && strcmp(got, want) != 0))
            fail_msg("'%s': got %d '%s', want %d '%s'", in, st, st ? "" : got, rst,
                     rst ? "" : want);
        int nst = lh_path_normalize(in, len, norm_out, sizeof norm_out);
        if (!memchr(in, '%', len) && (nst != st || (st == 0 && strcmp(got, norm_out))))
            fail_msg("'%s': resolve %d '%s', normalize %d '%s'", in, st, got, nst, norm_out);
        if (nst == 0 && (lh_path_resolve(norm_out, strlen(norm_out), again, sizeof again) ||
                         strcmp(again, norm_out) != 0))
            fail_msg("'%s': normalised '%s' is not left as it is: '%s'", in, norm_out, again);
    }
}

/* ---- split, dotfiles, query decoding, escaping -------------------------------- */

static void test_split(void **state)
{
    (void)state;
    size_t plen, qlen;
    const char *q;
    lh_path_split("/a/b?x=1&y", 10, &plen, &q, &qlen);
    assert_int_equal(plen, 4);
    assert_int_equal(qlen, 5);
    assert_memory_equal(q, "x=1&y", 5);
    lh_path_split("/a", 2, &plen, &q, &qlen);
    assert_int_equal(plen, 2);
    assert_null(q);
    assert_int_equal(qlen, 0);
    lh_path_split("/?", 2, &plen, &q, &qlen);
    assert_int_equal(plen, 1);
    assert_non_null(q);
    assert_int_equal(qlen, 0);
    lh_path_split("/a?b?c", 6, &plen, &q, &qlen); /* the first '?' splits */
    assert_int_equal(plen, 2);
    assert_int_equal(qlen, 3);
    assert_memory_equal(q, "b?c", 3);
    lh_path_split("/a?b", 2, &plen, &q, &qlen); /* the length is honoured */
    assert_int_equal(plen, 2);
    assert_null(q);
}

static void test_dotfiles(void **state)
{
    (void)state;
    assert_true(lh_path_has_dotfile("/.env"));
    assert_true(lh_path_has_dotfile("/a/.git/config"));
    assert_true(lh_path_has_dotfile("/a/.hidden/"));
    assert_true(lh_path_has_dotfile("/a/b/.htaccess"));
    assert_false(lh_path_has_dotfile("/a.b/c"));
    assert_false(lh_path_has_dotfile("/"));
    assert_false(lh_path_has_dotfile("/index.html"));
    assert_false(lh_path_has_dotfile("/a/b./c"));
}

static void test_query_decode(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(lh_query_decode("a+b%21%zz%4", 11, out, sizeof out), 9);
    assert_string_equal(out, "a b!%zz%4");
    assert_int_equal(lh_query_decode("%41%42", 6, out, sizeof out), 2); /* escape at end */
    assert_string_equal(out, "AB");
    assert_int_equal(lh_query_decode("%2B+%2b", 7, out, sizeof out), 3); /* %2B is '+' */
    assert_string_equal(out, "+ +");
    assert_int_equal(lh_query_decode("%", 1, out, sizeof out), 1);
    assert_string_equal(out, "%");
    assert_int_equal(lh_query_decode("a%00b", 5, out, sizeof out), 3); /* a NUL byte */
    assert_memory_equal(out, "a\0b", 4);
    assert_int_equal(lh_query_decode("x=1&y", 1, out, sizeof out), 1); /* len honoured */
    assert_string_equal(out, "x");
    assert_int_equal(lh_query_decode("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void test_query_decode_truncates(void **state)
{
    (void)state;
    char out[8];
    memset(out, 'X', sizeof out);
    assert_int_equal(lh_query_decode("abcdef", 6, out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(out[4], 'X'); /* nothing written past outsz */
    assert_int_equal(lh_query_decode("%41%42%43", 9, out, 3), 2);
    assert_string_equal(out, "AB");
    assert_int_equal(lh_query_decode("abc", 3, out, 1), 0);
    assert_string_equal(out, "");
    out[0] = 'X';
    assert_int_equal(lh_query_decode("abc", 3, out, 0), 0);
    assert_int_equal(out[0], 'X');
    /* outsz = len + 1 always suffices */
    assert_int_equal(lh_query_decode("a+b%20c", 7, out, 8), 5);
    assert_string_equal(out, "a b c");
}

static void test_html_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(lh_html_escape("a<b>&\"'", out, sizeof out), 26);
    assert_string_equal(out, "a&lt;b&gt;&amp;&quot;&#39;");
    assert_int_equal(lh_html_escape("plain caf\xc3\xa9", out, sizeof out), 11);
    assert_string_equal(out, "plain caf\xc3\xa9");
    assert_int_equal(lh_html_escape("", out, 1), 0);
    assert_string_equal(out, "");
}

static void test_html_escape_fit(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(lh_html_escape("<<<<", out, 10), (size_t)-1);
    assert_int_equal(lh_html_escape("<", out, 4), (size_t)-1); /* no room for the NUL */
    assert_int_equal(lh_html_escape("<", out, 5), 4);          /* exactly fits */
    assert_string_equal(out, "&lt;");
    assert_int_equal(lh_html_escape("abc", out, 3), (size_t)-1);
    assert_int_equal(lh_html_escape("abc", out, 4), 3);
    assert_int_equal(lh_html_escape("", out, 0), (size_t)-1);
}

static void test_url_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(lh_url_escape_path("/a b/c?#%", out, sizeof out), 17);
    assert_string_equal(out, "/a%20b/c%3F%23%25");
    assert_int_equal(lh_url_escape_path("/AZaz09-._~/", out, sizeof out), 12);
    assert_string_equal(out, "/AZaz09-._~/");
    assert_int_equal(lh_url_escape_path("/caf\xc3\xa9", out, sizeof out), 10);
    assert_string_equal(out, "/caf%C3%A9");
    assert_int_equal(lh_url_escape_path("<\"&'+;=", out, sizeof out), 21);
    assert_string_equal(out, "%3C%22%26%27%2B%3B%3D");
}

/* Every byte: the unreserved ones and '/' stay, everything else is %XX. */
static void test_url_escape_every_byte(void **state)
{
    (void)state;
    static const char keep[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-._~/";
    for (int c = 1; c < 256; c++) {
        char in[2] = {(char)c, '\0'}, out[8], want[8];
        if (strchr(keep, c))
            snprintf(want, sizeof want, "%c", c);
        else
            snprintf(want, sizeof want, "%%%02X", c);
        assert_int_equal(lh_url_escape_path(in, out, sizeof out), strlen(want));
        assert_string_equal(out, want);
    }
}

static void test_url_escape_fit(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(lh_url_escape_path("    ", out, 8), (size_t)-1);
    assert_int_equal(lh_url_escape_path(" ", out, 3), (size_t)-1); /* no room for NUL */
    assert_int_equal(lh_url_escape_path(" ", out, 4), 3);
    assert_string_equal(out, "%20");
    assert_int_equal(lh_url_escape_path("ab", out, 2), (size_t)-1);
    assert_int_equal(lh_url_escape_path("ab", out, 3), 2);
    assert_string_equal(out, "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_raw_nul),
        cmocka_unit_test(test_out_too_small),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_resolve_nul_and_size),
        cmocka_unit_test(test_resolve_random),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_dotfiles),
        cmocka_unit_test(test_query_decode),
        cmocka_unit_test(test_query_decode_truncates),
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_html_escape_fit),
        cmocka_unit_test(test_url_escape),
        cmocka_unit_test(test_url_escape_every_byte),
        cmocka_unit_test(test_url_escape_fit),
    };
    return cmocka_run_group_tests_name("path", tests, NULL, NULL);
}
