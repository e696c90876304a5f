/* Unit tests for form.c: the Cookie header, urlencoded and multipart/form-data bodies.
 * The curl cases are the bytes curl 7.88.1 sent to a listener on 127.0.0.1 (-b, -d,
 * --data-urlencode, -F); the browser cases follow what Chromium's form encoder
 * writes. Every input is copied to a heap block of exactly its length, and the
 * scratch buffer is exactly that long too, so that under ASan a read or write past
 * either fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "form.h"

#define L(x) x, sizeof(x) - 1 /* a literal with its length, NUL bytes included */

/* ---- collecting fields --------------------------------------------------------- */

#define MAXF 32

struct copy {
    char *p; /* into got.arena; NULL when the parser gave NULL */
    size_t n;
};

struct got {
    const char *in, *scratch; /* what every pointer must point into */
    size_t len;
    int stop_at; /* return 7 from the call that hands over field number stop_at */
    size_t n;
    struct {
        struct copy name, value, filename, ctype;
    } f[MAXF];
    size_t used;
    char arena[1 << 16];
};

static bool inside(const char *p, size_t n, const char *base, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return base && a >= b && n <= len && a - b <= len - n;
}

static void keep(struct got *g, struct copy *c, const char *p, size_t n)
{
    c->p = NULL;
    c->n = n;
    if (!p) {
        assert_int_equal(n, 0);
        return;
    }
    if (!inside(p, n, g->in, g->len) && !inside(p, n, g->scratch, g->len))
        fail_msg("a pointer outside the input and the scratch buffer");
    assert_true(g->used + n + 1 <= sizeof g->arena);
    c->p = g->arena + g->used;
    memcpy(c->p, p, n);
    c->p[n] = '\0';
    g->used += n + 1;
}

static int collect(void *ud, const struct lh_form_field *f)
{
    struct got *g = ud;
    assert_true(g->n < MAXF);
    assert_non_null(f->name);
    assert_non_null(f->value);
    keep(g, &g->f[g->n].name, f->name, f->name_len);
    keep(g, &g->f[g->n].value, f->value, f->value_len);
    keep(g, &g->f[g->n].filename, f->filename, f->filename_len);
    keep(g, &g->f[g->n].ctype, f->content_type, f->content_type_len);
    g->n++;
    return g->stop_at && (int)g->n == g->stop_at ? 7 : 0;
}

enum kind { COOKIE, URLENC, MULTIPART };

/* Run one parser over a heap copy of in[0..len) with a scratch of exactly len bytes. */
static int run(enum kind k, const char *in, size_t len, const char *boundary,
               struct got *g)
{
    char *copy = malloc(len ? len : 1), *scratch = malloc(len ? len : 1);
    assert_non_null(copy);
    assert_non_null(scratch);
    memcpy(copy, in, len);
    int stop = g->stop_at;
    memset(g, 0, offsetof(struct got, arena));
    g->stop_at = stop;
    g->in = copy;
    g->scratch = scratch;
    g->len = len;
    int rc = k == COOKIE   ? lh_cookie_parse(copy, len, collect, g)
             : k == URLENC ? lh_form_urlencoded(copy, len, scratch, collect, g)
                           : lh_form_multipart(copy, len, boundary, strlen(boundary),
                                               scratch, collect, g);
    free(copy);
    free(scratch);
    g->in = g->scratch = NULL;
    return rc;
}

static void copy_is(const struct copy *c, const char *want, size_t n, size_t i,
                    const char *what)
{
    if (!want) {
        if (c->p)
            fail_msg("field %zu: %s '%s', want none", i, what, c->p);
        return;
    }
    if (!c->p)
        fail_msg("field %zu: no %s, want '%s'", i, what, want);
    if (c->n != n || memcmp(c->p, want, n) != 0)
        fail_msg("field %zu: %s '%s' (%zu bytes), want '%s' (%zu bytes)", i, what, c->p,
                 c->n, want, n);
}

/* field i is name=value, with no filename and no Content-Type */
static void field_is(const struct got *g, size_t i, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    if (i >= g->n)
        fail_msg("field %zu missing: only %zu", i, g->n);
    copy_is(&g->f[i].name, name, nlen, i, "name");
    copy_is(&g->f[i].value, value, vlen, i, "value");
    copy_is(&g->f[i].filename, NULL, 0, i, "filename");
    copy_is(&g->f[i].ctype, NULL, 0, i, "content type");
}

#define FIELD(g, i, name, value) field_is(g, i, L(name), L(value))

static void file_is(const struct got *g, size_t i, const char *name, const char *filename,
                    size_t flen, const char *ctype, const char *value, size_t vlen)
{
    if (i >= g->n)
        fail_msg("field %zu missing: only %zu", i, g->n);
    copy_is(&g->f[i].name, name, strlen(name), i, "name");
    copy_is(&g->f[i].filename, filename, flen, i, "filename");
    copy_is(&g->f[i].ctype, ctype, ctype ? strlen(ctype) : 0, i, "content type");
    copy_is(&g->f[i].value, value, vlen, i, "value");
}

static struct got G; /* too big for cmocka's stack */

static int cookie(const char *h) { return run(COOKIE, h, strlen(h), NULL, &G); }
static int urlenc(const char *b) { return run(URLENC, b, strlen(b), NULL, &G); }
static int mp(const char *body, size_t len, const char *boundary)
{
    return run(MULTIPART, body, len, boundary, &G);
}

/* ---- Cookie ---------------------------------------------------------------------- */

static void test_cookie_pairs(void **state)
{
    (void)state;
    const char *forms[] = {"a=1; b=2", "a=1;b=2", "  a = 1 ;\tb=2\t", "a=1; b=2;", "a=1; b=2; "};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        assert_int_equal(cookie(forms[i]), 0);
        assert_int_equal(G.n, 2);
        FIELD(&G, 0, "a", "1");
        FIELD(&G, 1, "b", "2");
    }
}

/* curl -b 'a=1; b=2' -b 'c="q v"' sent: Cookie: a=1; b=2;c="q v" */
static void test_cookie_curl(void **state)
{
    (void)state;
    assert_int_equal(cookie("a=1; b=2;c=\"q v\""), 0);
    assert_int_equal(G.n, 3);
    FIELD(&G, 0, "a", "1");
    FIELD(&G, 1, "b", "2");
    FIELD(&G, 2, "c", "q v");
}

