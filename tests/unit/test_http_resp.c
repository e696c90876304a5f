/* Unit tests for http.c's response side: the strict response-head parser of the
 * outbound client, the body framing it leads to, and chunked response bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http.h"

static struct lh_response_head resp;

/* Parse s[0..len) in one go with an 8 KiB limit. */
static int parse_n(const char *s, size_t len)
{
    size_t scanned = 0;
    return lh_http_parse_response_head(s, len, &scanned, 8192, &resp);
}

static int parse(const char *s) { return parse_n(s, strlen(s)); }

/* The value of header name in resp, as a string ("(none)" when absent). */
static const char *header(const char *name)
{
    static char buf[128];
    const struct lh_header *h = lh_http_response_header(&resp, name);
    if (!h)
        return "(none)";
    snprintf(buf, sizeof buf, "%.*s", (int)h->value_len, h->value);
    return buf;
}

/* ---- heads as real servers send them ---- */

/* Python's http.server (SimpleHTTPRequestHandler) answers in HTTP/1.0. */
static void test_python_http_server(void **state)
{
    const char *s = "HTTP/1.0 200 OK\r\n"
                    "Server: SimpleHTTP/0.6 Python/3.11.2\r\n"
                    "Date: Tue, 02 Dec 2025 10:00:00 GMT\r\n"
                    "Content-type: text/html\r\n"
                    "Content-Length: 1234\r\n"
                    "Last-Modified: Mon, 01 Dec 2025 09:00:00 GMT\r\n"
                    "\r\n"
                    "<!DOCTYPE html>";
    int n = parse(s);
    assert_int_equal(n, (int)(strstr(s, "<!DOCTYPE") - s));
    assert_int_equal(resp.head_len, (uint32_t)n);
    assert_int_equal(resp.version, 10);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.reason_len, 2);
    assert_memory_equal(resp.reason, "OK", 2);
    assert_int_equal(resp.nheaders, 5);
    assert_int_equal(resp.content_length, 1234);
    assert_false(resp.chunked);
    assert_false(resp.te_other);
    assert_string_equal(header("server"), "SimpleHTTP/0.6 Python/3.11.2");
    assert_string_equal(header("CONTENT-TYPE"), "text/html");
    assert_string_equal(header("etag"), "(none)");
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_LENGTH);
    assert_false(lh_http_response_reusable(&resp, false)); /* 1.0 without keep-alive */

    /* its error pages say Connection: close */
    assert_true(parse("HTTP/1.0 404 File not found\r\n"
                      "Server: SimpleHTTP/0.6 Python/3.11.2\r\n"
                      "Date: Tue, 02 Dec 2025 10:00:00 GMT\r\n"
                      "Connection: close\r\n"
                      "Content-Type: text/html;charset=utf-8\r\n"
                      "Content-Length: 335\r\n\r\n") > 0);
    assert_int_equal(resp.status, 404);
    assert_memory_equal(resp.reason, "File not found", resp.reason_len);
    assert_true(resp.conn_close);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_LENGTH);
    assert_false(lh_http_response_reusable(&resp, false));
}

static void test_nginx(void **state)
{
    const char *s = "HTTP/1.1 200 OK\r\n"
                    "Server: nginx/1.22.1\r\n"
                    "Date: Tue, 02 Dec 2025 10:00:00 GMT\r\n"
                    "Content-Type: text/html\r\n"
                    "Content-Length: 615\r\n"
                    "Last-Modified: Tue, 13 Dec 2022 15:53:53 GMT\r\n"
                    "Connection: keep-alive\r\n"
                    "ETag: \"6398a0b1-267\"\r\n"
                    "Accept-Ranges: bytes\r\n"
                    "\r\n";
    assert_int_equal(parse(s), (int)strlen(s));
    assert_int_equal(resp.version, 11);
    assert_int_equal(resp.nheaders, 8);
    assert_int_equal(resp.content_length, 615);
    assert_true(resp.conn_keepalive);
    assert_false(resp.conn_close);
    assert_string_equal(header("etag"), "\"6398a0b1-267\"");
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_LENGTH);
    assert_true(lh_http_response_reusable(&resp, false));
    /* the same head answering HEAD: no body follows */
    assert_int_equal(lh_http_response_framing(&resp, true), LH_FRAMING_NONE);
    assert_true(lh_http_response_reusable(&resp, true));

    /* an error page of nginx's own, closing the connection */
    assert_true(parse("HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n"
                      "Content-Type: text/html\r\nContent-Length: 150\r\n"
                      "Connection: close\r\n\r\n") > 0);
    assert_int_equal(resp.status, 400);
    assert_true(resp.conn_close);
    assert_false(lh_http_response_reusable(&resp, false));
}

