/* Unit tests for http.c: the strict request-head parser and the chunked decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http.h"

static struct lh_request req;

/* Parse s in one go with an 8 KiB limit. */
static int parse(const char *s)
{
    size_t scanned = 0;
    return lh_http_parse_head(s, strlen(s), &scanned, 8192, &req);
}

static void test_simple_get(void **state)
{
    const char *s = "GET /a/b?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n";
    assert_int_equal(parse(s), (int)strlen(s));
    assert_int_equal(req.method_len, 3);
    assert_memory_equal(req.method, "GET", 3);
    assert_int_equal(req.target_len, 8);
    assert_memory_equal(req.target, "/a/b?x=1", 8);
    assert_int_equal(req.version, 11);
    assert_int_equal(req.nheaders, 2);
    assert_non_null(req.host);
    assert_int_equal(req.content_length, -1);
    assert_false(req.chunked);
    const struct lh_header *ua = lh_http_header(&req, "user-agent");
    assert_non_null(ua);
    assert_int_equal(ua->value_len, 1);
    assert_null(lh_http_header(&req, "referer"));
}

static void test_value_whitespace_trimmed(void **state)
{
    assert_true(parse("GET / HTTP/1.1\r\nHost:   h  \t\r\nX-A:\r\n\r\n") > 0);
    assert_int_equal(req.host->value_len, 1);
    assert_memory_equal(req.host->value, "h", 1);
    assert_int_equal(lh_http_header(&req, "x-a")->value_len, 0);
}

static void test_incremental_byte_by_byte(void **state)
{
    const char *s = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    size_t head = strlen(s) - 5, scanned = 0;
    for (size_t n = 1; n < head; n++)
        assert_int_equal(lh_http_parse_head(s, n, &scanned, 8192, &req), 0);
    assert_int_equal(lh_http_parse_head(s, head, &scanned, 8192, &req), (int)head);
    assert_int_equal(req.content_length, 5);
}

static void test_http10_without_host(void **state)
{
    assert_true(parse("GET / HTTP/1.0\r\n\r\n") > 0);
    assert_int_equal(req.version, 10);
    assert_null(req.host);
}

static void test_leading_empty_lines_ignored(void **state)
{
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(parse(s), (int)strlen(s));
    assert_memory_equal(req.method, "GET", 3);
}

static void test_connection_tokens(void **state)
{
    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Upgrade\r\n\r\n") > 0);
    assert_true(req.conn_keepalive);
    assert_false(req.conn_close);
    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo,close\r\n\r\n") > 0);
    assert_true(req.conn_close);
}

static void test_chunked_and_expect(void **state)
{
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
                      "Expect: 100-continue\r\n\r\n") > 0);
    assert_true(req.chunked);
    assert_true(req.expect_continue);
}

