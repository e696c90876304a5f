/* log.c - error and access logs. See log.h. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int error_fd = 2;

int lh_log_open(const char *path, int std_fd)
{
    if (strcmp(path, "-") == 0)
        return fcntl(std_fd, F_DUPFD_CLOEXEC, 3);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void lh_log_set_error_fd(int fd)
{
    int old = atomic_exchange(&error_fd, fd);
    if (old > 2 && old != fd)
        close(old);
}

int lh_log_reopen(const char *path, int fd)
{
    if (strcmp(path, "-") == 0 || fd <= 2)
        return 0;
    int nfd = lh_log_open(path, STDERR_FILENO);
    if (nfd < 0)
        return -1;
    /* onto the same number: a line being written goes to the old file or the new,
     * and none finds the fd closed */
    int rc = dup3(nfd, fd, O_CLOEXEC);
    close(nfd);
    return rc < 0 ? -1 : 0;
}

int lh_log_reopen_error(const char *path)
{
    return lh_log_reopen(path, atomic_load(&error_fd));
}

/* write(2) the whole buffer, retrying short writes; logging never fails loudly. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

size_t lh_log_escape(char *out, size_t outsz, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[4];
        size_t n = 1;
        esc[0] = (char)c;
        if (c == '\n' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : 'r';
            n = 2;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            n = 4;
        }
        if (o + n >= outsz)
            break;
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o] = '\0';
    return o;
}

const char *lh_log_str(char *buf, size_t size, const char *s, size_t len)
{
    lh_log_escape(buf, size, s, len); /* escaping its output again changes nothing */
    return buf;
}

#define LINE_MAX_BYTES 16384 /* one entry, traceback included; longer ones are cut */

/* The entry's head, "YYYY/MM/DD HH:MM:SS [level] " and the escaped message, into
 * line; returns its length. */
static size_t format_head(char *line, size_t cap, const char *level, const char *fmt,
                          va_list ap)
{
    char msg[LH_LOG_MSG_MAX];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(line, cap, "%Y/%m/%d %H:%M:%S ", &tm);
    n += (size_t)snprintf(line + n, cap - n, "[%s] ", level);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    if (m < 0)
        m = 0;
    size_t mlen = (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;
    return n + lh_log_escape(line + n, cap - n, msg, mlen);
}

void lh_log_error(const char *level, const char *fmt, ...)
{
    char line[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_head(line, sizeof line - 1, level, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    write_all(atomic_load(&error_fd), line, n);
}

void lh_log_error_trace(const char *level, const char *trace, const char *fmt, ...)
{
    char line[LINE_MAX_BYTES];
    size_t cap = sizeof line - 1; /* room for the last newline */
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_head(line, cap, level, fmt, ap);
    va_end(ap);
    while (trace && *trace && n + 2 < cap) {
        const char *eol = strchr(trace, '\n');
        size_t len = eol ? (size_t)(eol - trace) : strlen(trace);
        const char *text = trace;
        if (len > 0 && text[0] == '\t') { /* Lua's own indent: ours replaces it */
            text++;
            len--;
        }
        line[n++] = '\n';
        line[n++] = '\t';
        n += lh_log_escape(line + n, cap - n, text, len);
        trace = eol ? eol + 1 : text + len;
    }
    line[n++] = '\n';
    write_all(atomic_load(&error_fd), line, n);
}

/* Append s[0..len) quoted-safe: '"', '\\' and control bytes become \xHH. */
static size_t put_escaped(char *out, size_t pos, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len && pos + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = 'x';
            out[pos++] = hex[c >> 4];
            out[pos++] = hex[c & 15];
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

static size_t put_str(char *out, size_t pos, size_t cap, const char *s)
{
    size_t len = strlen(s);
    if (pos + len >= cap)
        len = cap - pos - 1;
    memcpy(out + pos, s, len);
    return pos + len;
}

static size_t put_quoted_or_dash(char *out, size_t pos, size_t cap, const char *s, size_t len)
{
    pos = put_str(out, pos, cap, " \"");
    pos = s ? put_escaped(out, pos, cap, s, len) : put_str(out, pos, cap, "-");
    return put_str(out, pos, cap, "\"");
}

size_t lh_log_format_access(char *out, size_t outsz, const struct lh_access *a, time_t now)
{
    struct tm tm;
    localtime_r(&now, &tm);
    char when[64];
    strftime(when, sizeof when, "[%d/%b/%Y:%H:%M:%S %z]", &tm);
    size_t cap = outsz - 1; /* room for the newline */
    size_t pos = put_str(out, 0, cap, a->ip);
    pos = put_str(out, pos, cap, " - - ");
    pos = put_str(out, pos, cap, when);
    pos = put_str(out, pos, cap, " \"");
    if (a->method) {
        pos = put_escaped(out, pos, cap, a->method, a->method_len);
        pos = put_str(out, pos, cap, " ");
        pos = put_escaped(out, pos, cap, a->target, a->target_len);
        pos = put_str(out, pos, cap, a->version == 10 ? " HTTP/1.0" : " HTTP/1.1");
    } else {
        pos = put_str(out, pos, cap, "-");
    }
    char nums[48];
    snprintf(nums, sizeof nums, "\" %d %lld", a->status, a->bytes);
    pos = put_str(out, pos, cap, nums);
    pos = put_quoted_or_dash(out, pos, cap, a->referer, a->referer_len);
    pos = put_quoted_or_dash(out, pos, cap, a->user_agent, a->user_agent_len);
    out[pos++] = '\n';
    return pos;
}

void lh_log_access(int fd, const struct lh_access *a)
{
    char line[2048];
    size_t n = lh_log_format_access(line, sizeof line, a, time(NULL));
    write_all(fd, line, n);
}
