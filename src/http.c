/* http.c - strict HTTP/1.x parsing (RFC 9112): request and response heads, chunked
 * bodies. See http.h. */
#include "http.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/*
 * Byte classes, one table so that every scan costs one load per byte:
 *   TOKEN   tchar (RFC 9110 5.6.2): methods, field names, codings, chunk-ext names
 *   TARGET  may stand raw in a request-target. RFC 3986 allows unreserved,
 *           sub-delims, : @ / ? % and, in an authority, [ ]. Refused besides control
 *           bytes and space: bytes >= 0x80 (a raw and a percent-encoded spelling of
 *           one name would both reach the file, past a proxy filtering one of them)
 *           and '#' (clients never send a fragment; a proxy that cuts it off sees
 *           another path than we do). Tolerated though RFC 3986 has no place for
 *           them: the ASCII bytes  " < > \ ^ ` { | }  and [ ] outside an authority.
 *           Browsers send several raw in queries, curl sends them as typed, and no
 *           URI component treats them as delimiters, so no two parsers split a
 *           target differently over them (a '\' in the path is a 404 in path.c).
 *   REGNAME unreserved / sub-delims (RFC 3986 3.2.2); '%' is checked on its own
 *   QDTEXT  qdtext (RFC 9110 5.6.4): inside a quoted-string
 */
enum { TOKEN = 1, TARGET = 2, REGNAME = 4, QDTEXT = 8 };
#define ALL (TOKEN | TARGET | REGNAME | QDTEXT)

static const unsigned char cls[256] = {
    ['\t'] = QDTEXT, [' '] = QDTEXT,
    ['!'] = ALL, ['"'] = TARGET, ['#'] = TOKEN | QDTEXT, ['$'] = ALL,
    ['%'] = TOKEN | TARGET | QDTEXT, ['&'] = ALL, ['\''] = ALL,
    ['('] = TARGET | REGNAME | QDTEXT, [')'] = TARGET | REGNAME | QDTEXT, ['*'] = ALL,
    ['+'] = ALL, [','] = TARGET | REGNAME | QDTEXT, ['-'] = ALL, ['.'] = ALL,
    ['/'] = TARGET | QDTEXT, ['0' ... '9'] = ALL, [':'] = TARGET | QDTEXT,
    [';'] = TARGET | REGNAME | QDTEXT, ['<'] = TARGET | QDTEXT,
    ['='] = TARGET | REGNAME | QDTEXT, ['>'] = TARGET | QDTEXT, ['?'] = TARGET | QDTEXT,
    ['@'] = TARGET | QDTEXT, ['A' ... 'Z'] = ALL, ['['] = TARGET | QDTEXT,
    ['\\'] = TARGET, [']'] = TARGET | QDTEXT, ['^'] = TOKEN | TARGET | QDTEXT,
    ['_'] = ALL, ['`'] = TOKEN | TARGET | QDTEXT, ['a' ... 'z'] = ALL,
    ['{'] = TARGET | QDTEXT, ['|'] = TOKEN | TARGET | QDTEXT, ['}'] = TARGET | QDTEXT,
    ['~'] = ALL, [0x80 ... 0xff] = QDTEXT, /* obs-text */
};

static bool is(unsigned char c, int set) { return cls[c] & set; }

static bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

/* field-vchar / SP / HTAB / obs-text: anything but control bytes and DEL. */
static bool is_field_byte(unsigned char c) { return c >= 0x20 ? c != 0x7f : c == '\t'; }

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool name_is(const struct lh_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

static bool value_is(const char *v, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

/* ---- Host and authority (RFC 3986 3.2.2, 3.2.3) ------------------------------ */

/* pct-encoded at v[i]: "%" HEXDIG HEXDIG within v[0..len). */
static bool pct_at(const char *v, size_t i, size_t len)
{
    return i + 2 < len && hexval((unsigned char)v[i + 1]) >= 0 &&
           hexval((unsigned char)v[i + 2]) >= 0;
}

/* IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ). */
static bool ipvfuture_ok(const char *v, size_t len)
{
    size_t i = 1;
    while (i < len && hexval((unsigned char)v[i]) >= 0)
        i++;
    if (i == 1 || i + 1 >= len || v[i] != '.')
        return false;
    for (i++; i < len; i++)
        if (!is((unsigned char)v[i], REGNAME) && v[i] != ':')
            return false;
    return true;
}

/* The inside of an IP-literal's brackets: IPv6address or IPvFuture. No zone id:
 * RFC 3986 has none and no browser sends one. */
static bool ip_literal_ok(const char *v, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (len > 0 && (v[0] | 0x20) == 'v')
        return ipvfuture_ok(v, len);
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, v, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, &a) == 1;
}

/* uri-host [ ":" port ], as Host carries it (RFC 9112 3.2); the empty value is valid.
 * An IPv4address is also a reg-name, so "999.1.1.1" passes like any name. */
static bool host_ok(const char *v, size_t len)
{
    size_t i = 0;
    if (len > 0 && v[0] == '[') {
        const char *close = memchr(v, ']', len);
        if (!close || !ip_literal_ok(v + 1, (size_t)(close - v) - 1))
            return false;
        i = (size_t)(close - v) + 1;
    } else {
        while (i < len && v[i] != ':') {
            if (v[i] == '%' && pct_at(v, i, len))
                i += 3;
            else if (is((unsigned char)v[i], REGNAME))
                i++;
            else
                return false; /* space, '/', '@' (userinfo), '?', '#', obs-text ... */
        }
    }
    if (i < len && v[i++] != ':')
        return false;
    for (; i < len; i++) /* port = *DIGIT */
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/* An absolute-form target's authority (RFC 9112 3.2.2) is a host too, and neither
 * empty (RFC 9110 4.2.1) nor with userinfo (4.2.4). Origin-form and "*" pass; any
 * other form is refused later, where the target is taken apart (dispatch.c). */
static bool authority_ok(const char *t, size_t len)
{
    if (t[0] == '/') /* origin-form, nearly every request: no call */
        return true;
    size_t n;
    const char *a = lh_http_target_authority(t, len, &n);
    return !a || (n > 0 && host_ok(a, n));
}

/* ---- field lines, the same in requests and responses (RFC 9112 2, 5, 6) ------ */

/* Find the blank line that ends a head starting at buf[start], going on from where
 * *scanned says the last call stopped. Sets *end just past the blank line, or to 0
 * when it has not arrived yet (then *scanned moves on). Returns 0, or -1 on a CR or
 * LF standing alone: every line must end in CRLF. */
static int find_head_end(const char *buf, size_t len, size_t start, size_t *scanned,
                         size_t *end)
{
    size_t i = *scanned > start ? *scanned : start;
    *end = 0;
    while (i < len) { /* line by line: memchr is several times faster than a byte loop */
        const char *lf = memchr(buf + i, '\n', len - i);
        size_t stop = lf ? (size_t)(lf - buf) : len;
        /* a CR must stand right before an LF; one that ends what came so far is
         * checked again once its successor arrives */
        const char *cr = memchr(buf + i, '\r', stop - i);
        if (cr && (size_t)(cr - buf) + 1 < stop)
            return -1; /* bare CR */
        if (!lf)
            break;
        if (stop == 0 || buf[stop - 1] != '\r')
            return -1; /* bare LF */
        if (stop >= start + 3 && buf[stop - 2] == '\n') {
            *end = stop + 1;
            return 0;
        }
        i = stop + 1;
    }
    /* a CR at the very end is checked again once its successor arrives */
    *scanned = len > 0 && buf[len - 1] == '\r' ? len - 1 : len;
    return 0;
}

/* One "name: value CRLF" line at p; returns bytes used or -400. */
static int parse_field_line(const char *p, const char *end, struct lh_header *h)
{
    const char *s = p;
    while (p < end && is((unsigned char)*p, TOKEN))
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

/* The transfer codings of all Transfer-Encoding lines, in order (RFC 9112 6.1). */
struct codings {
    bool seen;         /* a Transfer-Encoding line was present */
    bool chunked;      /* chunked was named */
    bool repeated;     /* chunked was named more than once (a sender MUST NOT) */
    bool last_chunked; /* the last coding so far is chunked */
    bool unknown;      /* a coding other than chunked was named */
};

/* One Transfer-Encoding line: a list of codings, each a bare token. Any parameter is
 * refused: no client sends one, and refusing spares parsing commas inside quoted
 * values. Empty list elements are ignored, as RFC 9110 5.6.1 asks. What the order
 * of the codings means is for the caller. Returns 0 or -400. */
static int parse_codings(struct codings *te, const char *v, size_t len)
{
    size_t i = 0;
    te->seen = true;
    for (;;) {
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
        size_t s = i;
        while (i < len && is((unsigned char)v[i], TOKEN))
            i++;
        size_t n = i - s;
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
        if (i < len && v[i] != ',')
            return -400;
        if (n > 0) {
            te->last_chunked = value_is(v + s, n, "chunked");
            te->repeated |= te->last_chunked && te->chunked;
            te->chunked |= te->last_chunked;
            te->unknown |= !te->last_chunked;
        }
        if (i == len)
            return 0;
        i++; /* the comma */
    }
}

/* What the fields that frame a message say, in a request or a response. */
struct framing {
    bool length_list;       /* set by the caller: take "Content-Length: 3, 3" as 3 */
    int64_t content_length; /* -1 when absent */
    struct codings te;
    bool conn_close;        /* Connection: close */
    bool conn_keepalive;    /* Connection: keep-alive */
};

/* Content-Length: one value, or with f->length_list a list of them (RFC 9110 8.6).
 * Every value, also of earlier lines, must be the same. Returns 0 or -400. */
static int parse_content_length(struct framing *f, const char *v, size_t len)
{
    size_t i = 0;
    for (;;) {
        size_t s = i;
        while (i < len && !(f->length_list && v[i] == ','))
            i++;
        size_t e = i;
        while (e > s && is_ows((unsigned char)v[e - 1]))
            e--;
        int64_t n = parse_length(v + s, e - s);
        if (n < 0 || (f->content_length >= 0 && f->content_length != n))
            return -400;
        f->content_length = n;
        if (i == len)
            return 0;
        i++; /* the comma */
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
    }
}

/* Connection: a comma-separated list of tokens. */
static void parse_connection(struct framing *f, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ',' || is_ows((unsigned char)v[i])))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',' && !is_ows((unsigned char)v[i]))
            i++;
        if (value_is(v + s, i - s, "close"))
            f->conn_close = true;
        else if (value_is(v + s, i - s, "keep-alive"))
            f->conn_keepalive = true;
    }
}

