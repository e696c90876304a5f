/* Unit tests for response.c: headers, bodies and the rendered header block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "response.h"

static struct lh_response r;
static char out[4096];
static const char date[] = "Sun, 06 Nov 1994 08:49:37 GMT";

static const char *render(int version, int keepalive)
{
    size_t n = lh_response_render_head(&r, version, keepalive, date, out, sizeof out - 1);
    assert_true(n > 0);
    out[n] = '\0';
    return out;
}

static void test_basic_render(void **state)
{
    lh_response_init(&r, 200);
    assert_int_equal(lh_response_header(&r, "Content-Type", "text/plain"), 0);
    lh_response_body(&r, "hello", 5, NULL);
    assert_string_equal(render(11, 1), "HTTP/1.1 200 OK\r\n"
                                       "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                       "Server: luahttpd/0.1.0\r\n"
                                       "Content-Type: text/plain\r\n"
                                       "Content-Length: 5\r\n\r\n");
    assert_int_equal(lh_response_body_bytes(&r), 5);
    lh_response_free(&r);
}

static void test_connection_header(void **state)
{
    lh_response_init(&r, 204);
    assert_non_null(strstr(render(11, 0), "Connection: close\r\n"));
    assert_null(strstr(render(11, 1), "Connection:"));
    assert_non_null(strstr(render(10, 1), "Connection: keep-alive\r\n"));
    assert_non_null(strstr(render(10, 0), "HTTP/1.0 204 No Content\r\n"));
    /* 204 and 304 carry no Content-Length */
    assert_null(strstr(render(11, 1), "Content-Length"));
}

static void test_head_keeps_length_sends_nothing(void **state)
{
    lh_response_init(&r, 200);
    r.no_body = true;
    lh_response_body(&r, "abcdef", 6, NULL);
    assert_non_null(strstr(render(11, 1), "Content-Length: 6\r\n"));
    assert_int_equal(lh_response_body_bytes(&r), 0);
}

/* A streamed body: chunked on HTTP/1.1 (HEAD too: the headers a GET gets), no
 * framing header on HTTP/1.0, none at all for a status without a body; never a
 * Content-Length. */
static void test_stream_render(void **state)
{
    lh_response_init(&r, 200);
    lh_response_header(&r, "Content-Type", "text/csv");
    lh_response_stream(&r);
    assert_int_equal(r.body_kind, LH_BODY_STREAM);
    assert_true(lh_response_streams(&r));
    assert_int_equal(lh_response_body_bytes(&r), 0);
    assert_string_equal(render(11, 1), "HTTP/1.1 200 OK\r\n"
                                       "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                       "Server: luahttpd/0.1.0\r\n"
                                       "Content-Type: text/csv\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n");
    assert_string_equal(render(10, 0), "HTTP/1.0 200 OK\r\n"
                                       "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                       "Server: luahttpd/0.1.0\r\n"
                                       "Content-Type: text/csv\r\n"
                                       "Connection: close\r\n\r\n");
    r.no_body = true; /* HEAD */
    assert_false(lh_response_streams(&r));
    assert_non_null(strstr(render(11, 1), "Transfer-Encoding: chunked\r\n"));
    r.no_body = false;
    r.status = 204;
    assert_false(lh_response_streams(&r));
    assert_null(strstr(render(11, 1), "Transfer-Encoding"));
    assert_null(strstr(out, "Content-Length"));
    /* an error page replaces the stream */
    lh_response_error(&r, 500);
    assert_false(lh_response_streams(&r));
    assert_non_null(strstr(render(11, 1), "Content-Length: "));
    lh_response_free(&r);
}

/* A stream of a known length (proxy()'s): its Content-Length on either version, no
 * chunked framing; a HEAD says the same. */
static void test_stream_of_known_length_render(void **state)
{
    lh_response_init(&r, 200);
    lh_response_stream(&r);
    r.known_length = 300000;
    assert_string_equal(render(11, 1), "HTTP/1.1 200 OK\r\n"
                                       "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                       "Server: luahttpd/0.1.0\r\n"
                                       "Content-Length: 300000\r\n\r\n");
    assert_string_equal(render(10, 1), "HTTP/1.0 200 OK\r\n"
                                       "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                       "Server: luahttpd/0.1.0\r\n"
                                       "Content-Length: 300000\r\n"
                                       "Connection: keep-alive\r\n\r\n");
    r.no_body = true;
    assert_non_null(strstr(render(11, 1), "Content-Length: 300000\r\n"));
    /* a body in memory says its own length, whatever was known before */
    r.no_body = false;
    lh_response_body(&r, "abc", 3, NULL);
    assert_non_null(strstr(render(11, 1), "Content-Length: 3\r\n"));
    lh_response_free(&r);
}