/* A chunked response with trailers: its body ends exactly where the next response on
 * the connection starts. */
static void test_chunked_response_with_trailers(void **state)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s",
             "HTTP/1.1 200 OK\r\n"
             "Server: nginx\r\n"
             "Content-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n"
             "Connection: keep-alive\r\n"
             "Trailer: Expires\r\n"
             "\r\n"
             "7\r\nMozilla\r\n"
             "9;ext=\"a b\"\r\nDeveloper\r\n"
             "7\r\nNetwork\r\n"
             "0\r\n"
             "Expires: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
             "Server-Timing: db;dur=53\r\n"
             "\r\n"
             "HTTP/1.1 204 No Content\r\n\r\n");
    size_t len = strlen(buf);
    int head = parse_n(buf, len);
    assert_true(head > 0);
    assert_true(resp.chunked);
    assert_int_equal(resp.content_length, -1);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_CHUNKED);
    assert_true(lh_http_response_reusable(&resp, false));

    /* the decoder takes response bodies as it takes request bodies (its byte by byte
     * and in-place use is tested in test_http.c), trailers and all */
    struct lh_chunked c = {0};
    char body[64];
    size_t used, made;
    assert_int_equal(lh_chunked_decode(&c, buf + head, len - (size_t)head, body, &used, &made,
                                       1024), 1);
    assert_int_equal(made, 23);
    assert_memory_equal(body, "MozillaDeveloperNetwork", 23);
    const char *next = buf + head + used;
    assert_int_equal(parse(next), (int)strlen(next));
    assert_int_equal(resp.status, 204);
}

/* The same body in one read; trailers beyond max_trailer are refused. */
static void test_chunked_response_trailer_cap(void **state)
{
    const char *body = "4\r\nWiki\r\n0\r\nX-Checksum: 0123456789abcdef\r\n\r\n";
    char out[64];
    size_t used, made;
    struct lh_chunked c = {0};
    assert_int_equal(lh_chunked_decode(&c, body, strlen(body), out, &used, &made, 1024), 1);
    assert_int_equal(made, 4);
    assert_int_equal(used, strlen(body));
    memset(&c, 0, sizeof c);
    assert_int_equal(lh_chunked_decode(&c, body, strlen(body), out, &used, &made, 16), -1);
}

static void test_no_content_and_not_modified(void **state)
{
    assert_true(parse("HTTP/1.1 204 No Content\r\nDate: Tue, 02 Dec 2025 10:00:00 GMT\r\n"
                      "Server: nginx\r\n\r\n") > 0);
    assert_int_equal(resp.status, 204);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_NONE);
    assert_true(lh_http_response_reusable(&resp, false));
    /* Content-Length: 0 on a 204 is common and harmless */
    assert_true(parse("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_NONE);
    /* a 304 carries the length the 200 would have had, and no body */
    assert_true(parse("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 615\r\n\r\n") > 0);
    assert_int_equal(resp.content_length, 615);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_NONE);
    assert_true(lh_http_response_reusable(&resp, false));
    /* even its Transfer-Encoding only says what a 200 would have had (RFC 9112 6.1) */
    assert_true(parse("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_NONE);
}

/* 100 Continue is an interim response: the final one follows on the same bytes. */
static void test_continue_then_final(void **state)
{
    const char *s = "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
    int n = parse(s);
    assert_int_equal(n, 25);
    assert_int_equal(resp.status, 100);
    assert_int_equal(resp.nheaders, 0);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_NONE);
    assert_false(lh_http_response_reusable(&resp, false)); /* not the end of the exchange */
    int m = parse(s + n);
    assert_int_equal((size_t)n + (size_t)m, strlen(s) - 2);
    assert_int_equal(resp.status, 200);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_LENGTH);
    assert_true(lh_http_response_reusable(&resp, false));
    /* 101 Switching Protocols: no body, and the connection is no longer HTTP */
    assert_true(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n\r\n") > 0);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_NONE);
    assert_false(lh_http_response_reusable(&resp, false));
}

static void test_status_line_forms(void **state)
{
    /* no SP and no reason: many servers send it */
    assert_int_equal(parse("HTTP/1.1 200\r\n\r\n"), 16);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.reason_len, 0);
    /* SP and an empty reason */
    assert_int_equal(parse("HTTP/1.1 503 \r\n\r\n"), 17);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.reason_len, 0);
    /* the reason is taken as sent: inner and edge spaces, HTAB, obs-text */
    assert_true(parse("HTTP/1.1 200  Tout\tva bien \xc3\xa9 \r\n\r\n") > 0);
    assert_int_equal(resp.reason_len, strlen(" Tout\tva bien \xc3\xa9 "));
    assert_memory_equal(resp.reason, " Tout\tva bien \xc3\xa9 ", resp.reason_len);
    /* the range 100..999 */
    assert_true(parse("HTTP/1.1 999 Whatever\r\n\r\n") > 0);
    assert_int_equal(resp.status, 999);
    assert_true(parse("HTTP/1.0 100 Continue\r\n\r\n") > 0);
    assert_int_equal(resp.status, 100);
    assert_int_equal(resp.version, 10);
}