static void test_cookie_values(void **state)
{
    (void)state;
    assert_int_equal(cookie("sid=\"abc\"; e=; eq=a=b=c; q=\"\"; lone=\"; half=\"x"), 0);
    assert_int_equal(G.n, 6);
    FIELD(&G, 0, "sid", "abc");
    FIELD(&G, 1, "e", "");
    FIELD(&G, 2, "eq", "a=b=c");
    FIELD(&G, 3, "q", "");
    FIELD(&G, 4, "lone", "\""); /* not a quoted value: left alone */
    FIELD(&G, 5, "half", "\"x");
    /* nothing is percent-decoded, and blanks inside a value stay */
    assert_int_equal(cookie("p=a%20b+c; s= x y "), 0);
    assert_int_equal(G.n, 2);
    FIELD(&G, 0, "p", "a%20b+c");
    FIELD(&G, 1, "s", "x y");
}

static void test_cookie_skipped(void **state)
{
    (void)state;
    /* no "=", an empty name, empty pairs: skipped, the rest still handed over */
    assert_int_equal(cookie("flag; =x; a=1;; ;  = ; b=2; tail"), 0);
    assert_int_equal(G.n, 2);
    FIELD(&G, 0, "a", "1");
    FIELD(&G, 1, "b", "2");
    const char *none[] = {"", ";", " ; ; ", "noequals", "=", "=v"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_int_equal(cookie(none[i]), 0);
        if (G.n != 0)
            fail_msg("'%s' gave a field", none[i]);
    }
}

/* both are handed over, in order: the caller picks */
static void test_cookie_duplicates(void **state)
{
    (void)state;
    assert_int_equal(cookie("id=1; x=0; id=2"), 0);
    assert_int_equal(G.n, 3);
    FIELD(&G, 0, "id", "1");
    FIELD(&G, 1, "x", "0");
    FIELD(&G, 2, "id", "2");
}

static void test_cookie_stop(void **state)
{
    (void)state;
    G.stop_at = 2;
    assert_int_equal(cookie("a=1; b=2; c=3"), 7);
    G.stop_at = 0;
    assert_int_equal(G.n, 2);
}

/* the header's length is the end, whatever follows in memory */
static void test_cookie_uses_len(void **state)
{
    (void)state;
    assert_int_equal(run(COOKIE, "a=1; b=2", 7, NULL, &G), 0);
    assert_int_equal(G.n, 2);
    FIELD(&G, 0, "a", "1");
    FIELD(&G, 1, "b", "");
}

/* ---- application/x-www-form-urlencoded ------------------------------------------ */

/* curl -d 'a=1&b=2&a=3' */
static void test_urlenc_curl_d(void **state)
{
    (void)state;
    assert_int_equal(urlenc("a=1&b=2&a=3"), 0);
    assert_int_equal(G.n, 3);
    FIELD(&G, 0, "a", "1");
    FIELD(&G, 1, "b", "2");
    FIELD(&G, 2, "a", "3");
}

/* curl --data-urlencode 'q=a b&c=d+e/ü' --data-urlencode 'x=100%', and
 * --data-urlencode 'text=x=y&z' --data-urlencode 'emoji=😀' -d 'k' */
static void test_urlenc_curl_encoded(void **state)
{
    (void)state;
    assert_int_equal(urlenc("q=a+b%26c%3Dd%2Be%2F%C3%BC&x=100%25"), 0);
    assert_int_equal(G.n, 2);
    FIELD(&G, 0, "q", "a b&c=d+e/ü");
    FIELD(&G, 1, "x", "100%");
    assert_int_equal(urlenc("text=x%3Dy%26z&emoji=%F0%9F%98%80&k"), 0);
    assert_int_equal(G.n, 3);
    FIELD(&G, 0, "text", "x=y&z");
    FIELD(&G, 1, "emoji", "\xf0\x9f\x98\x80");
    FIELD(&G, 2, "k", "");
}

/* what Chromium's encoder writes for a form: "+" for a space, CRLF for a textarea's
 * line break, UTF-8 bytes percent-encoded, "*-._" as they are */
static void test_urlenc_browser(void **state)
{
    (void)state;
    assert_int_equal(urlenc("name=J%C3%BCrgen+M.&note=line+1%0D%0Aline*2&pr%C3%A9nom=_-"), 0);
    assert_int_equal(G.n, 3);
    FIELD(&G, 0, "name", "Jürgen M.");
    FIELD(&G, 1, "note", "line 1\r\nline*2");
    FIELD(&G, 2, "prénom", "_-");
}

static void test_urlenc_decoding(void **state)
{
    (void)state;
    assert_int_equal(urlenc("a=x+y%20z&b=%2B%2b+&c%5B%5D=1&e=a=b&n=%00z%41"), 0);
    assert_int_equal(G.n, 5);
    FIELD(&G, 0, "a", "x y z");
    FIELD(&G, 1, "b", "++ ");
    FIELD(&G, 2, "c[]", "1");
    FIELD(&G, 3, "e", "a=b"); /* the first "=" splits */
    FIELD(&G, 4, "n", "\0zA");
}

static void test_urlenc_empty_parts(void **state)
{
    (void)state;
    assert_int_equal(urlenc(""), 0);
    assert_int_equal(G.n, 0);
    assert_int_equal(urlenc("&&&"), 0);
    assert_int_equal(G.n, 0);
    assert_int_equal(urlenc("&&flag&&a=1&&b=&"), 0);
    assert_int_equal(G.n, 3);
    FIELD(&G, 0, "flag", "");
    FIELD(&G, 1, "a", "1");
    FIELD(&G, 2, "b", "");
    /* "=" is not an empty pair: an empty name (as WHATWG's parser gives it) */
    assert_int_equal(urlenc("=&=v"), 0);
    assert_int_equal(G.n, 2);
    FIELD(&G, 0, "", "");
    FIELD(&G, 1, "", "v");
}