/* Take in a field that frames the message; others pass. Returns 0 or -400. */
static int apply_framing(struct framing *f, const struct lh_header *h)
{
    if (name_is(h, "content-length", 14))
        return parse_content_length(f, h->value, h->value_len);
    if (name_is(h, "transfer-encoding", 17))
        return parse_codings(&f->te, h->value, h->value_len);
    if (name_is(h, "connection", 10))
        parse_connection(f, h->value, h->value_len);
    return 0;
}

/* What a request or response makes of a field besides its framing: 0 or minus a status. */
typedef int (*field_fn)(void *msg, const struct lh_header *h);

/* The field lines from p up to the blank line that ends the head at end: each one
 * into hs[*n], what frames the message into f, and each one offered to more (which
 * may be NULL) with msg. Returns 0, -400 for a malformed line or framing field,
 * -431 for more than LH_MAX_HEADERS lines, or what more returned. */
static int parse_fields(const char *p, const char *end, struct lh_header *hs, uint32_t *n,
                        struct framing *f, field_fn more, void *msg)
{
    while (!(end - p >= 2 && p[0] == '\r' && p[1] == '\n')) {
        if (*n == LH_MAX_HEADERS)
            return -431;
        struct lh_header *h = &hs[(*n)++];
        int used = parse_field_line(p, end, h);
        if (used < 0)
            return used;
        int st = apply_framing(f, h);
        if (st == 0 && more)
            st = more(msg, h);
        if (st < 0)
            return st;
        p += used;
    }
    return 0;
}