static void test_fields(void **state)
{
    assert_true(parse("HTTP/1.1 200 OK\r\nX-A:   a b \t\r\nX-B:\r\nX-C: caf\xc3\xa9\xff\r\n"
                      "Content-Length: 0\r\n\r\n") > 0);
    assert_int_equal(resp.nheaders, 4);
    assert_string_equal(header("x-a"), "a b");
    assert_string_equal(header("x-b"), "");
    assert_string_equal(header("x-c"), "caf\xc3\xa9\xff");
    /* the first of two lines with one name */
    assert_true(parse("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n") > 0);
    assert_string_equal(header("set-cookie"), "a=1");
}

static void test_content_length(void **state)
{
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") > 0);
    assert_int_equal(resp.content_length, 5);
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5,5\r\n\r\n") > 0);
    assert_int_equal(resp.content_length, 5);
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 5 , 005\r\nContent-Length: 5\r\n\r\n") > 0);
    assert_int_equal(resp.content_length, 5);
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_int_equal(resp.content_length, 0);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_LENGTH);
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\n") > 0);
    assert_int_equal(resp.content_length, 999999999999999999LL);
    /* absent: the body runs until close, and the connection cannot be reused */
    assert_true(parse("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n") > 0);
    assert_int_equal(resp.content_length, -1);
    assert_int_equal(lh_http_response_framing(&resp, false), LH_FRAMING_CLOSE);
    assert_false(lh_http_response_reusable(&resp, false));
    assert_int_equal(lh_http_response_framing(&resp, true), LH_FRAMING_NONE);
    assert_true(lh_http_response_reusable(&resp, true));
}

/* Transfer-Encoding value(s), and the framing each leads to. */
static void test_transfer_codings(void **state)
{
    static const struct {
        const char *te;
        bool chunked, other;
        enum lh_body_framing framing;
    } cases[] = {
        {"Transfer-Encoding: chunked", true, false, LH_FRAMING_CHUNKED},
        {"Transfer-Encoding: CHUNKED", true, false, LH_FRAMING_CHUNKED},
        {"Transfer-Encoding: , chunked ,", true, false, LH_FRAMING_CHUNKED},
        {"Transfer-Encoding: gzip, chunked", true, true, LH_FRAMING_CHUNKED},
        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", true, true, LH_FRAMING_CHUNKED},
        /* RFC 9112 6.3 item 4: chunked not last, the body runs until close */
        {"Transfer-Encoding: gzip", false, true, LH_FRAMING_CLOSE},
        {"Transfer-Encoding: chunked, gzip", false, true, LH_FRAMING_CLOSE},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", false, true,
         LH_FRAMING_CLOSE},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n%s\r\n\r\n", cases[i].te);
        if (parse(buf) <= 0)
            fail_msg("case %zu refused", i);
        assert_int_equal(resp.chunked, cases[i].chunked);
        assert_int_equal(resp.te_other, cases[i].other);
        assert_int_equal(resp.content_length, -1);
        assert_int_equal(lh_http_response_framing(&resp, false), cases[i].framing);
        assert_int_equal(lh_http_response_reusable(&resp, false),
                         cases[i].framing == LH_FRAMING_CHUNKED);
        assert_int_equal(lh_http_response_framing(&resp, true), LH_FRAMING_NONE);
    }
}

