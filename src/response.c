/* response.c - responses and their rendering into bytes. See response.h. */
#include "response.h"
#include "config.h"

#include <stddef.h>
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
    r->has = 0;
    r->heap_headers = NULL;
    r->heap_store = NULL;
    r->heap_headers_cap = r->heap_store_cap = 0;
    r->body_kind = LH_BODY_NONE;
    r->body = NULL;
    r->body_len = 0;
    r->body_owned = NULL;
    r->fd = -1;
    r->file_off = r->file_len = 0;
    r->no_body = false;
    r->known_length = -1;
    r->close = false;
    r->builtin = false;
}

/* ---- headers -------------------------------------------------------------------- */

static struct lh_resp_header *headers_of(struct lh_response *r)
{
    return r->heap_headers ? r->heap_headers : r->inline_headers;
}

static char *store_of(struct lh_response *r)
{
    return r->heap_store ? r->heap_store : r->inline_store;
}

/* The LH_RESP_HAS_* bit a header of this name sets, or 0. */
static uint32_t has_bit(const char *name, size_t len)
{
    if (len == 4 && strncasecmp(name, "date", 4) == 0)
        return LH_RESP_HAS_DATE;
    if (len == 6 && strncasecmp(name, "server", 6) == 0)
        return LH_RESP_HAS_SERVER;
    return 0;
}

/* Next capacity: double from cap until need fits, at most max (need <= max). */
static uint32_t grown(uint32_t cap, size_t need, uint32_t max)
{
    while (cap < need)
        cap *= 2;
    return cap < max ? cap : max;
}

/* Room for one more header and n more store bytes, moving the headers onto the
 * heap (or growing them there) when the inline arrays are full. 0 or -1. */
static int reserve(struct lh_response *r, size_t n)
{
    if (r->nheaders == LH_RESP_MAX_HEADERS || n > LH_RESP_MAX_STORE - r->store_len)
        return -1;
    uint32_t hcap = r->heap_headers ? r->heap_headers_cap : LH_RESP_INLINE_HEADERS;
    if (r->nheaders == hcap) {
        uint32_t cap = grown(hcap, (size_t)hcap + 1, LH_RESP_MAX_HEADERS);
        struct lh_resp_header *h = realloc(r->heap_headers, cap * sizeof *h);
        if (!h)
            return -1;
        if (!r->heap_headers)
            memcpy(h, r->inline_headers, r->nheaders * sizeof *h);
        r->heap_headers = h;
        r->heap_headers_cap = cap;
    }
    uint32_t scap = r->heap_store ? r->heap_store_cap : LH_RESP_STORE;
    if (r->store_len + n > scap) {
        uint32_t cap = grown(scap, r->store_len + n, LH_RESP_MAX_STORE);
        char *st = realloc(r->heap_store, cap);
        if (!st)
            return -1;
        if (!r->heap_store)
            memcpy(st, r->inline_store, r->store_len);
        r->heap_store = st;
        r->heap_store_cap = cap;
    }
    return 0;
}

/* Copy s (len bytes) and a NUL to the store's end (reserve made room); its offset. */
static uint32_t store_put(struct lh_response *r, const char *s, size_t len)
{
    uint32_t off = r->store_len;
    char *p = store_of(r) + off;
    memcpy(p, s, len);
    p[len] = '\0';
    r->store_len += (uint32_t)len + 1;
    return off;
}

int lh_response_add(struct lh_response *r, const char *name, size_t name_len,
                    const char *value, size_t value_len)
{
    if (name_len > LH_RESP_MAX_STORE || value_len > LH_RESP_MAX_STORE ||
        reserve(r, name_len + value_len + 2) != 0)
        return -1;
    struct lh_resp_header *h = headers_of(r) + r->nheaders++;
    h->name = store_put(r, name, name_len);
    h->name_len = (uint32_t)name_len;
    h->value = store_put(r, value, value_len);
    h->value_len = (uint32_t)value_len;
    r->has |= has_bit(name, name_len);
    return 0;
}

int lh_response_header(struct lh_response *r, const char *name, const char *value)
{
    return lh_response_add(r, name, strlen(name), value, strlen(value));
}

const char *lh_response_get(const struct lh_response *r, const char *name)
{
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(lh_response_name(r, i), name) == 0)
            return lh_response_value(r, i);
    return NULL;
}

void lh_response_unset(struct lh_response *r, const char *name)
{
    struct lh_resp_header *h = headers_of(r);
    const char *store = store_of(r);
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(store + h[i].name, name) != 0)
            h[k++] = h[i];
    r->nheaders = k;
    r->has &= ~has_bit(name, strlen(name));
}

void lh_response_clear_headers(struct lh_response *r)
{
    free(r->heap_headers);
    free(r->heap_store);
    r->heap_headers = NULL;
    r->heap_store = NULL;
    r->heap_headers_cap = r->heap_store_cap = 0;
    r->nheaders = r->store_len = r->has = 0;
}

/* Bytes of header names and values (RFC 9110 5.1, 5.5), by their code:
 * 3 = tchar (a name byte; also a value byte), 2 = a value byte only (SP, HTAB, the
 * other VCHARs, obs-text from 0x80), 0 = neither (controls, DEL). */