/* a bad escape: -1 after the fields before it; the field holding it is not given */
static void test_urlenc_bad_escape(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t before;
    } cases[] = {
        {"a=1&b=%G1&c=3", 1}, {"a=1&b=%4", 1}, {"a=1&b=%", 1}, {"a=1&b=x%4&c=3", 1},
        {"%G1=x", 0},         {"a%=1", 0},     {"a=%1G", 0},
        {"a=%%41", 0},        {"a=%+1", 0},     {"a=1&b=2&%zz", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (urlenc(cases[i].body) != -1)
            fail_msg("'%s' was accepted", cases[i].body);
        if (G.n != cases[i].before)
            fail_msg("'%s': %zu fields before the error, want %zu", cases[i].body, G.n,
                     cases[i].before);
    }
    FIELD(&G, 0, "a", "1");
    FIELD(&G, 1, "b", "2");
}

static void test_urlenc_stop(void **state)
{
    (void)state;
    G.stop_at = 1;
    assert_int_equal(urlenc("a=1&b=%zz"), 7);
    G.stop_at = 0;
    assert_int_equal(G.n, 1);
}

/* "%4" at the end of len is truncated even when "1" follows in memory */
static void test_urlenc_uses_len(void **state)
{
    (void)state;
    assert_int_equal(run(URLENC, "a=%41", 4, NULL, &G), -1);
    assert_int_equal(run(URLENC, "a=%41&b", 5, NULL, &G), 0);
    FIELD(&G, 0, "a", "A");
    assert_int_equal(G.n, 1);
}

/* ---- the boundary ------------------------------------------------------------------ */

static int boundary(const char *ct, char *out)
{
    size_t len = strlen(ct);
    char *copy = malloc(len + 1), *scratch = malloc(len + 1);
    memcpy(copy, ct, len);
    const char *b = NULL;
    size_t n = 0;
    int rc = lh_form_boundary(copy, len, scratch, &b, &n);
    if (rc == 0) {
        assert_true(n >= 1 && n <= 70);
        assert_true(inside(b, n, copy, len) || inside(b, n, scratch, len));
        memcpy(out, b, n);
        out[n] = '\0';
    }
    free(copy);
    free(scratch);
    return rc;
}

/* 70 bytes: every bchar but space, ":=?/"; and 70 token bytes */
#define B70 "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-."
#define B70T "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'+_-.-_+"

static void test_boundary(void **state)
{
    (void)state;
    static const struct {
        const char *ct, *b;
    } cases[] = {
        /* curl -F */
        {"multipart/form-data; boundary=------------------------ca286dd32ca7dc87",
         "------------------------ca286dd32ca7dc87"},
        /* Chromium */
        {"multipart/form-data; boundary=----WebKitFormBoundaryq3Rz8mTbX0KpL2eA",
         "----WebKitFormBoundaryq3Rz8mTbX0KpL2eA"},
        /* Firefox */
        {"multipart/form-data; boundary=---------------------------9051914041544843365972754266",
         "---------------------------9051914041544843365972754266"},
        {"Multipart/Form-Data; BOUNDARY=abc", "abc"},
        {"multipart/form-data;boundary=abc", "abc"},
        {"  multipart/form-data ;  boundary=abc  ", "abc"},
        {"multipart/form-data; boundary = abc", "abc"},
        {"multipart/form-data; boundary=\"abc\"", "abc"}, /* the quotes go */
        {"multipart/form-data; boundary=\"a b:c=d?(e),f/g\"", "a b:c=d?(e),f/g"},
        {"multipart/form-data; charset=utf-8; boundary=xyz; foo=\"bar;boundary=no\"",
         "xyz"},
        {"multipart/form-data; a=\"x;boundary=no\"; boundary=yes", "yes"},
        {"multipart/form-data;; boundary=x;", "x"},
        {"multipart/form-data; boundary=" B70T, B70T},
        {"multipart/form-data; boundary=\"" B70 "\"", B70},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char b[128];
        if (boundary(cases[i].ct, b) != 0)
            fail_msg("'%s' refused", cases[i].ct);
        if (strcmp(b, cases[i].b) != 0)
            fail_msg("'%s': boundary '%s', want '%s'", cases[i].ct, b, cases[i].b);
    }
}

/* an unescaped quoted boundary points into the header value itself */
static void test_boundary_points_into_value(void **state)
{
    (void)state;
    const char ct[] = "multipart/form-data; boundary=\"abc\"";
    char scratch[sizeof ct];
    const char *b;
    size_t n;
    assert_int_equal(lh_form_boundary(ct, sizeof ct - 1, scratch, &b, &n), 0);
    assert_ptr_equal(b, ct + 31);
    assert_int_equal(n, 3);
}

static void test_boundary_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "multipart/form-data",                      /* no boundary */
        "multipart/form-data;",
        "multipart/form-data; charset=utf-8",
        "multipart/mixed; boundary=abc",            /* another type */
        "application/x-www-form-urlencoded; boundary=abc",
        "multipart/form-data-x; boundary=abc",
        "multipart/form; boundary=abc",
        "multipart /form-data; boundary=abc",
        "form-data; boundary=abc",
        "multipart/form-data; boundary=",           /* empty */
        "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=" B70T "x",   /* 71 bytes */
        "multipart/form-data; boundary=" B70,        /* "(),": bchars, not a token */
        "multipart/form-data; boundary=\"" B70 "x\"",
        "multipart/form-data; boundary=\"ab \"",    /* ends in a space */
        "multipart/form-data; boundary=\"a@b\"",    /* not a bchar */
        "multipart/form-data; boundary=\"a\\\"b\"",
        "multipart/form-data; boundary=\"a\\bc\"",   /* \b is no escape: a backslash */
        "multipart/form-data; boundary=a*b",
        "multipart/form-data; boundary=\"abc",      /* unclosed */
        "multipart/form-data; boundary=\"abc\\\"",
        "multipart/form-data; boundary",            /* not a parameter */
        "multipart/form-data; boundary=abc def",
        "multipart/form-data; boundary=abc, x=y",
        "multipart/form-data boundary=abc",
        "multipart/form-data; boundary=a; boundary=a", /* twice */
        "multipart/form-data; boundary=a; BOUNDARY=b",
        "multipart/form-data; boundary=\"a\tb\"",
        "multipart/form-data; boundary=\"a\x01z\"",
        "multipart/form-data; boundary=\"a\\\x01z\"", /* even escaped */
        "multipart/form-data; boundary=\"a\\",         /* a backslash at the end */
        "multipart/; boundary=abc",
        "multipart; boundary=abc",
        "/form-data; boundary=abc",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char b[128];
        if (boundary(bad[i], b) != -1)
            fail_msg("'%s' accepted: '%s'", bad[i], b);
    }
}