static void test_connection_tokens(void **state)
{
    assert_true(parse("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_true(resp.conn_close);
    assert_false(lh_http_response_reusable(&resp, false));
    assert_true(parse("HTTP/1.0 200 OK\r\nConnection: foo,Keep-Alive\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_true(resp.conn_keepalive);
    assert_true(lh_http_response_reusable(&resp, false));
    /* close wins over keep-alive, in one line or two */
    assert_true(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n"
                      "Content-Length: 0\r\n\r\n") > 0);
    assert_false(lh_http_response_reusable(&resp, false));
    assert_true(parse("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n"
                      "Content-Length: 0\r\n\r\n") > 0);
    assert_false(lh_http_response_reusable(&resp, false));
    /* "closed" is not "close" */
    assert_true(parse("HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_false(resp.conn_close);
    assert_true(lh_http_response_reusable(&resp, false));
    /* HTTP/1.0 keep-alive, but the body runs until close */
    assert_true(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n") > 0);
    assert_false(lh_http_response_reusable(&resp, false));
}

/* ---- refused ---- */

/* Each of these is malformed or ambiguous: -1. */
static const char *const refused[] = {
    /* the status line */
    "HTTP/2.0 200 OK\r\n\r\n",
    "HTTP/1.2 200 OK\r\n\r\n",
    "HTTP/0.9 200 OK\r\n\r\n",
    "HTTP/1 200 OK\r\n\r\n",
    "HTTP/1.10 200 OK\r\n\r\n",
    "http/1.1 200 OK\r\n\r\n",
    "HTTPS/1.1 200 OK\r\n\r\n",
    "ICY 200 OK\r\n\r\n",
    " HTTP/1.1 200 OK\r\n\r\n",
    "\r\nHTTP/1.1 200 OK\r\n\r\n",             /* an empty line before */
    "HTTP/1.1  200 OK\r\n\r\n",               /* two spaces */
    "HTTP/1.1\t200 OK\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",                 /* two digits */
    "HTTP/1.1 20\r\n\r\n",
    "HTTP/1.1 2000 OK\r\n\r\n",               /* four */
    "HTTP/1.1 2x0 OK\r\n\r\n",                /* letters */
    "HTTP/1.1 OK\r\n\r\n",
    "HTTP/1.1 +20 OK\r\n\r\n",
    "HTTP/1.1 -20 OK\r\n\r\n",
    "HTTP/1.1 099 Low\r\n\r\n",
    "HTTP/1.1 000\r\n\r\n",
    "HTTP/1.1 200OK\r\n\r\n",
    "HTTP/1.1 200\tOK\r\n\r\n",
    "HTTP/1.1 200 O\x01K\r\n\r\n",            /* a control byte in the reason */
    "HTTP/1.1 200 OK\x7f\r\n\r\n",
    "HTTP/1.1\r\n\r\n",
    "\r\n\r\n",
    /* line endings */
    "HTTP/1.1 200 OK\n\n",
    "HTTP/1.1 200 OK\r\nServer: x\n\r\n",
    "HTTP/1.1 200 OK\r\nServer: x\rX: y\r\n\r\n",
    "HTTP/1.1 200 OK\r\r\n\r\n",
    /* field lines */
    "HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",       /* obs-fold */
    "HTTP/1.1 200 OK\r\nX: 1\r\n\tfolded\r\n\r\n",
    "HTTP/1.1 200 OK\r\n X: 1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",     /* space before the colon */
    "HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\n",
    "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
    "HTTP/1.1 200 OK\r\nNo-colon\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX(y): z\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX: a\x01" "b\r\n\r\n",           /* control bytes */
    "HTTP/1.1 200 OK\r\nX: a\x1b[31m\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n",
    /* Content-Length */
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 6\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", /* overflow */
    "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n\r\n",  /* 19 digits */
    "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: ,5\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5,,5\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5;q\r\n\r\n",
    /* Transfer-Encoding */
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked x\r\n\r\n",
    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",  /* faulty in 1.0 */
    /* no body, yet framing fields that say there is one */
    "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n",
};

static void test_refused(void **state)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int got = parse(refused[i]);
        if (got != -1) {
            print_error("case %zu: got %d, want -1\n", i, got);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_nul_refused(void **state)
{
    static const char value[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";
    static const char reason[] = "HTTP/1.1 200 O\0K\r\n\r\n";
    static const char name[] = "HTTP/1.1 200 OK\r\nX\0: b\r\n\r\n";
    assert_int_equal(parse_n(value, sizeof value - 1), -1);
    assert_int_equal(parse_n(reason, sizeof reason - 1), -1);
    assert_int_equal(parse_n(name, sizeof name - 1), -1);
}

/* A bare LF is refused as soon as it arrives, before the head ends; a CR that ends
 * what came so far waits for the byte after it. */
static void test_bare_cr_lf_refused_on_arrival(void **state)
{
    assert_int_equal(parse("HTTP/1.1 200 OK\nServer"), -1);
    const char *s = "HTTP/1.1 200 OK\rX";
    size_t scanned = 0;
    assert_int_equal(lh_http_parse_response_head(s, 16, &scanned, 8192, &resp), 0);
    assert_int_equal(scanned, 15);
    assert_int_equal(lh_http_parse_response_head(s, 17, &scanned, 8192, &resp), -1);
}

/* ---- limits ---- */

static void test_too_large(void **state)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\nX: %0900d\r\nY: %0300d\r\n\r\n", 0, 0);
    size_t scanned = 0;
    assert_int_equal(lh_http_parse_response_head(buf, (size_t)n, &scanned, 1024, &resp), -2);
    /* unfinished, and already too long */
    scanned = 0;
    assert_int_equal(lh_http_parse_response_head(buf, (size_t)n - 2, &scanned, 1024, &resp), -2);
    /* unfinished, as long as allowed: wait for more */
    scanned = 0;
    assert_int_equal(lh_http_parse_response_head(buf, 1024, &scanned, 1024, &resp), 0);
    /* exactly max_head bytes, and one more */
    scanned = 0;
    assert_int_equal(lh_http_parse_response_head(buf, (size_t)n, &scanned, (size_t)n, &resp), n);
    scanned = 0;
    assert_int_equal(lh_http_parse_response_head(buf, (size_t)n, &scanned, (size_t)n - 1, &resp), -2);
    /* a status line longer than the limit, never ended */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "HTTP/1.1 200 ", 13);
    scanned = 0;
    assert_int_equal(lh_http_parse_response_head(buf, 1100, &scanned, 1024, &resp), -2);
}

static void test_too_many_headers(void **state)
{
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < LH_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X%d: y\r\n", i);
    size_t full = n;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    assert_int_equal(parse_n(buf, n), (int)n); /* LH_MAX_HEADERS fit */
    assert_int_equal(resp.nheaders, LH_MAX_HEADERS);
    snprintf(buf + full, sizeof buf - full, "Z: z\r\n\r\n");
    assert_int_equal(parse_n(buf, full + 8), -2);
}

/* ---- incremental ---- */

/* Feeding s one byte more each time with one *scanned ends in what parsing it whole
 * gives; until then (and for a good head, until its last byte) the answer is 0. */
static void test_byte_by_byte(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n"
        "Date: Tue, 02 Dec 2025 10:00:00 GMT\r\nContent-Length: 12\r\n\r\nhello world\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 204\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/7.1 200 OK\r\n\r\n",
    };
    static struct lh_response_head whole;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        const char *s = heads[i];
        size_t len = strlen(s), scanned = 0;
        int want = lh_http_parse_response_head(s, len, &scanned, 8192, &whole);
        int got = 0;
        scanned = 0;
        size_t n;
        for (n = 1; n <= len && got == 0; n++)
            got = lh_http_parse_response_head(s, n, &scanned, 8192, &resp);
        if (got != want)
            fail_msg("case %zu: byte by byte %d, whole %d", i, got, want);
        if (want > 0) {
            assert_int_equal(n - 1, (size_t)want); /* complete at its last byte */
            assert_int_equal(resp.status, whole.status);
            assert_int_equal(resp.nheaders, whole.nheaders);
            assert_int_equal(resp.content_length, whole.content_length);
            assert_int_equal(resp.chunked, whole.chunked);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_http_server),
        cmocka_unit_test(test_nginx),
        cmocka_unit_test(test_chunked_response_with_trailers),
        cmocka_unit_test(test_chunked_response_trailer_cap),
        cmocka_unit_test(test_no_content_and_not_modified),
        cmocka_unit_test(test_continue_then_final),
        cmocka_unit_test(test_status_line_forms),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_codings),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_nul_refused),
        cmocka_unit_test(test_bare_cr_lf_refused_on_arrival),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_byte_by_byte),
    };
    return cmocka_run_group_tests_name("http_resp", tests, NULL, NULL);
}
