/* response.c - responses and their rendering into bytes. See response.h. */
#include "response.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct status_name {
    int code;
    const char *reason;
};

static const struct status_name statuses[] = {
    {100, "Continue"},           {101, "Switching Protocols"},
    {200, "OK"},                 {201, "Created"},
    {202, "Accepted"},           {204, "No Content"},
    {206, "Partial Content"},    {301, "Moved Permanently"},
    {302, "Found"},              {303, "See Other"},
    {304, "Not Modified"},       {307, "Temporary Redirect"},
    {308, "Permanent Redirect"}, {400, "Bad Request"},
    {401, "Unauthorized"},       {403, "Forbidden"},
    {404, "Not Found"},          {405, "Method Not Allowed"},
    {406, "Not Acceptable"},     {408, "Request Timeout"},
    {409, "Conflict"},           {410, "Gone"},
    {411, "Length Required"},    {412, "Precondition Failed"},
    {413, "Content Too Large"},  {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"}, {418, "I'm a teapot"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},  {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},    {505, "HTTP Version Not Supported"},
};

const char *lh_status_reason(int status)
{
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (statuses[i].code == status)
            return statuses[i].reason;
    return "Unknown";
}

void lh_response_init(struct lh_response *r, int status)
{
    r->status = status;
    r->nheaders = 0;
    r->store_len = 0;
    r->body_kind = LH_BODY_NONE;
    r->body = NULL;
    r->body_len = 0;
    r->body_owned = NULL;
    r->fd = -1;
    r->file_off = r->file_len = 0;
    r->no_body = false;
    r->close = false;
}

static const char *store_copy(struct lh_response *r, const char *s)
{
    size_t n = strlen(s) + 1;
    if (r->store_len + n > LH_RESP_STORE)
        return NULL;
    char *p = memcpy(r->store + r->store_len, s, n);
    r->store_len += (uint32_t)n;
    return p;
}

int lh_response_header(struct lh_response *r, const char *name, const char *value)
{
    if (r->nheaders == LH_RESP_MAX_HEADERS)
        return -1;
    uint32_t mark = r->store_len;
    const char *n = store_copy(r, name);
    const char *v = n ? store_copy(r, value) : NULL;
    if (!v) {
        r->store_len = mark;
        return -1;
    }
    r->headers[r->nheaders++] = (struct lh_resp_header){n, v};
    return 0;
}

const char *lh_response_get(const struct lh_response *r, const char *name)
{
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

void lh_response_unset(struct lh_response *r, const char *name)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) != 0)
            r->headers[k++] = r->headers[i];
    r->nheaders = k;
}

static void drop_body(struct lh_response *r)
{
    free(r->body_owned);
    r->body_owned = NULL;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->body_kind = LH_BODY_NONE;
    r->body = NULL;
    r->body_len = 0;
}

void lh_response_body(struct lh_response *r, const char *body, size_t len, char *owned)
{
    drop_body(r);
    r->body_kind = LH_BODY_MEM;
    r->body = body;
    r->body_len = len;
    r->body_owned = owned;
}

void lh_response_file(struct lh_response *r, int fd, int64_t off, int64_t len)
{
    drop_body(r);
    r->body_kind = LH_BODY_FILE;
    r->fd = fd;
    r->file_off = off;
    r->file_len = len;
}