/* ---- multipart/form-data: real bodies ------------------------------------------------ */

#define CURL1_B "------------------------980fe9a1280a6f0b"
/* curl -F 'name=Ada' -F 'city=Zürich' -F 'msg=a<LF>b' */
static const char curl1[] =
    "--" CURL1_B "\r\n"
    "Content-Disposition: form-data; name=\"name\"\r\n"
    "\r\n"
    "Ada\r\n"
    "--" CURL1_B "\r\n"
    "Content-Disposition: form-data; name=\"city\"\r\n"
    "\r\n"
    "Z\xc3\xbcrich\r\n"
    "--" CURL1_B "\r\n"
    "Content-Disposition: form-data; name=\"msg\"\r\n"
    "\r\n"
    "a\nb\r\n"
    "--" CURL1_B "--\r\n";

#define CURL2_B "------------------------ca286dd32ca7dc87"
/* curl -F 'file=@note.txt' -F 'bin=@bin.dat;type=application/octet-stream', with
 * note.txt "line1\nline2\n" and bin.dat "hello\0world\r\n--x\r\nend" */
static const char curl2[] =
    "--" CURL2_B "\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "line1\nline2\n\r\n"
    "--" CURL2_B "\r\n"
    "Content-Disposition: form-data; name=\"bin\"; filename=\"bin.dat\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "hello\0world\r\n--x\r\nend\r\n"
    "--" CURL2_B "--\r\n";

#define CURL3_B "------------------------310be01a3cbfbb0d"
/* curl -F 'empty=@empty.txt' -F 'tag=one' -F 'tag=two' */
static const char curl3[] =
    "--" CURL3_B "\r\n"
    "Content-Disposition: form-data; name=\"empty\"; filename=\"empty.txt\"\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "\r\n"
    "--" CURL3_B "\r\n"
    "Content-Disposition: form-data; name=\"tag\"\r\n"
    "\r\n"
    "one\r\n"
    "--" CURL3_B "\r\n"
    "Content-Disposition: form-data; name=\"tag\"\r\n"
    "\r\n"
    "two\r\n"
    "--" CURL3_B "--\r\n";

#define CURL4_B "------------------------abbe65195cf28493"
/* curl -F 'file=@note.txt;filename=we"ird.txt': curl 7.88 writes %22 as browsers do */
static const char curl4[] =
    "--" CURL4_B "\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"we%22ird.txt\"\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "line1\nline2\n\r\n"
    "--" CURL4_B "--\r\n";

#define CHROME_B "----WebKitFormBoundaryq3Rz8mTbX0KpL2eA"
/* A form as Chromium sends it: a textarea (CRLF line breaks), a UTF-8 name and value,
 * a field twice, a file whose name held quotes (%22) and UTF-8, and a file input left
 * empty (filename="" and application/octet-stream). */
static const char chrome[] =
    "--" CHROME_B "\r\n"
    "Content-Disposition: form-data; name=\"title\"\r\n"
    "\r\n"
    "Crème brûlée\r\n"
    "--" CHROME_B "\r\n"
    "Content-Disposition: form-data; name=\"prénom\"\r\n"
    "\r\n"
    "Zoë\r\n"
    "--" CHROME_B "\r\n"
    "Content-Disposition: form-data; name=\"notes\"\r\n"
    "\r\n"
    "line 1\r\nline 2\r\n\r\n"
    "--" CHROME_B "\r\n"
    "Content-Disposition: form-data; name=\"tag\"\r\n"
    "\r\n"
    "dessert\r\n"
    "--" CHROME_B "\r\n"
    "Content-Disposition: form-data; name=\"tag\"\r\n"
    "\r\n"
    "french\r\n"
    "--" CHROME_B "\r\n"
    "Content-Disposition: form-data; name=\"photo\"; filename=\"my %22best%22 crème.txt\"\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "hello\r\n"
    "--" CHROME_B "\r\n"
    "Content-Disposition: form-data; name=\"attachment\"; filename=\"\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\r\n"
    "--" CHROME_B "--\r\n";

static void test_multipart_curl_fields(void **state)
{
    (void)state;
    assert_int_equal(mp(L(curl1), CURL1_B), 0);
    assert_int_equal(G.n, 3);
    FIELD(&G, 0, "name", "Ada");
    FIELD(&G, 1, "city", "Zürich");
    FIELD(&G, 2, "msg", "a\nb");
}

static void test_multipart_curl_files(void **state)
{
    (void)state;
    assert_int_equal(mp(L(curl2), CURL2_B), 0);
    assert_int_equal(G.n, 2);
    file_is(&G, 0, "file", L("note.txt"), "text/plain", L("line1\nline2\n"));
    /* NUL, CR, LF and a "--x" line inside a file: byte for byte */
    file_is(&G, 1, "bin", L("bin.dat"), "application/octet-stream",
            L("hello\0world\r\n--x\r\nend"));
}

static void test_multipart_curl_empty_file_and_twice(void **state)
{
    (void)state;
    assert_int_equal(mp(L(curl3), CURL3_B), 0);
    assert_int_equal(G.n, 3);
    file_is(&G, 0, "empty", L("empty.txt"), "text/plain", L(""));
    FIELD(&G, 1, "tag", "one");
    FIELD(&G, 2, "tag", "two");
}

static void test_multipart_curl_quote_in_filename(void **state)
{
    (void)state;
    assert_int_equal(mp(L(curl4), CURL4_B), 0);
    assert_int_equal(G.n, 1);
    file_is(&G, 0, "file", L("we%22ird.txt"), "text/plain", L("line1\nline2\n"));
}