static const uint8_t field_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, /* 0x00  HTAB only */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    2, 3, 2, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2, /* 0x20  SP ! " # $ % & ' ( ) * + , - . / */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, /* 0x30  0-9 : ; < = > ? */
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x40  @ A-O */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 3, 3, /* 0x50  P-Z [ \ ] ^ _ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x60  ` a-o */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 2, 3, 0, /* 0x70  p-z { | } ~ DEL */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80 - 0xff: obs-text */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* Names the server keeps for itself, or lets one line replace its own. */
static const struct {
    const char *name;
    size_t len;
    enum lh_hname class;
} special_names[] = {
    {"te", 2, LH_HNAME_FRAMING},
    {"date", 4, LH_HNAME_SINGLE},
    {"server", 6, LH_HNAME_SINGLE},
    {"upgrade", 7, LH_HNAME_FRAMING},
    {"trailer", 7, LH_HNAME_FRAMING},
    {"connection", 10, LH_HNAME_FRAMING},
    {"keep-alive", 10, LH_HNAME_FRAMING},
    {"content-type", 12, LH_HNAME_SINGLE},
    {"content-length", 14, LH_HNAME_FRAMING},
    {"proxy-connection", 16, LH_HNAME_FRAMING},
    {"transfer-encoding", 17, LH_HNAME_FRAMING},
};

#define SPECIAL_LENGTHS \
    (1u << 2 | 1u << 4 | 1u << 6 | 1u << 7 | 1u << 10 | 1u << 12 | 1u << 14 | 1u << 16 | \
     1u << 17)

enum lh_hname lh_response_name_class(const char *name, size_t len)
{
    if (len == 0)
        return LH_HNAME_BAD;
    for (size_t i = 0; i < len; i++)
        if (field_byte[(unsigned char)name[i]] != 3)
            return LH_HNAME_BAD;
    /* most names have none of the special names' lengths: no look at the list */
    if (len >= 32 || !(SPECIAL_LENGTHS >> len & 1))
        return LH_HNAME_PLAIN;
    for (size_t i = 0; i < sizeof special_names / sizeof special_names[0]; i++)
        if (special_names[i].len == len && special_names[i].name[0] == (name[0] | 0x20) &&
            strncasecmp(special_names[i].name, name, len) == 0)
            return special_names[i].class;
    return LH_HNAME_PLAIN;
}

bool lh_response_value_ok(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!field_byte[(unsigned char)value[i]])
            return false;
    return true;
}

bool lh_response_connection_close(const char *value, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',' && value[i] != ' ' && value[i] != '\t')
            i++;
        if (i - start == 5 && strncasecmp(value + start, "close", 5) == 0)
            return true;
    }
    return false;
}

/* ---- bodies -------------------------------------------------------------------- */

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

void lh_response_stream(struct lh_response *r)
{
    drop_body(r);
    r->body_kind = LH_BODY_STREAM;
}

void lh_response_error(struct lh_response *r, int status)
{
    bool no_body = r->no_body, close_after = r->close;
    drop_body(r);
    lh_response_clear_headers(r);
    lh_response_init(r, status);
    r->no_body = no_body;
    r->close = close_after;
    /* "<status> <reason>" twice in a fixed frame, pieced together by hand (this is
     * every 404's page: snprintf took a third of such a request's instructions) */
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
    r->builtin = true;
}

void lh_response_move(struct lh_response *dst, struct lh_response *src)
{
    /* the header offsets stay valid; of the inline store only the used part counts */
    memcpy(dst, src, offsetof(struct lh_response, inline_store));
    if (!src->heap_store)
        memcpy(dst->inline_store, src->inline_store, src->store_len);
    if (src->body && src->body >= src->page && src->body < src->page + sizeof src->page)
        dst->body = dst->page + (src->body - src->page);
    lh_response_init(src, 200); /* the body, file and heap headers now belong to dst */
}

void lh_response_free(struct lh_response *r)
{
    drop_body(r);
    lh_response_clear_headers(r);
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
                       size_t name_len, const char *value, size_t value_len)
{
    put(out, outsz, pos, name, name_len);
    put(out, outsz, pos, ": ", 2);
    put(out, outsz, pos, value, value_len);
    put(out, outsz, pos, "\r\n", 2);
}

#define PUT_FIXED(name, value) \
    put_header(out, outsz, &pos, name, sizeof name - 1, value, sizeof value - 1)

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
    if (!(r->has & LH_RESP_HAS_DATE))
        put_header(out, outsz, &pos, "Date", 4, date, strlen(date));
    if (!(r->has & LH_RESP_HAS_SERVER))
        PUT_FIXED("Server", "luahttpd/" LH_VERSION);
    const char *store = r->heap_store ? r->heap_store : r->inline_store;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const struct lh_resp_header *h = lh_response_at(r, i);
        put_header(out, outsz, &pos, store + h->name, h->name_len, store + h->value,
                   h->value_len);
    }
    if (r->body_kind == LH_BODY_STREAM && r->known_length < 0) {
        if (status_has_body(r->status) && version != 10)
            PUT_FIXED("Transfer-Encoding", "chunked");
    } else if (status_has_body(r->status)) {
        int64_t len = r->body_kind == LH_BODY_FILE ? r->file_len : (int64_t)r->body_len;
        if (r->known_length >= 0 &&
            (r->body_kind == LH_BODY_STREAM || (r->no_body && r->body_kind == LH_BODY_NONE)))
            len = r->known_length;
        char *end = line + sizeof line, *p = end;
        uint64_t v = len > 0 ? (uint64_t)len : 0;
        do
            *--p = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        put_header(out, outsz, &pos, "Content-Length", 14, p, (size_t)(end - p));
    }
    if (!keepalive)
        PUT_FIXED("Connection", "close");
    else if (version == 10)
        PUT_FIXED("Connection", "keep-alive");
    put(out, outsz, &pos, "\r\n", 2);
    return pos;
}