void lh_response_error(struct lh_response *r, int status)
{
    bool no_body = r->no_body, close_after = r->close;
    drop_body(r);
    lh_response_init(r, status);
    r->no_body = no_body;
    r->close = close_after;
    /* "<status> <reason>" twice in a fixed frame, pieced together by hand (this is
     * every 404's page: snprintf took a tenth of such a request's instructions) */
    const char *reason = lh_status_reason(status);
    char title[64];
    title[0] = (char)('0' + status / 100 % 10); /* 100..999, as in the status line */
    title[1] = (char)('0' + status / 10 % 10);
    title[2] = (char)('0' + status % 10);
    title[3] = ' ';
    size_t tlen = 4;
    size_t rlen = strlen(reason);
    if (rlen > sizeof title - tlen)
        rlen = sizeof title - tlen;
    memcpy(title + tlen, reason, rlen);
    tlen += rlen;
    static const char head[] = "<!DOCTYPE html>\n<html><head><title>",
                      mid[] = "</title></head>\n<body><h1>",
                      tail[] = "</h1><hr><p>luahttpd</p></body></html>\n";
    char *p = mempcpy(r->page, head, sizeof head - 1);
    p = mempcpy(p, title, tlen);
    p = mempcpy(p, mid, sizeof mid - 1);
    p = mempcpy(p, title, tlen);
    p = mempcpy(p, tail, sizeof tail - 1);
    size_t n = (size_t)(p - r->page);
    lh_response_header(r, "Content-Type", "text/html; charset=utf-8");
    lh_response_body(r, r->page, n, NULL);
}

void lh_response_move(struct lh_response *dst, struct lh_response *src)
{
    memcpy(dst, src, sizeof *dst);
    for (uint32_t i = 0; i < dst->nheaders; i++) {
        dst->headers[i].name = dst->store + (src->headers[i].name - src->store);
        dst->headers[i].value = dst->store + (src->headers[i].value - src->store);
    }
    if (src->body && src->body >= src->page && src->body < src->page + sizeof src->page)
        dst->body = dst->page + (src->body - src->page);
    src->body_owned = NULL;
    src->fd = -1;
    lh_response_init(src, 200);
}

void lh_response_free(struct lh_response *r)
{
    drop_body(r);
}

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

int64_t lh_response_body_bytes(const struct lh_response *r)
{
    if (r->no_body || !status_has_body(r->status))
        return 0;
    return r->body_kind == LH_BODY_FILE ? r->file_len : (int64_t)r->body_len;
}

/* Bounded appends into out; *pos passes outsz on overflow and the caller checks. */
static void put(char *out, size_t outsz, size_t *pos, const char *s, size_t n)
{
    if (*pos + n <= outsz)
        memcpy(out + *pos, s, n);
    *pos += n;
}

static void put_header(char *out, size_t outsz, size_t *pos, const char *name,
                       const char *value)
{
    put(out, outsz, pos, name, strlen(name));
    put(out, outsz, pos, ": ", 2);
    put(out, outsz, pos, value, strlen(value));
    put(out, outsz, pos, "\r\n", 2);
}

size_t lh_response_render_head(const struct lh_response *r, int version, bool keepalive,
                               const char *date, char *out, size_t outsz)
{
    size_t pos = 0;
    char line[24];
    /* the status is 100..999 (lh_response_init and the Lua side check it) */
    memcpy(line, "HTTP/1.1 000 ", 13);
    line[7] = version == 10 ? '0' : '1';
    line[9] = (char)('0' + r->status / 100 % 10);
    line[10] = (char)('0' + r->status / 10 % 10);
    line[11] = (char)('0' + r->status % 10);
    put(out, outsz, &pos, line, 13);
    const char *reason = lh_status_reason(r->status);
    put(out, outsz, &pos, reason, strlen(reason));
    put(out, outsz, &pos, "\r\n", 2);
    put_header(out, outsz, &pos, "Date", date);
    put_header(out, outsz, &pos, "Server", "luahttpd/" LH_VERSION);
    for (uint32_t i = 0; i < r->nheaders; i++)
        put_header(out, outsz, &pos, r->headers[i].name, r->headers[i].value);
    if (status_has_body(r->status)) {
        int64_t len = r->body_kind == LH_BODY_FILE ? r->file_len : (int64_t)r->body_len;
        char *p = line + sizeof line;
        *--p = '\0';
        uint64_t v = len > 0 ? (uint64_t)len : 0;
        do
            *--p = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        put_header(out, outsz, &pos, "Content-Length", p);
    }
    if (!keepalive)
        put_header(out, outsz, &pos, "Connection", "close");
    else if (version == 10)
        put_header(out, outsz, &pos, "Connection", "keep-alive");
    put(out, outsz, &pos, "\r\n", 2);
    return pos <= outsz ? pos : 0;
}
