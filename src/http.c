/* http.c - strict HTTP/1.x request parsing (RFC 9112). See http.h. */
#include "http.h"

#include <string.h>
#include <strings.h>

/* tchar per RFC 9110 5.6.2: the bytes allowed in a token (method, field name). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,
    ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

/* field-vchar / SP / HTAB / obs-text: anything but control bytes and DEL. */
static bool is_field_byte(unsigned char c) { return c >= 0x20 ? c != 0x7f : c == '\t'; }

static bool name_is(const struct lh_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

static bool value_is(const char *v, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

/* Content-Length: 1*DIGIT, at most 18 digits so it fits an int64_t. */
static int64_t parse_length(const char *v, size_t len)
{
    if (len == 0 || len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* Connection: a comma-separated list of tokens. */
static void parse_connection(struct lh_request *r, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ',' || is_ows((unsigned char)v[i])))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',' && !is_ows((unsigned char)v[i]))
            i++;
        if (value_is(v + s, i - s, "close"))
            r->conn_close = true;
        else if (value_is(v + s, i - s, "keep-alive"))
            r->conn_keepalive = true;
    }
}

/* Interpret the headers that frame the message. Returns 0 or minus a status. */
static int apply_header(struct lh_request *r, const struct lh_header *h)
{
    if (name_is(h, "content-length", 14)) {
        int64_t n = parse_length(h->value, h->value_len);
        if (n < 0 || (r->content_length >= 0 && r->content_length != n))
            return -400;
        r->content_length = n;
    } else if (name_is(h, "transfer-encoding", 17)) {
        if (r->chunked || !value_is(h->value, h->value_len, "chunked"))
            return -400;
        r->chunked = true;
    } else if (name_is(h, "host", 4)) {
        if (r->host)
            return -400;
        r->host = h;
    } else if (name_is(h, "connection", 10)) {
        parse_connection(r, h->value, h->value_len);
    } else if (name_is(h, "expect", 6)) {
        if (!value_is(h->value, h->value_len, "100-continue"))
            return -417;
        r->expect_continue = true;
    }
    return 0;
}

/* "METHOD SP TARGET SP HTTP/x.y CRLF" at p; returns bytes used or minus a status. */
static int parse_request_line(const char *p, const char *end, struct lh_request *r)
{
    const char *s = p;
    while (p < end && tchar[(unsigned char)*p])
        p++;
    if (p == s || p >= end || *p != ' ')
        return -400;
    r->method = s;
    r->method_len = (uint32_t)(p - s);
    s = ++p;
    while (p < end && (unsigned char)*p > ' ' && *p != 0x7f)
        p++;
    if (p == s || p >= end || *p != ' ')
        return -400;
    r->target = s;
    r->target_len = (uint32_t)(p - s);
    p++;
    if (end - p < 10 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[8] != '\r' ||
        p[9] != '\n' || p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return -400;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return -505;
    r->version = p[7] == '1' ? 11 : 10;
    return (int)(p + 10 - r->method);
}

/* One "name: value CRLF" line at p; returns bytes used or minus a status. */
static int parse_header_line(const char *p, const char *end, struct lh_header *h)
{
    const char *s = p;
    while (p < end && tchar[(unsigned char)*p])
        p++;
    if (p == s || p >= end || *p != ':')
        return -400; /* empty name, whitespace before the colon, obs-fold */
    h->name = s;
    h->name_len = (uint32_t)(p - s);
    p++;
    while (p < end && is_ows((unsigned char)*p))
        p++;
    s = p;
    while (p < end && is_field_byte((unsigned char)*p))
        p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return -400; /* a control byte (NUL, bare CR/LF) inside the value */
    const char *v_end = p;
    while (v_end > s && is_ows((unsigned char)v_end[-1]))
        v_end--;
    h->value = s;
    h->value_len = (uint32_t)(v_end - s);
    return (int)(p + 2 - h->name);
}

/* Parse a complete head [start, end), end just past the blank line. */
static int parse_complete_head(const char *start, const char *end, struct lh_request *r)
{
    int n = parse_request_line(start, end, r);
    if (n < 0)
        return n;
    const char *p = start + n;
    while (!(end - p >= 2 && p[0] == '\r' && p[1] == '\n')) {
        if (r->nheaders == LH_MAX_HEADERS)
            return -431;
        struct lh_header *h = &r->headers[r->nheaders++];
        n = parse_header_line(p, end, h);
        if (n < 0)
            return n;
        int st = apply_header(r, h);
        if (st < 0)
            return st;
        p += n;
    }
    if (r->chunked && (r->content_length >= 0 || r->version == 10))
        return -400;
    if (r->version == 11 && !r->host)
        return -400;
    return 0;
}

/* Too long without an end: 414 when the request line itself never ended. */
static int too_long(const char *start, size_t avail, size_t max_head)
{
    return memchr(start, '\n', avail < max_head ? avail : max_head) ? -431 : -414;
}

int lh_http_parse_head(const char *buf, size_t len, size_t *scanned, size_t max_head,
                       struct lh_request *r)
{
    /* RFC 9112 2.2: ignore empty lines received before the request line. */
    size_t start = 0;
    while (len - start >= 2 && buf[start] == '\r' && buf[start + 1] == '\n')
        start += 2;
    size_t i = *scanned > start ? *scanned : start;
    size_t end = 0;
    for (; i < len; i++) {
        if (buf[i] == '\r') {
            if (i + 1 < len && buf[i + 1] != '\n')
                return -400; /* bare CR */
        } else if (buf[i] == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return -400; /* bare LF */
            if (i >= start + 3 && buf[i - 2] == '\n') {
                end = i + 1;
                break;
            }
        }
    }
    if (end == 0) {
        /* a CR at the very end is checked again once its successor arrives */
        *scanned = len > 0 && buf[len - 1] == '\r' ? len - 1 : len;
        if (len - start > max_head)
            return too_long(buf + start, len - start, max_head);
        return 0;
    }
    if (end - start > max_head)
        return too_long(buf + start, end - start, max_head);

    memset(r, 0, offsetof(struct lh_request, headers));
    r->content_length = -1;
    int st = parse_complete_head(buf + start, buf + end, r);
    if (st < 0)
        return st;
    r->head_len = (uint32_t)end;
    return (int)end;
}

const struct lh_header *lh_http_header(const struct lh_request *r, const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (name_is(&r->headers[i], name, len))
            return &r->headers[i];
    return NULL;
}

bool lh_http_method_known(const char *m, size_t len)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == len && memcmp(known[i], m, len) == 0)
            return true;
    return false;
}