static void test_multipart_browser(void **state)
{
    (void)state;
    assert_int_equal(mp(L(chrome), CHROME_B), 0);
    assert_int_equal(G.n, 7);
    FIELD(&G, 0, "title", "Crème brûlée");
    FIELD(&G, 1, "prénom", "Zoë");
    FIELD(&G, 2, "notes", "line 1\r\nline 2\r\n"); /* only the last CRLF is the delimiter's */
    FIELD(&G, 3, "tag", "dessert");
    FIELD(&G, 4, "tag", "french");
    file_is(&G, 5, "photo", L("my %22best%22 crème.txt"), "text/plain", L("hello"));
    /* an empty file input: a filename, empty but there */
    file_is(&G, 6, "attachment", L(""), "application/octet-stream", L(""));
}

/* the boundary string and the first boundary as lh_form_boundary would hand them */
static void test_multipart_with_parsed_boundary(void **state)
{
    (void)state;
    char b[128];
    assert_int_equal(boundary("multipart/form-data; boundary=" CHROME_B, b), 0);
    assert_int_equal(mp(L(chrome), b), 0);
    assert_int_equal(G.n, 7);
}

/* Every byte value, twice, in a file part round-trips byte for byte. */
static void test_multipart_binary(void **state)
{
    (void)state;
    static const char head[] = "--xyz\r\nContent-Disposition: form-data; name=\"f\"; "
                               "filename=\"b.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    static const char tail[] = "\r\n--xyz--\r\n";
    char data[512];
    for (int i = 0; i < 512; i++)
        data[i] = (char)(i % 256);
    char body[sizeof head + sizeof data + sizeof tail];
    size_t n = 0;
    memcpy(body, head, sizeof head - 1), n += sizeof head - 1;
    memcpy(body + n, data, sizeof data), n += sizeof data;
    memcpy(body + n, tail, sizeof tail - 1), n += sizeof tail - 1;
    assert_int_equal(mp(body, n, "xyz"), 0);
    assert_int_equal(G.n, 1);
    file_is(&G, 0, "f", L("b.bin"), "application/octet-stream", data, sizeof data);
}

/* ---- multipart/form-data: framing ------------------------------------------------- */

#define CD(n) "Content-Disposition: form-data; name=\"" n "\"\r\n"

static void test_multipart_preamble_epilogue(void **state)
{
    (void)state;
    static const char body[] = "This preamble has x--b inside, not at a line start.\r\n"
                               "\r\n--b\r\n" CD("a") "\r\n1\r\n--b--\r\nan epilogue\r\n--b\r\n"
                               "junk";
    assert_int_equal(mp(L(body), "b"), 0);
    assert_int_equal(G.n, 1);
    FIELD(&G, 0, "a", "1");
    /* a preamble of one line end only */
    assert_int_equal(mp(L("\r\n--b\r\n" CD("a") "\r\n1\r\n--b--"), "b"), 0);
    assert_int_equal(G.n, 1);
    FIELD(&G, 0, "a", "1");
}

static void test_multipart_lf_only(void **state)
{
    (void)state;
    static const char body[] = "--b\n"
                               "Content-Disposition: form-data; name=\"a\"\n"
                               "\n"
                               "one\n"
                               "--b\n"
                               "Content-Disposition: form-data; name=\"f\"; filename=\"x\"\n"
                               "Content-Type: text/plain\n"
                               "\n"
                               "two\r\n" /* mixed line ends: the CR goes with the LF */
                               "--b--\n";
    assert_int_equal(mp(L(body), "b"), 0);
    assert_int_equal(G.n, 2);
    FIELD(&G, 0, "a", "one");
    file_is(&G, 1, "f", L("x"), "text/plain", L("two"));
}

/* the CRLF before a delimiter belongs to it; any other CR and LF is data */
static void test_multipart_line_ends_at_part_end(void **state)
{
    (void)state;
    static const char body[] = "--b\r\n" CD("crlf") "\r\nv\r\n\r\n"
                               "--b\r\n" CD("cr") "\r\nv\r\r\n"
                               "--b\r\n" CD("lf") "\r\nv\n\r\n"
                               "--b\r\n" CD("lfcr") "\r\nv\n\r\r\n"
                               "--b\r\n" CD("empty") "\r\n\r\n"
                               "--b\r\n" CD("crlf2") "\r\n\r\n\r\n"
                               "--b--";
    assert_int_equal(mp(L(body), "b"), 0);
    assert_int_equal(G.n, 6);
    FIELD(&G, 0, "crlf", "v\r\n");
    FIELD(&G, 1, "cr", "v\r");
    FIELD(&G, 2, "lf", "v\n");
    FIELD(&G, 3, "lfcr", "v\n\r");
    FIELD(&G, 4, "empty", "");
    FIELD(&G, 5, "crlf2", "\r\n");
}

/* "--b" not at the start of a line is data, and so is a "--" line of another boundary */
static void test_multipart_boundary_in_data(void **state)
{
    (void)state;
    static const char body[] = "--b\r\n" CD("a") "\r\nx--b\r\ny --b--\r\n-b\r\n- -b\r\n--c\r\n"
                               "\r--b\r\n"
                               "--b--\r\n";
    assert_int_equal(mp(L(body), "b"), 0);
    assert_int_equal(G.n, 1);
    FIELD(&G, 0, "a", "x--b\r\ny --b--\r\n-b\r\n- -b\r\n--c\r\n\r--b");
}

static void test_multipart_padding(void **state)
{
    (void)state;
    static const char body[] = "--b \t \r\n" CD("a") "\r\n1\r\n--b\t\n" CD("b") "\r\n2\r\n--b--";
    assert_int_equal(mp(L(body), "b"), 0);
    assert_int_equal(G.n, 2);
    FIELD(&G, 0, "a", "1");
    FIELD(&G, 1, "b", "2");
}