/* Every one of these must be refused with the given status. */
static const struct {
    const char *req;
    int status;
} refused[] = {
    {"GET / HTTP/1.1\r\n\r\n", 400},                                   /* no Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},             /* two Hosts */
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},                       /* space before colon */
    {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400},     /* obs-fold */
    {"GET / HTTP/1.1\nHost: a\n\n", 400},                              /* bare LF */
    {"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400},                  /* bare CR */
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n", 400},        /* control byte */
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nNo-colon\r\n\r\n", 400},
    {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},                       /* two spaces */
    {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
    {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},                        /* not a token */
    {"GET / http/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
    {"GET /\r\n\r\n", 400},                                            /* HTTP/0.9 */
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
    {"GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417},
    /* item 20: the request-target (RFC 9112 3.2, RFC 3986) */
    {"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},       /* raw UTF-8 */
    {"GET /a?q=caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},   /* in the query too */
    {"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET http://a/\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},                 /* a fragment */
    {"GET /a/b#/../c HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},          /* userinfo */
    {"GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400},            /* empty host */
    {"GET http://a:b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    /* item 21: Host = uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2) */
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a:8 0\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [1.2.3.4]\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [v1.]\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", 400},
    {"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400},                 /* 1.0 too */
    /* item 23: transfer codings (RFC 9112 6.1, 6.3) */
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate, chunked\r\n\r\n", 501},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
     "Transfer-Encoding: chunked\r\n\r\n", 501},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", 501},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: gzip\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked, gzip\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked x\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedchunked\r\n\r\n", 400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400}, /* 1.0 */
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
     "Transfer-Encoding: gzip, chunked\r\n\r\n", 400},                   /* CL + TE */
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400}, /* no Host */
};

static void test_refused(void **state)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int got = parse(refused[i].req);
        if (got != -refused[i].status) {
            print_error("case %zu: got %d, want %d\n", i, got, -refused[i].status);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* Targets RFC 3986 allows, and the bytes it does not that browsers send raw and that
 * no URI component treats as a delimiter: all accepted. */
static void test_targets_accepted(void **state)
{
    static const char *ok[] = {
        "/caf%C3%A9/%e2%82%ac?q=%C3%A9",
        "/a-._~!$&'()*+,;=:@/b?c=d/?e",
        "/a|b^c[d]{e}`f\"g<h>\\i?q=[1]&x={\"a\"}|^`<>\\",
        "http://a/b?c",
        "http://a",
        "http://a?b",
        "https://127.0.0.1:8080/x",
        "http://[::1]:8080/x",
        "http://[v7.a:b]/",
        "*",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(buf, sizeof buf, "OPTIONS %s HTTP/1.1\r\nHost: a\r\n\r\n", ok[i]);
        if (parse(buf) <= 0)
            fail_msg("case %zu (%s) refused: %d", i, ok[i], parse(buf));
        assert_int_equal(req.target_len, strlen(ok[i]));
    }
}

/* Host values RFC 9112 3.2 and RFC 3986 3.2.2 allow, the empty one among them. */
static void test_hosts_accepted(void **state)
{
    static const char *ok[] = {
        "", "a", "example.com", "EXAMPLE.com:8080", "a:", "127.0.0.1:80", "999.1.1.1",
        "a_b-c~d", "%41b", "a!$&'()*+,;=b", "[::1]", "[::1]:8080", "[2001:db8::1]",
        "[::ffff:1.2.3.4]:1", "[V1f.a:b!]", "xn--caf-dma.example",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ok[i]);
        if (parse(buf) <= 0)
            fail_msg("case %zu (%s) refused: %d", i, ok[i], parse(buf));
        assert_non_null(req.host);
        assert_int_equal(req.host->value_len, strlen(ok[i]));
    }
}

/* chunked last: framing is known. Empty list elements are ignored (RFC 9110 5.6.1). */
static void test_transfer_codings_accepted(void **state)
{
    static const char *ok[] = {
        "chunked", "Chunked", "CHUNKED", ", chunked", "chunked,", " , chunked , ,",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
                 ok[i]);
        if (parse(buf) <= 0)
            fail_msg("case %zu (%s) refused: %d", i, ok[i], parse(buf));
        assert_true(req.chunked);
    }
    assert_true(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n") > 0);
    assert_true(req.chunked);
}

static void test_nul_in_value_refused(void **state)
{
    const char s[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    size_t scanned = 0;
    assert_int_equal(lh_http_parse_head(s, sizeof s - 1, &scanned, 8192, &req), -400);
}

static void test_bare_lf_refused_before_end(void **state)
{
    /* a bare LF is refused as soon as it arrives, not when the head ends */
    const char *s = "GET / HTTP/1.1\nHost";
    size_t scanned = 0;
    assert_int_equal(lh_http_parse_head(s, strlen(s), &scanned, 8192, &req), -400);
}

static void test_cr_split_across_reads(void **state)
{
    const char *s = "GET / HTTP/1.1\rX";
    size_t scanned = 0;
    assert_int_equal(lh_http_parse_head(s, strlen(s) - 1, &scanned, 8192, &req), 0);
    assert_int_equal(lh_http_parse_head(s, strlen(s), &scanned, 8192, &req), -400);
}

static void test_limits_414_and_431(void **state)
{
    char buf[4096];
    size_t scanned = 0;
    /* a request line longer than the limit, unfinished: 414 */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "GET /", 5);
    assert_int_equal(lh_http_parse_head(buf, 1100, &scanned, 1024, &req), -414);
    /* a short request line but too many header bytes: 431 */
    int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\nX: %0900d\r\nY: %0300d\r\n\r\n", 0, 0);
    scanned = 0;
    assert_int_equal(lh_http_parse_head(buf, (size_t)n, &scanned, 1024, &req), -431);
    /* unfinished and too long, with the request line complete: 431 */
    scanned = 0;
    assert_int_equal(lh_http_parse_head(buf, (size_t)n - 2, &scanned, 1024, &req), -431);
    /* the same head under a larger limit parses */
    scanned = 0;
    assert_int_equal(lh_http_parse_head(buf, (size_t)n, &scanned, 2048, &req), n);
}

static void test_too_many_headers(void **state)
{
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < LH_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X%d: y\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    size_t scanned = 0;
    assert_int_equal(lh_http_parse_head(buf, n, &scanned, 8192, &req), -431);
}

static void test_identical_content_lengths_accepted(void **state)
{
    assert_true(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n") > 0);
    assert_int_equal(req.content_length, 3);
}

static void test_methods(void **state)
{
    assert_true(lh_http_method_known("GET", 3));
    assert_true(lh_http_method_known("PATCH", 5));
    assert_true(lh_http_method_known("OPTIONS", 7));
    assert_false(lh_http_method_known("get", 3));
    assert_false(lh_http_method_known("FOO", 3));
    assert_false(lh_http_method_known("GETX", 4));
}

/* ---- chunked ---- */

static int dechunk(const char *in, char *out, size_t *produced, size_t *consumed)
{
    struct lh_chunked c = {0};
    return lh_chunked_decode(&c, in, strlen(in), out, consumed, produced, 1024);
}

static void test_chunked_basic(void **state)
{
    char out[64];
    size_t made, used;
    const char *in = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    assert_int_equal(dechunk(in, out, &made, &used), 1);
    assert_int_equal(made, 11);
    assert_memory_equal(out, "hello world", 11);
    assert_string_equal(in + used, "NEXT");
}

static void test_chunked_byte_by_byte_in_place(void **state)
{
    char buf[128];
    const char *in = "A\r\n0123456789\r\n1\r\nx\r\n0\r\n\r\n";
    strcpy(buf, in);
    struct lh_chunked c = {0};
    size_t len = strlen(in), raw = 0, body = 0;
    int rc = 0;
    /* feed one more byte each time, decoding in place as the server does */
    for (size_t avail = 1; avail <= len && rc == 0; avail++) {
        size_t used, made;
        rc = lh_chunked_decode(&c, buf + raw, avail - raw, buf + body, &used, &made, 1024);
        raw += used;
        body += made;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(raw, len);
    assert_int_equal(body, 11);
    assert_memory_equal(buf, "0123456789x", 11);
}

static void test_chunked_refused(void **state)
{
    static const char *bad[] = {
        "0x5\r\nhello\r\n0\r\n\r\n",      /* 0x prefix */
        "5\r\nhelloXX0\r\n\r\n",           /* data without its CRLF */
        " 5\r\nhello\r\n0\r\n\r\n",        /* leading space */
        "5 \r\nhello\r\n0\r\n\r\n",        /* space after size */
        "-5\r\nhello\r\n0\r\n\r\n",
        "\r\n",                            /* no size */
        "5\nhello\r\n0\r\n\r\n",           /* bare LF */
        "ffffffffffffffffff\r\n",          /* overflow */
        "5;a\x01\r\nhello\r\n0\r\n\r\n",   /* control byte in extension */
        "0\r\nX: a\x01\r\n\r\n",           /* control byte in trailer */
        /* item 22: chunk-ext and trailer grammar (RFC 9112 7.1.1, 7.1.2) */
        "2;\r\naa\r\n0\r\n\r\n",           /* empty extension name */
        "2;;a\r\naa\r\n0\r\n\r\n",
        "2;a;\r\naa\r\n0\r\n\r\n",
        "2 \r\naa\r\n0\r\n\r\n",           /* BWS without ';' */
        "2;=b\r\naa\r\n0\r\n\r\n",
        "2;a=\r\naa\r\n0\r\n\r\n",         /* '=' without a value */
        "2;a b\r\naa\r\n0\r\n\r\n",
        "2;a=b c\r\naa\r\n0\r\n\r\n",
        "2;a \r\naa\r\n0\r\n\r\n",         /* BWS before CRLF */
        "2;a=b \r\naa\r\n0\r\n\r\n",
        "2;a(b\r\naa\r\n0\r\n\r\n",        /* not a token */
        "2;a=b(c\r\naa\r\n0\r\n\r\n",
        "2;a=\"b\r\naa\r\n0\r\n\r\n",      /* unclosed quoted value */
        "2;a=\"b\\\"\r\naa\r\n0\r\n\r\n",  /* the quote is escaped */
        "2;a=\"b\"c\r\naa\r\n0\r\n\r\n",   /* bytes after the quote */
        "2;a=\"\x01\"\r\naa\r\n0\r\n\r\n",
        "2;a=\"\\\x01\"\r\naa\r\n0\r\n\r\n",
        "2;a\x80\r\naa\r\n0\r\n\r\n",
        "0\r\nNo-colon\r\n\r\n",            /* a trailer line is a field line */
        "0\r\nX : y\r\n\r\n",
        "0\r\n: y\r\n\r\n",
        "0\r\n y: z\r\n\r\n",
        "0\r\nX: y\r\n folded\r\n\r\n",
        "0\r\nX(: y\r\n\r\n",
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[64];
        size_t made, used;
        if (dechunk(bad[i], out, &made, &used) != -1) {
            print_error("case %zu was accepted\n", i);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* Extensions that follow the grammar are accepted and ignored; so are trailers. */
static void test_chunked_extensions_accepted(void **state)
{
    static const char *ok[] = {
        "2;a\r\nxy\r\n0\r\n\r\n",
        "2;a=b\r\nxy\r\n0\r\n\r\n",
        "2;a;b=c;d\r\nxy\r\n0;e\r\n\r\n",
        "2 ; a = b ;\tc\r\nxy\r\n0\r\n\r\n",
        "2;a=\"\"\r\nxy\r\n0\r\n\r\n",
        "2;a=\"b c; \\\"d\\\\\" ;e=\"\xc3\xa9\"\r\nxy\r\n0\r\n\r\n",
        "2;a=b\r\nxy\r\n0\r\nX:\r\nY-Z: v w \r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char out[64];
        size_t made, used;
        if (dechunk(ok[i], out, &made, &used) != 1)
            fail_msg("case %zu was refused", i);
        assert_int_equal(made, 2);
        assert_memory_equal(out, "xy", 2);
        assert_int_equal(used, strlen(ok[i]));
    }
}

static void test_chunked_trailer_cap(void **state)
{
    char in[2048], out[64];
    int n = snprintf(in, sizeof in, "0\r\nX: %01500d\r\n\r\n", 0);
    struct lh_chunked c = {0};
    size_t used, made;
    assert_int_equal(lh_chunked_decode(&c, in, (size_t)n, out, &used, &made, 1024), -1);
}

/* The authority of target, or "(none)" when it is not absolute-form. */
static const char *authority(const char *target)
{
    static char buf[64];
    size_t n = 99;
    const char *a = lh_http_target_authority(target, strlen(target), &n);
    if (!a)
        return "(none)";
    snprintf(buf, sizeof buf, "%.*s", (int)n, a);
    return buf;
}

static void test_target_authority(void **state)
{
    assert_string_equal(authority("http://a.example:8080/x?y"), "a.example:8080");
    assert_string_equal(authority("http://a?b"), "a");
    assert_string_equal(authority("HTTP://[::1]:1"), "[::1]:1");
    assert_string_equal(authority("http:///x"), "");
    assert_string_equal(authority("/x://y"), "(none)"); /* origin-form first */
    assert_string_equal(authority("/x"), "(none)");
    assert_string_equal(authority("*"), "(none)");
    assert_string_equal(authority("a:b"), "(none)");
    assert_string_equal(authority(""), "(none)");
}

/* lh_http_host of the request head s. */
static const char *host_of(const char *s)
{
    static char buf[64];
    size_t n = 99;
    assert_true(parse(s) > 0);
    const char *h = lh_http_host(&req, &n);
    assert_non_null(h);
    snprintf(buf, sizeof buf, "%.*s", (int)n, h);
    return buf;
}

static void test_host_without_port(void **state)
{
    assert_string_equal(host_of("GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"),
                        "a.example");
    assert_string_equal(host_of("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"), "a.example");
    assert_string_equal(host_of("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), "a");
    assert_string_equal(host_of("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), "[::1]");
    assert_string_equal(host_of("GET / HTTP/1.1\r\nHost: [v1.a:b]\r\n\r\n"), "[v1.a:b]");
    assert_string_equal(host_of("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n"), "10.0.0.1");
    assert_string_equal(host_of("GET / HTTP/1.1\r\nHost:\r\n\r\n"), "");
    assert_string_equal(host_of("GET / HTTP/1.0\r\n\r\n"), "");
    /* an absolute-form target's authority replaces Host (RFC 9112 3.2.2) */
    assert_string_equal(host_of("GET http://b:81/x HTTP/1.1\r\nHost: a:80\r\n\r\n"), "b");
    assert_string_equal(host_of("GET http://[::2]?q HTTP/1.0\r\n\r\n"), "[::2]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_value_whitespace_trimmed),
        cmocka_unit_test(test_incremental_byte_by_byte),
        cmocka_unit_test(test_http10_without_host),
        cmocka_unit_test(test_leading_empty_lines_ignored),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_chunked_and_expect),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_targets_accepted),
        cmocka_unit_test(test_hosts_accepted),
        cmocka_unit_test(test_transfer_codings_accepted),
        cmocka_unit_test(test_nul_in_value_refused),
        cmocka_unit_test(test_bare_lf_refused_before_end),
        cmocka_unit_test(test_cr_split_across_reads),
        cmocka_unit_test(test_limits_414_and_431),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_identical_content_lengths_accepted),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_chunked_basic),
        cmocka_unit_test(test_chunked_byte_by_byte_in_place),
        cmocka_unit_test(test_chunked_refused),
        cmocka_unit_test(test_chunked_extensions_accepted),
        cmocka_unit_test(test_chunked_trailer_cap),
        cmocka_unit_test(test_target_authority),
        cmocka_unit_test(test_host_without_port),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
