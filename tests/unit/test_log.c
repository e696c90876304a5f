/* Unit tests for log.c: the Combined Log Format line and its escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
                          .user_agent = "a\"b\\c\n\0d", .user_agent_len = 8};
    char line[512];
    size_t n = lh_log_format_access(line, sizeof line, &a, 0);
    line[n] = '\0';
    assert_non_null(strstr(line, "\"a\\x22b\\x5Cc\\x0A\\x00d\"")); /* a NUL ends nothing */
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

static void test_error_log_escapes(void **state)
{
    char out[64];
    const char in[] = "a\nb\rc\td\x1b[0m\x7f\\e";
    size_t n = lh_log_escape(out, sizeof out, in, sizeof in - 1);
    assert_string_equal(out, "a\\nb\\rc\td\\x1B[0m\\x7F\\e"); /* tabs stay */
    assert_int_equal(n, strlen(out));
    /* cut to fit, never in the middle of an escape */
    lh_log_escape(out, 4, "ab\ncd", 5);
    assert_string_equal(out, "ab");
    lh_log_escape(out, 5, "ab\ncd", 5);
    assert_string_equal(out, "ab\\n");
}

/* Start sending the error log into a pipe; returns its read end. */
static int log_to_pipe(void)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    lh_log_set_error_fd(fds[1]);
    return fds[0];
}

/* What was logged since log_to_pipe() gave rfd, from "[level] " on, into buf. */
static const char *read_log(int rfd, char *buf, size_t size, const char *level)
{
    lh_log_set_error_fd(2); /* closes the pipe's write end */
    ssize_t n = read(rfd, buf, size - 1);
    close(rfd);
    assert_true(n > 0);
    buf[n] = '\0';
    const char *msg = strstr(buf, level);
    assert_non_null(msg);
    return msg;
}

/* A Lua string may hold a NUL: escaped as \x00, and what follows it is kept. */
static void test_nul_is_escaped_not_an_end(void **state)
{
    char out[64], buf[1024];
    lh_log_escape(out, sizeof out, "a\0b", 3);
    assert_string_equal(out, "a\\x00b");
    int rfd = log_to_pipe();
    lh_log_error("info", "lua: %s", lh_log_str(out, sizeof out, "before\0after\n\\", 14));
    assert_string_equal(read_log(rfd, buf, sizeof buf, "[info] "),
                        "[info] lua: before\\x00after\\n\\\n");
    /* cut to fit like lh_log_escape, never in the middle of an escape */
    assert_string_equal(lh_log_str(out, 6, "ab\0cd", 5), "ab");
}

/* What lh_log_error_trace writes, read back through a pipe. */
static void test_traceback_lines_start_with_a_tab(void **state)
{
    char buf[1024];
    int rfd = log_to_pipe();
    lh_log_error_trace("error", "stack traceback:\n\t[C]: in ?\n\tx.lua:1: in f\nforged",
                       "lua: %s", "bad\nline");
    const char *msg = read_log(rfd, buf, sizeof buf, "[error] ");
    assert_string_equal(msg, "[error] lua: bad\\nline\n\tstack traceback:\n\t[C]: in ?\n"
                             "\tx.lua:1: in f\n\tforged\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined_format),
        cmocka_unit_test(test_absent_fields_are_dashes),
        cmocka_unit_test(test_escaping_prevents_forged_lines),
        cmocka_unit_test(test_truncated_line_still_ends_with_newline),
        cmocka_unit_test(test_error_log_escapes),
        cmocka_unit_test(test_nul_is_escaped_not_an_end),
        cmocka_unit_test(test_traceback_lines_start_with_a_tab),
    };
    return cmocka_run_group_tests_name("log", tests, setup, NULL);
}