/* no field at all: only the closing delimiter */
static void test_multipart_empty_form(void **state)
{
    (void)state;
    assert_int_equal(mp(L("--b--\r\n"), "b"), 0);
    assert_int_equal(G.n, 0);
    assert_int_equal(mp(L("preamble\r\n--b--"), "b"), 0);
    assert_int_equal(G.n, 0);
    /* what comes before the first delimiter is a preamble, even a part's look-alike */
    assert_int_equal(mp(L("-b\r\n" CD("a") "\r\n1\r\n--b--"), "b"), 0);
    assert_int_equal(G.n, 0);
}

static void test_multipart_headers(void **state)
{
    (void)state;
    static const char body[] =
        "--b\r\n"
        "content-disposition: FORM-DATA; FILENAME=\"f.txt\"; Name=\"up\"\r\n"
        "X-Unknown: whatever; name=\"no\"\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "CONTENT-TYPE:text/csv; charset=utf-8  \r\n"
        "\r\n"
        "1,2\r\n"
        "--b\r\n"
        "Content-Disposition: form-data;name=token;filename=plain.txt\r\n"
        "\r\n"
        "t\r\n"
        "--b\r\n"
        "Content-Disposition:form-data ; name = \"sp\" ; x-extra=1;;\r\n"
        "\r\n"
        "s\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"q\\\"u\\\\o\\te\"; filename*=UTF-8''%C3%A9.txt\r\n"
        "\r\n"
        "q\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"semi;colon\"; filename=\"a;b=c\\\".txt\"\r\n"
        "Content-Type: \r\n"
        "\r\n"
        "x\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"\"\r\n"
        "\r\n"
        "noname\r\n"
        "--b--\r\n";
    assert_int_equal(mp(L(body), "b"), 0);
    assert_int_equal(G.n, 6);
    file_is(&G, 0, "up", L("f.txt"), "text/csv; charset=utf-8", L("1,2"));
    file_is(&G, 1, "token", L("plain.txt"), NULL, L("t"));
    FIELD(&G, 2, "sp", "s");
    FIELD(&G, 3, "q\"u\\o\\te", "q"); /* \" and \\ unescaped, \t kept; no filename* */
    file_is(&G, 4, "semi;colon", L("a;b=c\".txt"), "", L("x"));
    FIELD(&G, 5, "", "noname");
}

static void test_multipart_wrong_boundary(void **state)
{
    (void)state;
    assert_int_equal(mp(L(curl1), CURL2_B), -1);
    assert_int_equal(G.n, 0);
    assert_int_equal(mp(L(curl1), "------------------------980fe9a1280a6f0"), -1);
    assert_int_equal(G.n, 0);
    assert_int_equal(mp(L(curl1), "-" CURL1_B), -1);
    assert_int_equal(G.n, 0);
    /* a boundary of 0 or 71 bytes is refused before anything is read */
    assert_int_equal(mp(L("--\r\n" CD("a") "\r\n1\r\n----"), ""), -1);
    assert_int_equal(mp(L("--" B70 "x\r\n" CD("a") "\r\n1\r\n--" B70 "x--"), B70 "x"), -1);
    assert_int_equal(mp(L("--" B70 "\r\n" CD("a") "\r\n1\r\n--" B70 "--"), B70), 0);
    FIELD(&G, 0, "a", "1");
}

/* a truncated body: -1, after the parts that were whole */
static void test_multipart_truncated(void **state)
{
    (void)state;
    size_t full = sizeof curl1 - 1;
    size_t close_at = full - strlen("--" CURL1_B "--\r\n"); /* where the closing line starts */
    static const struct {
        size_t cut; /* bytes cut off the end */
        int rc;
        size_t n;
    } cases[] = {
        {0, 0, 3}, {1, 0, 3}, {2, 0, 3}, /* the line end after the close is optional */
        {3, -1, 3}, {4, -1, 3},           /* "--b-", "--b": the last part had its end */
        {5, -1, 2},                       /* "--b" without its last byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = mp(curl1, full - cases[i].cut, CURL1_B);
        if (rc != cases[i].rc || G.n != cases[i].n)
            fail_msg("cut %zu: %d with %zu fields, want %d with %zu", cases[i].cut, rc, G.n,
                     cases[i].rc, cases[i].n);
    }
    /* cut anywhere before the closing line: never 0, never the cut part */
    for (size_t len = 0; len < close_at; len++) {
        int rc = mp(curl1, len, CURL1_B);
        if (rc != -1 || G.n > 2)
            fail_msg("cut at %zu: %d with %zu fields", len, rc, G.n);
    }
    /* a part that never ends */
    assert_int_equal(mp(L("--b\r\n" CD("a") "\r\n1\r\n--b\r\n" CD("c") "\r\nno end"), "b"),
                     -1);
    assert_int_equal(G.n, 1);
    FIELD(&G, 0, "a", "1");
}

static void test_multipart_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t before; /* fields handed over before the error */
    } cases[] = {
        {"", 0},
        {"no boundary at all", 0},
        {"--b\r\n\r\nvalue\r\n--b--", 0},                   /* a part without headers */
        {"--b\r\n" CD("a") "\r\n1\r\n--b\r\n\r\n\r\n--b--", 1},
        {"--b\r\n" CD("a") "value\r\n--b--", 0},            /* no blank line */
        {"--b\r\n" CD("a") "--b--", 0},
        {"--b\r\n" CD("a") "\r\n--b--", 0},                 /* the CRLF is the delimiter's */
        {"--b\r\n--b--", 0},                                /* an empty part */
        {"--b\r\n--b\r\n" CD("a") "\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Type: text/plain\r\n\r\n1\r\n--b--", 0},   /* no disposition */
        {"--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--", 0}, /* no name */
        {"--b\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data-x; name=\"a\"\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: ; name=\"a\"\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\n1\r\n--b--", 0}, /* unclosed */
        {"--b\r\nContent-Disposition: form-data; name=\"a\\\"\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name=a; filename=x; FileName=y\r\n\r\n1\r\n--b--",
         0},
        {"--b\r\n" CD("a") CD("b") "\r\n1\r\n--b--", 0},    /* two dispositions */
        {"--b\r\n" CD("a") "Content-Type: a/b\r\ncontent-type: c/d\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name=\"a\" x\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name=\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name=a b\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition: form-data; name=\"a\x01\"\r\n\r\n1\r\n--b--", 0},
        {"--b\r\n" CD("a") "no colon here\r\n\r\n1\r\n--b--", 0},
        {"--b\r\n" CD("a") " folded: x\r\n\r\n1\r\n--b--", 0},  /* folding is not taken */
        {"--b\r\n" CD("a") "Bad Name: x\r\n\r\n1\r\n--b--", 0},
        {"--b\r\n" CD("a") ": x\r\n\r\n1\r\n--b--", 0},
        {"--b\r\nContent-Disposition : form-data; name=\"a\"\r\n\r\n1\r\n--b--", 0},
        /* "--b" followed by more than blanks and a line end: a longer boundary, or a
         * broken line, is not taken for data */
        {"--bc\r\n" CD("a") "\r\n1\r\n--b--", 0},
        {"--b\r\n" CD("a") "\r\n1\r\n--bc\r\n--b--", 1},
        {"--b\r\n" CD("a") "\r\n1\r\n--b\r\n" CD("c") "\r\n2\r\n--b-\r\n", 2},
        {"--b x\r\n" CD("a") "\r\n1\r\n--b--", 0},
        {"--b!" CD("a") "\r\n1\r\n--b--", 0},
        {"--b\r" CD("a") "\r\n1\r\n--b--", 0},
        {"--b\r\n" CD("a") "\r\n1\r\n--b\t?" CD("c") "\r\n2\r\n--b--", 1},
        {"--b\rx\n" CD("a") "\r\n1\r\n--b--", 0},
        {"--b\r\r\n" CD("a") "\r\n1\r\n--b--", 0},
        {"--b", 0},
        {"--b\r", 0},
        {"--b\r\n", 0},
        {"--b-", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = mp(cases[i].body, strlen(cases[i].body), "b");
        if (rc != -1)
            fail_msg("case %zu accepted: %s", i, cases[i].body);
        if (G.n != cases[i].before)
            fail_msg("case %zu: %zu fields before the error, want %zu", i, G.n,
                     cases[i].before);
    }
}