/* The first of hs[0..n) named name (any case), or NULL. */
static const struct lh_header *find_header(const struct lh_header *hs, uint32_t n,
                                           const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < n; i++)
        if (name_is(&hs[i], name, len))
            return &hs[i];
    return NULL;
}

/* ---- request heads ----------------------------------------------------------- */

/* A field a request needs besides its framing: Host and Expect. Returns 0 or minus a
 * status. */
static int apply_request_field(void *msg, const struct lh_header *h)
{
    struct lh_request *r = msg;
    if (name_is(h, "host", 4)) {
        if (r->host || !host_ok(h->value, h->value_len))
            return -400;
        r->host = h;
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
    while (p < end && is((unsigned char)*p, TOKEN))
        p++;
    if (p == s || p >= end || *p != ' ')
        return -400;
    r->method = s;
    r->method_len = (uint32_t)(p - s);
    s = ++p;
    while (p < end && is((unsigned char)*p, TARGET))
        p++;
    if (p == s || p >= end || *p != ' ' || !authority_ok(s, (size_t)(p - s)))
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

/* Parse a complete head [start, end), end just past the blank line. */
static int parse_complete_head(const char *start, const char *end, struct lh_request *r)
{
    int n = parse_request_line(start, end, r);
    if (n < 0)
        return n;
    struct framing f = {.content_length = -1};
    int st = parse_fields(start + n, end, r->headers, &r->nheaders, &f,
                          apply_request_field, r);
    if (st < 0)
        return st;
    r->content_length = f.content_length;
    r->conn_close = f.conn_close;
    r->conn_keepalive = f.conn_keepalive;
    /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing; 6.3: with
     * Content-Length too, or without one chunked last, the length is unknown */
    const struct codings *te = &f.te;
    if (te->seen && (r->version == 10 || r->content_length >= 0 || !te->last_chunked ||
                     te->repeated))
        return -400;
    r->chunked = te->seen;
    if (r->version == 11 && !r->host)
        return -400;
    return te->unknown ? -501 : 0; /* RFC 9112 6.1; after the checks, so any 400 wins */
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
    size_t end;
    if (find_head_end(buf, len, start, scanned, &end) < 0)
        return -400;
    if (end == 0)
        return len - start > max_head ? too_long(buf + start, len - start, max_head) : 0;
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
    return find_header(r->headers, r->nheaders, name);
}

const char *lh_http_target_authority(const char *t, size_t len, size_t *alen)
{
    const char *sep = len > 0 && t[0] != '/' ? memchr(t, ':', len) : NULL, *end = t + len;
    if (!sep || end - sep < 3 || memcmp(sep, "://", 3) != 0)
        return NULL;
    const char *a = sep + 3, *p = a;
    while (p < end && *p != '/' && *p != '?')
        p++;
    *alen = (size_t)(p - a);
    return a;
}

const char *lh_http_host(const struct lh_request *r, size_t *len)
{
    size_t n = 0;
    const char *v = lh_http_target_authority(r->target, r->target_len, &n);
    if (!v && r->host) {
        v = r->host->value;
        n = r->host->value_len;
    }
    if (!v) {
        *len = 0;
        return "";
    }
    /* the parser has checked uri-host [":" port]: the first ':' after an IP literal's
     * ']', or in a name, starts the port */
    const char *from = n > 0 && v[0] == '[' ? memchr(v, ']', n) : NULL;
    if (!from)
        from = v;
    const char *colon = memchr(from, ':', n - (size_t)(from - v));
    *len = colon ? (size_t)(colon - v) : n;
    return v;
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

/* ---- response heads, for the outbound client --------------------------------- */

/* "HTTP/1.x SP 3DIGIT [SP reason] CRLF" at p; returns bytes used or -1. */
static int parse_status_line(const char *p, const char *end, struct lh_response_head *r)
{
    if (end - p < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ')
        return -1;
    r->version = p[7] == '1' ? 11 : 10;
    r->status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        r->status = r->status * 10 + (p[i] - '0');
    }
    if (r->status < 100)
        return -1;
    /* SP and a reason phrase, or CRLF right after the code ("HTTP/1.1 200") */
    const char *s = p + 12 + (p[12] == ' ');
    const char *q = s;
    while (p[12] == ' ' && q < end && is_field_byte((unsigned char)*q))
        q++;
    if (end - q < 2 || q[0] != '\r' || q[1] != '\n')
        return -1; /* "2000", "200x", a control byte in the reason */
    r->reason = s;
    r->reason_len = (uint32_t)(q - s);
    return (int)(q + 2 - p);
}

/* Parse a complete head [start, end), end just past the blank line; 0 or -1. */
static int parse_response(const char *start, const char *end, struct lh_response_head *r)
{
    int n = parse_status_line(start, end, r);
    if (n < 0)
        return -1;
    struct framing f = {.length_list = true, .content_length = -1};
    int st = parse_fields(start + n, end, r->headers, &r->nheaders, &f, NULL, NULL);
    if (st < 0)
        return st == -431 ? -2 : -1;
    const struct codings *te = &f.te;
    /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing; with
     * Content-Length too it is a smuggling attempt or a broken server: refuse rather
     * than guess which of the two the backend framed its body with */
    if (te->seen && (r->version == 10 || f.content_length >= 0 || te->repeated ||
                     !(te->chunked || te->unknown)))
        return -1;
    /* RFC 9110 8.6, RFC 9112 6.1: no body, so no Transfer-Encoding nor a length but 0
     * (a backend that sends one anyway may send a body after it, too) */
    if ((r->status < 200 || r->status == 204) && (te->seen || f.content_length > 0))
        return -1;
    r->content_length = f.content_length;
    r->chunked = te->last_chunked;
    r->te_other = te->unknown;
    r->conn_close = f.conn_close;
    r->conn_keepalive = f.conn_keepalive;
    return 0;
}

int lh_http_parse_response_head(const char *buf, size_t len, size_t *scanned,
                                size_t max_head, struct lh_response_head *r)
{
    size_t end;
    if (find_head_end(buf, len, 0, scanned, &end) < 0)
        return -1;
    if (end == 0)
        return len > max_head ? -2 : 0;
    if (end > max_head)
        return -2;
    memset(r, 0, offsetof(struct lh_response_head, headers));
    int st = parse_response(buf, buf + end, r);
    if (st < 0)
        return st;
    r->head_len = (uint32_t)end;
    return (int)end;
}

const struct lh_header *lh_http_response_header(const struct lh_response_head *r,
                                                const char *name)
{
    return find_header(r->headers, r->nheaders, name);
}

enum lh_body_framing lh_http_response_framing(const struct lh_response_head *r,
                                              bool head_request)
{
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
        return LH_FRAMING_NONE;
    if (r->chunked)
        return LH_FRAMING_CHUNKED;
    if (r->te_other) /* RFC 9112 6.3 item 4: chunked is not last */
        return LH_FRAMING_CLOSE;
    return r->content_length >= 0 ? LH_FRAMING_LENGTH : LH_FRAMING_CLOSE;
}

bool lh_http_response_reusable(const struct lh_response_head *r, bool head_request)
{
    if (r->status < 200 || r->conn_close ||
        lh_http_response_framing(r, head_request) == LH_FRAMING_CLOSE)
        return false;
    return r->version == 11 || r->conn_keepalive;
}

/* ---- chunked bodies (RFC 9112 7.1) --------------------------------------- */

enum {
    CH_SIZE0,      /* first hex digit of a chunk size */
    CH_SIZE,       /* more hex digits, BWS, ';' or CR */
    CH_EXT_BWS,    /* BWS before a ';' */
    CH_EXT_NAME0,  /* after ';': BWS, then the first byte of a name */
    CH_EXT_NAME,   /* in a name: more tchar, BWS, '=', ';' or CR */
    CH_EXT_EQ,     /* BWS after a name: then '=' or ';' */
    CH_EXT_VAL0,   /* after '=': BWS, then a token or a quoted-string */
    CH_EXT_TOKEN,  /* in a token value: more tchar, BWS, ';' or CR */
    CH_EXT_QUOTED, /* in a quoted-string value */
    CH_EXT_QPAIR,  /* the byte after a backslash in a quoted-string */
    CH_EXT_END,    /* after a quoted-string: BWS, ';' or CR */
    CH_SIZE_LF,    /* LF ending the size line */
    CH_DATA,       /* chunk data */
    CH_DATA_CR,    /* CR after chunk data */
    CH_DATA_LF,    /* LF after chunk data */
    CH_TR_START,   /* start of a trailer field line, or the final CRLF */
    CH_TR_NAME,    /* in a trailer field name, up to its colon */
    CH_TR_VALUE,   /* in a trailer field value, up to CR */
    CH_TR_LF,      /* LF ending a trailer line */
    CH_END_LF,     /* LF ending the message */
    CH_DONE,       /* the message is complete */
};

/*
 * The state after byte b of a size line's tail, or -1 (RFC 9112 7.1.1):
 *   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 * with a name a token and a value a token or a quoted-string. The extensions are
 * checked so that no two parsers can read the line differently, then ignored.
 */
static int ext_step(int state, unsigned char b)
{
    bool ws = is_ows(b);
    switch (state) {
    case CH_SIZE:
    case CH_EXT_TOKEN:
    case CH_EXT_END:
        if (state == CH_EXT_TOKEN && is(b, TOKEN))
            return state;
        return b == ';' ? CH_EXT_NAME0 : ws ? CH_EXT_BWS : b == '\r' ? CH_SIZE_LF : -1;
    case CH_EXT_BWS:
        return b == ';' ? CH_EXT_NAME0 : ws ? state : -1;
    case CH_EXT_NAME0:
        return is(b, TOKEN) ? CH_EXT_NAME : ws ? state : -1;
    case CH_EXT_NAME:
        if (is(b, TOKEN))
            return state;
        if (b == '=')
            return CH_EXT_VAL0;
        return b == ';' ? CH_EXT_NAME0 : ws ? CH_EXT_EQ : b == '\r' ? CH_SIZE_LF : -1;
    case CH_EXT_EQ:
        return b == '=' ? CH_EXT_VAL0 : b == ';' ? CH_EXT_NAME0 : ws ? state : -1;
    case CH_EXT_VAL0:
        return is(b, TOKEN) ? CH_EXT_TOKEN : b == '"' ? CH_EXT_QUOTED : ws ? state : -1;
    case CH_EXT_QUOTED: /* an unclosed quote meets CR here and fails */
        return b == '"' ? CH_EXT_END : b == '\\' ? CH_EXT_QPAIR : is(b, QDTEXT) ? state : -1;
    case CH_EXT_QPAIR: /* quoted-pair: HTAB / SP / VCHAR / obs-text */
        return is(b, QDTEXT) || b == '"' || b == '\\' ? CH_EXT_QUOTED : -1;
    default:
        return -1;
    }
}

/* The state after byte b of the framing around data and trailers, or -1. A trailer
 * line is a field line (7.1.2): a token, a colon, then a field value. */
static int frame_step(const struct lh_chunked *c, unsigned char b)
{
    switch (c->state) {
    case CH_SIZE_LF:
        return b != '\n' ? -1 : c->remaining ? CH_DATA : CH_TR_START;
    case CH_DATA_CR:
        return b == '\r' ? CH_DATA_LF : -1;
    case CH_DATA_LF:
        return b == '\n' ? CH_SIZE0 : -1;
    case CH_TR_START:
        if (b == '\r')
            return CH_END_LF;
        return is(b, TOKEN) ? CH_TR_NAME : -1; /* not an empty name, not obs-fold */
    case CH_TR_NAME:
        return b == ':' ? CH_TR_VALUE : is(b, TOKEN) ? CH_TR_NAME : -1;
    case CH_TR_VALUE:
        return b == '\r' ? CH_TR_LF : is_field_byte(b) ? CH_TR_VALUE : -1;
    case CH_TR_LF:
        return b == '\n' ? CH_TR_START : -1;
    case CH_END_LF:
        return b == '\n' ? CH_DONE : -1;
    default:
        return -1;
    }
}

/* Move past one byte b of framing (anything but chunk data). Returns 1 when the
 * message ended with it, 0 to go on, -1 on malformed framing. */
static int step(struct lh_chunked *c, unsigned char b, size_t max_trailer)
{
    int v = c->state <= CH_SIZE ? hexval(b) : -1;
    if (v >= 0) {
        if (++c->digits > 15)
            return -1; /* would overflow; no real chunk is that large */
        c->remaining = c->remaining * 16 + (uint64_t)v;
        c->state = CH_SIZE;
        return 0;
    }
    if (c->state >= CH_TR_START && c->state <= CH_TR_LF && ++c->trailer > max_trailer)
        return -1;
    if (c->state == CH_SIZE0)
        return -1; /* a size starts with a digit */
    int next = c->state < CH_SIZE_LF ? ext_step(c->state, b) : frame_step(c, b);
    if (next < 0)
        return -1;
    if (c->state == CH_SIZE_LF)
        c->digits = 0;
    c->state = (uint8_t)next;
    return next == CH_DONE;
}

int lh_chunked_decode(struct lh_chunked *c, const char *in, size_t len, char *out,
                      size_t *consumed, size_t *produced, size_t max_trailer)
{
    size_t i = 0, o = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        if (c->state != CH_DATA) {
            rc = step(c, (unsigned char)in[i++], max_trailer);
            continue;
        }
        size_t n = len - i;
        if (n > c->remaining)
            n = (size_t)c->remaining;
        memmove(out + o, in + i, n);
        i += n;
        o += n;
        c->remaining -= n;
        if (c->remaining == 0)
            c->state = CH_DATA_CR;
    }
    *consumed = i;
    *produced = o;
    return rc;
}
