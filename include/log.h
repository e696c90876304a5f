/* log.h - the error log (start, stop, reload, warnings, errors) and the access log. */
#ifndef LH_LOG_H
#define LH_LOG_H

#include <stddef.h>
#include <time.h>

/*
 * Open a log destination: "-" means the given standard stream (std_fd, duplicated),
 * anything else a file opened for appending (created 0644). Returns an fd the caller
 * owns, or -1 with errno set.
 */
int lh_log_open(const char *path, int std_fd);

/* Make fd the error log (takes ownership; the previous one is closed unless it is
 * stderr). Safe to call while other threads log. */
void lh_log_set_error_fd(int fd);

/* SIGUSR1: open path ("-" is left alone) and put it in place of the error log's fd,
 * under the same number. 0, or -1 with errno (the old file stays in use). */
int lh_log_reopen_error(const char *path);

/* The same for any log: path opened again and put in place of fd under the same
 * number ("-", and fds 0-2, are left alone). 0, or -1 with errno. */
int lh_log_reopen(const char *path, int fd);

/* "YYYY/MM/DD HH:MM:SS [level] message\n", written with one write(2). The message
 * is one line whatever it holds: control bytes in it (from a client, from Lua) are
 * written as \n, \r or \xHH, so no client can forge an entry. Tabs stay. */
void lh_log_error(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same, followed by the lines of trace (a Lua traceback, may be NULL), each on a
 * line of its own that starts with a tab and is escaped the same way. trace ends at
 * its first NUL: luaL_traceback builds it with "%s", so it holds none. */
void lh_log_error_trace(const char *level, const char *trace, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Escape s[0..len) for the error log into out (capacity outsz >= 1, NUL-terminated,
 * truncated to fit). Returns the length written. */
size_t lh_log_escape(char *out, size_t outsz, const char *s, size_t len);

/* The longest message lh_log_error keeps, escapes aside. */
#define LH_LOG_MSG_MAX 4096

/* s[0..len) escaped into buf (size >= 1) by lh_log_escape, for a "%s" of lh_log_error
 * when s may hold a NUL (any Lua string): printf would stop there and drop the rest.
 * What it writes passes through lh_log_error unchanged. Returns buf. */
const char *lh_log_str(char *buf, size_t size, const char *s, size_t len);

/* What one access-log line is made of. Strings need not be NUL-terminated. */
struct lh_access {
    const char *ip;                    /* NUL-terminated */
    const char *method, *target;       /* NULL when the request line was unreadable */
    size_t method_len, target_len;
    int version;                       /* 10 or 11 */
    int status;
    long long bytes;                   /* body bytes sent */
    const char *referer, *user_agent;  /* NULL when absent */
    size_t referer_len, user_agent_len;
};

/* Format a Combined Log Format line (with '\n') into out; returns its length
 * (truncated to outsz - 1 at most). Quotes, backslashes and control bytes in the
 * request, Referer and User-Agent are written as \xHH so a line cannot be forged. */
size_t lh_log_format_access(char *out, size_t outsz, const struct lh_access *a, time_t now);

/* Format and write one access-log line to fd with one write(2). */
void lh_log_access(int fd, const struct lh_access *a);

#endif