static void test_multipart_stop(void **state)
{
    (void)state;
    G.stop_at = 2;
    assert_int_equal(mp(L(chrome), CHROME_B), 7);
    G.stop_at = 0;
    assert_int_equal(G.n, 2);
}

/* ---- cost on hostile bodies -------------------------------------------------------- */

static int count(void *ud, const struct lh_form_field *f)
{
    (void)f;
    (*(size_t *)ud)++;
    return 0;
}

static double cpu_ms(clock_t start)
{
    return (double)(clock() - start) * 1000.0 / CLOCKS_PER_SEC;
}

/*
 * Bodies built to cost a parser that scans again from earlier positions: many tiny
 * parts, then one part full of near-delimiters ("\r\n--" and the boundary less its
 * last byte); and a long run of short pairs, escapes and separators. The test
 * compares the CPU time of a body with that of one four times its size, never with
 * a fixed limit (ASan and valgrind are many times slower): a linear parser takes
 * about four times as long, a quadratic one sixteen.
 */
static double multipart_ms(size_t cap)
{
    const char *b = "----WebKitFormBoundaryq3Rz8mTbX0KpL2eA";
    size_t n = 0, parts = 0;
    char *body = malloc(cap), *scratch = malloc(cap);
    assert_non_null(body);
    assert_non_null(scratch);
    static const char part[] = "--" CHROME_B "\r\n" CD("k") "\r\nv\r\n";
    while (n + sizeof part + 64 < cap / 2) {
        memcpy(body + n, part, sizeof part - 1);
        n += sizeof part - 1;
        parts++;
    }
    n += (size_t)sprintf(body + n, "--%s\r\n" CD("big") "\r\n", b);
    size_t near = strlen(b) + 3; /* "\r\n--" and all but the last byte */
    while (n + near + 2 + 64 < cap) {
        n += (size_t)sprintf(body + n, "\r\n--%.*s", (int)strlen(b) - 1, b);
    }
    n += (size_t)sprintf(body + n, "\r\n--%s--\r\n", b);
    size_t got = 0;
    clock_t t = clock();
    int rc = lh_form_multipart(body, n, b, strlen(b), scratch, count, &got);
    double ms = cpu_ms(t);
    free(body);
    free(scratch);
    assert_int_equal(rc, 0);
    assert_int_equal(got, parts + 1);
    return ms;
}

static double separators_ms(size_t cap)
{
    static const char pat[] = "k=%41+&&=;&";
    size_t plen = sizeof pat - 1, m = cap / plen * plen;
    char *body = malloc(cap), *scratch = malloc(cap);
    assert_non_null(body);
    assert_non_null(scratch);
    for (size_t i = 0; i < m; i += plen)
        memcpy(body + i, pat, plen);
    size_t urlenc = 0, cookies = 0;
    clock_t t = clock();
    int rc1 = lh_form_urlencoded(body, m, scratch, count, &urlenc);
    int rc2 = lh_cookie_parse(body, m, count, &cookies);
    double ms = cpu_ms(t);
    free(body);
    free(scratch);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    assert_int_equal(urlenc, m / plen * 2);
    assert_int_equal(cookies, m / plen);
    return ms;
}

static void test_multipart_linear(void **state)
{
    (void)state;
    double (*const cost[])(size_t) = {multipart_ms, separators_ms};
    for (size_t i = 0; i < 2; i++) {
        cost[i](256 * 1024); /* warm the pages and caches */
#ifdef __SANITIZE_ADDRESS__
        /* ASan's memmem checks the whole rest of the body at every call, which makes
         * its time grow with the square of the parts: the result is still checked */
        cost[i](1u << 20);
        continue;
#endif
        double small = cost[i](1u << 20), big = cost[i](4u << 20);
        if (big > 10 * small + 20)
            fail_msg("%s: 1 MiB took %.1f ms, 4 MiB %.1f ms: not linear",
                     i ? "separators" : "multipart", small, big);
    }
}

/* A callback that leaves by longjmp (a Lua error) leaves nothing behind: the parser
 * can be called again at once and works. */
static jmp_buf jb;
static int jump(void *ud, const struct lh_form_field *f)
{
    (void)ud;
    (void)f;
    longjmp(jb, 1);
}

