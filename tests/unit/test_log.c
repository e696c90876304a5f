/* Unit tests for log.c: the Combined Log Format line and its escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "log.h"

static int setup(void **state)
{
    setenv("TZ", "UTC", 1);
    return 0;
}

static void test_combined_format(void **state)
{
    struct lh_access a = {.ip = "127.0.0.1", .method = "GET", .method_len = 3,
                          .target = "/x?y=1", .target_len = 6, .version = 11,
                          .status = 200, .bytes = 1234,
                          .referer = "http://r/", .referer_len = 9,
                          .user_agent = "curl/8", .user_agent_len = 6};
    char line[512];
    size_t n = lh_log_format_access(line, sizeof line, &a, 784111777);
    line[n] = '\0';
    assert_string_equal(line, "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /x?y=1 HTTP/1.1\" "
                              "200 1234 \"http://r/\" \"curl/8\"\n");
}

static void test_absent_fields_are_dashes(void **state)
{
    struct lh_access a = {.ip = "::1", .status = 400, .bytes = 0};
    char line[512];
    size_t n = lh_log_format_access(line, sizeof line, &a, 784111777);
    line[n] = '\0';
    assert_string_equal(line, "::1 - - [06/Nov/1994:08:49:37 +0000] \"-\" 400 0 \"-\" \"-\"\n");
}

static void test_escaping_prevents_forged_lines(void **state)
{
    struct lh_access a = {.ip = "1.2.3.4", .method = "GET", .method_len = 3,
                          .target = "/", .target_len = 1, .version = 10, .status = 200,
                          .user_agent = "a\"b\\c\n", .user_agent_len = 6};
    char line[512];
    size_t n = lh_log_format_access(line, sizeof line, &a, 0);
    line[n] = '\0';
    assert_non_null(strstr(line, "\"a\\x22b\\x5Cc\\x0A\""));
    assert_non_null(strstr(line, "HTTP/1.0"));
    assert_ptr_equal(strchr(line, '\n'), line + n - 1);
}

static void test_truncated_line_still_ends_with_newline(void **state)
{
    char ua[600];
    memset(ua, 'u', sizeof ua);
    struct lh_access a = {.ip = "1.2.3.4", .status = 200, .user_agent = ua,
                          .user_agent_len = sizeof ua};
    char line[128];
    size_t n = lh_log_format_access(line, sizeof line, &a, 0);
    assert_true(n <= sizeof line);
    assert_int_equal(line[n - 1], '\n');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined_format),
        cmocka_unit_test(test_absent_fields_are_dashes),
        cmocka_unit_test(test_escaping_prevents_forged_lines),
        cmocka_unit_test(test_truncated_line_still_ends_with_newline),
    };
    return cmocka_run_group_tests_name("log", tests, setup, NULL);
}