static void test_error_page(void **state)
{
    lh_response_init(&r, 200);
    lh_response_header(&r, "X-Gone", "1");
    lh_response_error(&r, 404);
    assert_int_equal(r.status, 404);
    assert_null(lh_response_get(&r, "X-Gone"));
    assert_string_equal(lh_response_get(&r, "content-type"), "text/html; charset=utf-8");
    assert_non_null(strstr(r.body, "404 Not Found"));
    assert_non_null(strstr(render(11, 1), "HTTP/1.1 404 Not Found\r\n"));
    static const char page503[] =
        "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
        "<body><h1>503 Service Unavailable</h1><hr><p>luahttpd</p></body></html>\n";
    lh_response_error(&r, 503);
    assert_int_equal(r.body_len, strlen(page503));
    assert_memory_equal(r.body, page503, strlen(page503));
    assert_non_null(strstr(render(11, 1), "Content-Length: 146\r\n"));
}

static void test_get_unset(void **state)
{
    lh_response_init(&r, 200);
    lh_response_header(&r, "A", "1");
    lh_response_header(&r, "B", "2");
    lh_response_header(&r, "a", "3");
    lh_response_unset(&r, "A");
    assert_null(lh_response_get(&r, "a"));
    assert_string_equal(lh_response_get(&r, "b"), "2");
    assert_int_equal(r.nheaders, 1);
}

static void test_store_full(void **state)
{
    lh_response_init(&r, 200);
    static char big[LH_RESP_MAX_STORE];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(lh_response_header(&r, "X", big), -1); /* with its NULs: too much */
    assert_int_equal(r.nheaders, 0);
    assert_int_equal(r.store_len, 0);
    for (int i = 0; i < LH_RESP_MAX_HEADERS; i++)
        assert_int_equal(lh_response_header(&r, "Y", "1"), 0);
    assert_int_equal(lh_response_header(&r, "Z", "1"), -1);
    assert_int_equal(r.nheaders, LH_RESP_MAX_HEADERS);
    lh_response_free(&r);
}

/* Past the inline room the headers move to the heap: 300 lines of 200 bytes (60 KB)
 * all stay, in order, and the head is rendered whole into a buffer large enough. */
static void test_headers_grow_onto_the_heap(void **state)
{
    lh_response_init(&r, 200);
    char name[16], value[201];
    memset(value, 'v', 200);
    value[200] = '\0';
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        assert_int_equal(lh_response_header(&r, name, value), 0);
    }
    assert_int_equal(r.nheaders, 300);
    assert_non_null(r.heap_headers);
    assert_non_null(r.heap_store);
    assert_string_equal(lh_response_name(&r, 0), "X-H0");
    assert_string_equal(lh_response_name(&r, 299), "X-H299");
    assert_string_equal(lh_response_value(&r, 150), value);
    /* too small a buffer: the length it needs comes back */
    size_t need = lh_response_render_head(&r, 11, 1, date, out, sizeof out);
    assert_true(need > sizeof out);
    char *big = malloc(need + 1);
    assert_int_equal(lh_response_render_head(&r, 11, 1, date, big, need), need);
    big[need] = '\0';
    assert_memory_equal(big + need - 4, "\r\n\r\n", 4);
    int n = 0;
    for (const char *p = big; (p = strstr(p, "\r\nX-H")) != NULL; p++)
        n++;
    assert_int_equal(n, 300);
    free(big);
    /* a move hands the heap store over; the source is empty and owns nothing */
    static struct lh_response moved;
    lh_response_move(&moved, &r);
    assert_int_equal(r.nheaders, 0);
    assert_null(r.heap_store);
    assert_int_equal(moved.nheaders, 300);
    assert_string_equal(lh_response_name(&moved, 299), "X-H299");
    lh_response_free(&moved); /* ASan would report a leak otherwise */
    assert_null(moved.heap_store);
    assert_int_equal(moved.nheaders, 0);
}

static void test_move_inline(void **state)
{
    static struct lh_response a, b;
    lh_response_init(&a, 201);
    lh_response_header(&a, "Set-Cookie", "a=1");
    lh_response_header(&a, "Set-Cookie", "b=2");
    lh_response_error(&a, 404); /* the body points into a's page */
    lh_response_header(&a, "X-After", "yes");
    lh_response_move(&b, &a);
    assert_string_equal(lh_response_get(&b, "x-after"), "yes");
    assert_non_null(strstr(b.body, "404 Not Found"));
    assert_true(b.body >= b.page && b.body < b.page + sizeof b.page);
    assert_int_equal(a.nheaders, 0);
    lh_response_free(&b);
}

/* A Date or Server header replaces the server's own: exactly one line each. */
static void test_own_date_and_server(void **state)
{
    lh_response_init(&r, 204);
    lh_response_header(&r, "date", "Mon, 01 Jan 2001 00:00:00 GMT");
    lh_response_header(&r, "SERVER", "mine");
    const char *h = render(11, 1);
    assert_null(strstr(h, "Date: Sun"));
    assert_null(strstr(h, "Server: luahttpd"));
    assert_non_null(strstr(h, "\r\ndate: Mon, 01 Jan 2001 00:00:00 GMT\r\n"));
    assert_non_null(strstr(h, "\r\nSERVER: mine\r\n"));
    lh_response_unset(&r, "Server");
    assert_non_null(strstr(render(11, 1), "\r\nServer: luahttpd/"));
    lh_response_clear_headers(&r);
    assert_non_null(strstr(render(11, 1), "\r\nDate: Sun, 06 Nov 1994"));
}