static void test_longjmp_out(void **state)
{
    (void)state;
    char scratch[sizeof curl1];
    volatile int jumped = 0;
    if (setjmp(jb) == 0)
        lh_form_multipart(curl1, sizeof curl1 - 1, CURL1_B, strlen(CURL1_B), scratch, jump,
                          NULL);
    else
        jumped = 1;
    assert_int_equal(jumped, 1);
    assert_int_equal(mp(L(curl1), CURL1_B), 0);
    assert_int_equal(G.n, 3);
}

/* Browsers and old clients send backslashes as they are (a Windows path): only \"
 * and \\ are escapes, so the path arrives whole and a name ending in one still
 * closes. */
static void test_multipart_backslashes_in_filenames(void **state)
{
    (void)state;
    static const char body[] =
        "--b\r\n"
        "Content-Disposition: form-data; name=\"f\"; filename=\"C:\\Users\\ada\\cv.pdf\"\r\n"
        "\r\n"
        "pdf\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"g\"; filename=\"a\\\\b\\\"c\"\r\n"
        "\r\n"
        "x\r\n"
        "--b--\r\n";
    assert_int_equal(mp(L(body), "b"), 0);
    assert_int_equal(G.n, 2);
    file_is(&G, 0, "f", L("C:\\Users\\ada\\cv.pdf"), NULL, L("pdf"));
    file_is(&G, 1, "g", L("a\\b\"c"), NULL, L("x"));
}

/* What Chromium 156 (Debian's, headless) sent for a FormData posted with fetch():
 * captured from the wire on this machine, byte for byte. A repeated field, a value
 * with quotes and non-ASCII letters, a file whose name holds quotes (sent as %22) and
 * an accented letter, binary bytes with CR LF and "--" inside, an empty file. */
static void test_multipart_chromium_capture(void **state)
{
    (void)state;
    static const char ct[] = "multipart/form-data; boundary=----WebKitFormBoundaryDiw05ABL5qepkYyN";
    static const char body[] =
    "------WebKitFormBoundaryDiw05ABL5qepkYyN\r\n"
    "Content-Disposition: form-data; name=\"title\"\r\n"
    "\r\n"
    "\xc3""\x9c""n\xc3""\xaf""code \"quoted\" value\r\n"
    "------WebKitFormBoundaryDiw05ABL5qepkYyN\r\n"
    "Content-Disposition: form-data; name=\"title\"\r\n"
    "\r\n"
    "second\r\n"
    "------WebKitFormBoundaryDiw05ABL5qepkYyN\r\n"
    "Content-Disposition: form-data; name=\"photo\"; filename=\"my %22best%22 photo \xc3""\xa9"".bin\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\x00""\x01""\x02""\r\n"
    "--\xff""\r\n"
    "------WebKitFormBoundaryDiw05ABL5qepkYyN\r\n"
    "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\r\n"
    "------WebKitFormBoundaryDiw05ABL5qepkYyN--\r\n";
    char scratch[sizeof ct], got[128];
    const char *b;
    size_t blen;
    assert_int_equal(lh_form_boundary(ct, sizeof ct - 1, scratch, &b, &blen), 0);
    assert_true(blen < sizeof got);
    memcpy(got, b, blen);
    got[blen] = '\0';
    assert_string_equal(got, "----WebKitFormBoundaryDiw05ABL5qepkYyN");
    assert_int_equal(mp(L(body), got), 0);
    assert_int_equal(G.n, 4);
    FIELD(&G, 0, "title", "\xc3\x9cn\xc3\xaf" "code \"quoted\" value");
    FIELD(&G, 1, "title", "second");
    file_is(&G, 2, "photo", L("my %22best%22 photo \xc3\xa9.bin"), "application/octet-stream",
            L("\x00\x01\x02\r\n--\xff"));
    file_is(&G, 3, "empty", L(""), "application/octet-stream", L(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cookie_pairs),
        cmocka_unit_test(test_cookie_curl),
        cmocka_unit_test(test_cookie_values),
        cmocka_unit_test(test_cookie_skipped),
        cmocka_unit_test(test_cookie_duplicates),
        cmocka_unit_test(test_cookie_stop),
        cmocka_unit_test(test_cookie_uses_len),
        cmocka_unit_test(test_urlenc_curl_d),
        cmocka_unit_test(test_urlenc_curl_encoded),
        cmocka_unit_test(test_urlenc_browser),
        cmocka_unit_test(test_urlenc_decoding),
        cmocka_unit_test(test_urlenc_empty_parts),
        cmocka_unit_test(test_urlenc_bad_escape),
        cmocka_unit_test(test_urlenc_stop),
        cmocka_unit_test(test_urlenc_uses_len),
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_boundary_points_into_value),
        cmocka_unit_test(test_boundary_refused),
        cmocka_unit_test(test_multipart_curl_fields),
        cmocka_unit_test(test_multipart_curl_files),
        cmocka_unit_test(test_multipart_curl_empty_file_and_twice),
        cmocka_unit_test(test_multipart_curl_quote_in_filename),
        cmocka_unit_test(test_multipart_browser),
        cmocka_unit_test(test_multipart_with_parsed_boundary),
        cmocka_unit_test(test_multipart_binary),
        cmocka_unit_test(test_multipart_preamble_epilogue),
        cmocka_unit_test(test_multipart_lf_only),
        cmocka_unit_test(test_multipart_line_ends_at_part_end),
        cmocka_unit_test(test_multipart_boundary_in_data),
        cmocka_unit_test(test_multipart_padding),
        cmocka_unit_test(test_multipart_empty_form),
        cmocka_unit_test(test_multipart_headers),
        cmocka_unit_test(test_multipart_wrong_boundary),
        cmocka_unit_test(test_multipart_truncated),
        cmocka_unit_test(test_multipart_malformed),
        cmocka_unit_test(test_multipart_stop),
        cmocka_unit_test(test_multipart_backslashes_in_filenames),
        cmocka_unit_test(test_multipart_chromium_capture),
        cmocka_unit_test(test_multipart_linear),
        cmocka_unit_test(test_longjmp_out),
    };
    return cmocka_run_group_tests_name("form", tests, NULL, NULL);
}
