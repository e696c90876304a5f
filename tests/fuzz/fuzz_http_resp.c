/* libFuzzer target: the response-head parser of the outbound client, its framing
 * decision, and chunked response bodies.
 * The first byte picks max_head (its upper bits) and whether the request was HEAD
 * (its lowest bit); the rest is what a backend sent on one connection: responses
 * are read one after the other as the client would, until one is refused, runs
 * until close or the bytes end. Checks that what the parser returns stays inside
 * the buffer and that the framing agrees with the head. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

/* field-vchar / SP / HTAB / obs-text */
static bool field_bytes(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* The head at buf[0..len), parsed fed whole and fed one byte at a time: the same
 * answer. Returns it, r filled from the whole parse. */
static int parse_twice(const char *buf, size_t len, size_t max_head, struct lh_response_head *r)
{
    static struct lh_response_head r2;
    size_t scanned = 0;
    int whole = lh_http_parse_response_head(buf, len, &scanned, max_head, r);
    int part = 0;
    size_t n = 0;
    scanned = 0;
    while (part == 0 && n < len)
        part = lh_http_parse_response_head(buf, ++n, &scanned, max_head, &r2);
    /* a bare CR/LF or too long: caught as early as it arrives, possibly before a
     * complete but too long head would have been seen */
    assert(part == whole || (part < 0 && whole < 0));
    if (whole > 0) {
        assert(n == (size_t)whole);
        assert(r2.status == r->status && r2.nheaders == r->nheaders &&
               r2.content_length == r->content_length && r2.chunked == r->chunked);
    }
    return whole;
}

/* Check r, a head of head_len bytes at buf, against what the parser promises. */
static void check_head(const char *buf, int head_len, size_t max_head,
                       const struct lh_response_head *r, bool head_request)
{
    size_t n = (size_t)head_len;
    assert(r->head_len == n && n <= max_head);
    assert(memcmp(buf, "HTTP/1.", 7) == 0 && n >= 16);
    assert(r->version == 10 || r->version == 11);
    assert(r->status >= 100 && r->status <= 999);
    assert(inside(r->reason, r->reason_len, buf, n) && field_bytes(r->reason, r->reason_len));
    assert(r->nheaders <= LH_MAX_HEADERS);
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const struct lh_header *h = &r->headers[i];
        assert(h->name_len > 0 && inside(h->name, h->name_len, buf, n));
        assert(inside(h->value, h->value_len, buf, n) && field_bytes(h->value, h->value_len));
        assert(!memchr(h->name, ':', h->name_len) && !memchr(h->name, ' ', h->name_len));
        if (h->value_len > 0) /* trimmed */
            assert(h->value[0] != ' ' && h->value[0] != '\t' &&
                   h->value[h->value_len - 1] != ' ' && h->value[h->value_len - 1] != '\t');
    }
    const struct lh_header *te = lh_http_response_header(r, "transfer-encoding");
    const struct lh_header *cl = lh_http_response_header(r, "content-length");
    assert(r->content_length >= -1 && (r->content_length >= 0) == (cl != NULL));
    assert((r->chunked || r->te_other) == (te != NULL));
    assert(!(te && cl)); /* never both: the client could be told two lengths */
    assert(!(te && r->version == 10));
    bool no_body = r->status < 200 || r->status == 204;
    assert(!(no_body && (te || r->content_length > 0)));

    enum lh_body_framing f = lh_http_response_framing(r, head_request);
    if (head_request || no_body || r->status == 304)
        assert(f == LH_FRAMING_NONE);
    else if (r->chunked)
        assert(f == LH_FRAMING_CHUNKED);
    else if (cl)
        assert(f == LH_FRAMING_LENGTH);
    else
        assert(f == LH_FRAMING_CLOSE);
    if (lh_http_response_reusable(r, head_request))
        assert(f != LH_FRAMING_CLOSE && !r->conn_close && r->status >= 200 &&
               (r->version == 11 || r->conn_keepalive));
}

/* Decode a chunked body at p[0..len) in place, byte by byte as a slow backend sends
 * it. Returns its length on the wire, or 0 when it is malformed or unfinished. */
static size_t dechunk(char *p, size_t len)
{
    struct lh_chunked c = {0};
    size_t raw = 0, out = 0, used, made;
    int rc = 0;
    for (size_t avail = 1; avail <= len && rc == 0; avail++) {
        rc = lh_chunked_decode(&c, p + raw, avail - raw, p + out, &used, &made, 1024);
        raw += used;
        out += made;
        assert(out <= raw && raw <= avail);
    }
    return rc == 1 ? raw : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_head = 64 + (size_t)(data[0] >> 1) * 64;
    bool head_request = data[0] & 1;
    data++, size--;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    static struct lh_response_head r;
    size_t off = 0;
    while (off < size) {
        int n = parse_twice(buf + off, size - off, max_head, &r);
        assert(n >= -2);
        if (n <= 0)
            break;
        assert((size_t)n <= size - off);
        check_head(buf + off, n, max_head, &r, head_request);
        off += (size_t)n;
        enum lh_body_framing f = lh_http_response_framing(&r, head_request);
        if (f == LH_FRAMING_LENGTH) {
            if ((uint64_t)r.content_length > size - off)
                break;
            off += (size_t)r.content_length;
        } else if (f == LH_FRAMING_CHUNKED) {
            size_t used = dechunk(buf + off, size - off);
            if (used == 0)
                break;
            off += used;
        } else if (f == LH_FRAMING_CLOSE) {
            break;
        }
    }
    free(buf);
    return 0;
}