/* The byte table against RFC 9110's own words. */
static void test_name_and_value_bytes(void **state)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        bool token = c != 0 && strchr(tchar, c) != NULL;
        assert_int_equal(lh_response_name_class(&b, 1) != LH_HNAME_BAD, token);
        bool vchar = c == '\t' || c == ' ' || (c > 0x20 && c < 0x7f) || c >= 0x80;
        assert_int_equal(lh_response_value_ok(&b, 1), vchar);
    }
    assert_true(lh_response_value_ok("", 0));
    assert_false(lh_response_value_ok("a\r\nB: c", 7));
    assert_false(lh_response_value_ok("a\0b", 3));
    assert_true(lh_response_value_ok("a\tb c", 5));
}

static void test_name_classes(void **state)
{
#define CLASS(s) lh_response_name_class(s, sizeof s - 1)
    assert_int_equal(CLASS(""), LH_HNAME_BAD);
    assert_int_equal(CLASS("X: y"), LH_HNAME_BAD);
    assert_int_equal(CLASS("a b"), LH_HNAME_BAD);
    assert_int_equal(CLASS("caf\xc3\xa9"), LH_HNAME_BAD);
    assert_int_equal(CLASS("X-Custom"), LH_HNAME_PLAIN);
    assert_int_equal(CLASS("Set-Cookie"), LH_HNAME_PLAIN);
    assert_int_equal(CLASS("Content-Typo"), LH_HNAME_PLAIN);
    assert_int_equal(CLASS("Dates"), LH_HNAME_PLAIN);
    assert_int_equal(CLASS("content-length"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("Content-Length"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("TRANSFER-ENCODING"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("Connection"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("Keep-Alive"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("Upgrade"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("te"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("Trailer"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("Proxy-Connection"), LH_HNAME_FRAMING);
    assert_int_equal(CLASS("date"), LH_HNAME_SINGLE);
    assert_int_equal(CLASS("Server"), LH_HNAME_SINGLE);
    assert_int_equal(CLASS("CONTENT-TYPE"), LH_HNAME_SINGLE);
#undef CLASS
}

static void test_connection_close_option(void **state)
{
#define CLOSE(s) lh_response_connection_close(s, sizeof s - 1)
    assert_true(CLOSE("close"));
    assert_true(CLOSE("Close"));
    assert_true(CLOSE("foo, CLOSE"));
    assert_true(CLOSE(" close ,x"));
    assert_false(CLOSE("keep-alive"));
    assert_false(CLOSE("closed"));
    assert_false(CLOSE("unclose"));
    assert_false(CLOSE(""));
#undef CLOSE
}

static void test_render_does_not_overflow(void **state)
{
    lh_response_init(&r, 200);
    char small[48];
    memset(small, '#', sizeof small);
    size_t need = lh_response_render_head(&r, 11, 1, date, small, 40);
    assert_true(need > 40); /* the length it needs, and nothing written past 40 */
    for (size_t i = 40; i < sizeof small; i++)
        assert_int_equal(small[i], '#');
}

static void test_owned_body_freed(void **state)
{
    lh_response_init(&r, 200);
    char *p = strdup("owned");
    lh_response_body(&r, p, 5, p);
    lh_response_free(&r); /* ASan/valgrind would report a leak otherwise */
    assert_null(r.body_owned);
    assert_int_equal(r.body_kind, LH_BODY_NONE);
}

static void test_reasons(void **state)
{
    assert_string_equal(lh_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(lh_status_reason(416), "Range Not Satisfiable");
    assert_string_equal(lh_status_reason(799), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_render),
        cmocka_unit_test(test_connection_header),
        cmocka_unit_test(test_head_keeps_length_sends_nothing),
        cmocka_unit_test(test_stream_render),
        cmocka_unit_test(test_stream_of_known_length_render),
        cmocka_unit_test(test_error_page),
        cmocka_unit_test(test_get_unset),
        cmocka_unit_test(test_store_full),
        cmocka_unit_test(test_headers_grow_onto_the_heap),
        cmocka_unit_test(test_move_inline),
        cmocka_unit_test(test_own_date_and_server),
        cmocka_unit_test(test_name_and_value_bytes),
        cmocka_unit_test(test_name_classes),
        cmocka_unit_test(test_connection_close_option),
        cmocka_unit_test(test_render_does_not_overflow),
        cmocka_unit_test(test_owned_body_freed),
        cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests_name("response", tests, NULL, NULL);
}
