/* Unit tests for response.c: headers, bodies and the rendered header block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
    char big[LH_RESP_STORE];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(lh_response_header(&r, "X", big), -1);
    assert_int_equal(r.nheaders, 0);
    assert_int_equal(r.store_len, 0);
    for (int i = 0; i < LH_RESP_MAX_HEADERS; i++)
        assert_int_equal(lh_response_header(&r, "Y", "1"), 0);
    assert_int_equal(lh_response_header(&r, "Z", "1"), -1);
}

static void test_render_does_not_overflow(void **state)
{
    lh_response_init(&r, 200);
    char small[40];
    assert_int_equal(lh_response_render_head(&r, 11, 1, date, small, sizeof small), 0);
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
        cmocka_unit_test(test_error_page),
        cmocka_unit_test(test_get_unset),
        cmocka_unit_test(test_store_full),
        cmocka_unit_test(test_render_does_not_overflow),
        cmocka_unit_test(test_owned_body_freed),
        cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests_name("response", tests, NULL, NULL);
}