/* ---- chunked bodies (RFC 9112 7.1) --------------------------------------- */

enum {
    CH_SIZE0,     /* first hex digit of a chunk size */
    CH_SIZE,      /* more hex digits, ';' or CR */
    CH_EXT,       /* chunk extension, ignored up to CR */
    CH_SIZE_LF,   /* LF ending the size line */
    CH_DATA,      /* chunk data */
    CH_DATA_CR,   /* CR after chunk data */
    CH_DATA_LF,   /* LF after chunk data */
    CH_TR_START,  /* start of a trailer line, or the final CRLF */
    CH_TR_LINE,   /* inside a trailer field line */
    CH_TR_LF,     /* LF ending a trailer line */
    CH_END_LF,    /* LF ending the message */
};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int lh_chunked_decode(struct lh_chunked *c, const char *in, size_t len, char *out,
                      size_t *consumed, size_t *produced, size_t max_trailer)
{
    size_t i = 0, o = 0;
    int rc = 0;
    while (i < len) {
        unsigned char b = (unsigned char)in[i];
        if (c->state == CH_DATA) {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            memmove(out + o, in + i, n);
            i += n;
            o += n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        i++;
        switch (c->state) {
        case CH_SIZE0:
        case CH_SIZE: {
            int v = hexval(b);
            if (v >= 0) {
                if (++c->digits > 15)
                    goto bad; /* would overflow; no real chunk is that large */
                c->remaining = c->remaining * 16 + (uint64_t)v;
                c->state = CH_SIZE;
            } else if (c->state == CH_SIZE && b == ';') {
                c->state = CH_EXT;
            } else if (c->state == CH_SIZE && b == '\r') {
                c->state = CH_SIZE_LF;
            } else {
                goto bad;
            }
            break;
        }
        case CH_EXT:
            if (b == '\r')
                c->state = CH_SIZE_LF;
            else if (!is_field_byte(b))
                goto bad;
            break;
        case CH_SIZE_LF:
            if (b != '\n')
                goto bad;
            c->digits = 0;
            c->state = c->remaining ? CH_DATA : CH_TR_START;
            break;
        case CH_DATA_CR:
            if (b != '\r')
                goto bad;
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (b != '\n')
                goto bad;
            c->state = CH_SIZE0;
            break;
        case CH_TR_START:
            if (b == '\r') {
                c->state = CH_END_LF;
                break;
            }
            c->state = CH_TR_LINE;
            __attribute__((fallthrough)); /* the byte belongs to the trailer line */
        case CH_TR_LINE:
            if (++c->trailer > max_trailer)
                goto bad;
            if (b == '\r')
                c->state = CH_TR_LF;
            else if (!is_field_byte(b))
                goto bad;
            break;
        case CH_TR_LF:
            if (b != '\n')
                goto bad;
            c->state = CH_TR_START;
            break;
        case CH_END_LF:
            if (b != '\n')
                goto bad;
            rc = 1;
            goto done;
        default:
            goto bad;
        }
    }
done:
    *consumed = i;
    *produced = o;
    return rc;
bad:
    *consumed = i;
    *produced = o;
    return -1;
}
