/* http.h - strict HTTP/1.x request parsing (RFC 9112): the head and chunked bodies.
 * Pure functions over caller-owned buffers: no I/O, no allocation. */
#ifndef LH_HTTP_H
#define LH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LH_MAX_HEADERS 100

struct lh_header {
    const char *name;   /* points into the parsed buffer; not NUL-terminated */
    const char *value;  /* leading and trailing whitespace removed */
    uint32_t name_len;
    uint32_t value_len;
};

/* A parsed request head. Every pointer points into the caller's buffer. */
struct lh_request {
    const char *method;
    const char *target;
    uint32_t method_len;
    uint32_t target_len;
    int version;              /* 10 for HTTP/1.0, 11 for HTTP/1.1 */
    uint32_t head_len;        /* bytes of request line + headers + blank line */
    int64_t content_length;   /* -1 when absent */
    bool chunked;             /* Transfer-Encoding: chunked (the only coding taken) */
    bool conn_close;          /* Connection: close */
    bool conn_keepalive;      /* Connection: keep-alive */
    bool expect_continue;     /* Expect: 100-continue */
    const struct lh_header *host; /* the Host header, NULL when absent */
    uint32_t nheaders;
    struct lh_header headers[LH_MAX_HEADERS];
};

/*
 * Parse the request head at the start of buf[0..len).
 *
 * *scanned carries progress between calls on the same growing buffer (start it at
 * 0 for each new request) so that a head arriving byte by byte is scanned once.
 * max_head is limits.header_bytes.
 *
 * Returns the head length (> 0) when a whole head was parsed into r; 0 when more
 * bytes are needed; or minus an HTTP status when the request must be refused and
 * the connection closed: -400 malformed or ambiguous, -414 request line longer than
 * max_head, -431 head longer than max_head or too many headers, -417 an Expect other
 * than 100-continue, -501 a transfer coding other than chunked before a final
 * chunked ("gzip, chunked"), -505 an HTTP version other than 1.0 and 1.1.
 *
 * Refused with 400 among others: a request-target with a byte >= 0x80 or a '#'
 * (RFC 3986), a Host that is not uri-host [":" port] (an empty one is valid), an
 * absolute-form target with userinfo or an empty or invalid host, and a
 * Transfer-Encoding that does not end in exactly one chunked, has parameters, comes
 * with Content-Length or in HTTP/1.0. Any 400 wins over 501.
 */
int lh_http_parse_head(const char *buf, size_t len, size_t *scanned, size_t max_head,
                       struct lh_request *r);

/* Case-insensitive header lookup; NULL when absent. Returns the first match. */
const struct lh_header *lh_http_header(const struct lh_request *r, const char *name);

/* The authority of an absolute-form request target t[0..len) ("http://a.example:80/x"
 * gives "a.example:80" in *alen bytes; it may be empty), or NULL for any other form
 * (origin-form "/x", "*"). Points into t. */
const char *lh_http_target_authority(const char *t, size_t len, size_t *alen);

/* The host r is for, without its port, as sent ("[::1]" keeps its brackets): the
 * authority of an absolute-form target, which replaces Host (RFC 9112 3.2.2), else
 * the Host header. Points into r's buffer, *len bytes; "" (never NULL) when neither
 * names a host (HTTP/1.0 without Host). */
const char *lh_http_host(const struct lh_request *r, size_t *len);

/* Is the method one of RFC 9110's (plus PATCH)? */
bool lh_http_method_known(const char *m, size_t len);

/* Incremental decoder of a chunked request body. Zero it to start. */
struct lh_chunked {
    uint8_t state;
    uint8_t digits;
    uint64_t remaining;   /* bytes left in the current chunk (or its size so far) */
    uint32_t trailer;     /* bytes of trailer section seen */
};

/*
 * Decode in[0..len) into out, which may be the same memory as in or lie before it
 * (decoding only ever shrinks). Sets *consumed (input bytes used) and *produced
 * (body bytes written). Returns 1 when the last chunk and trailers are complete
 * (bytes after *consumed belong to the next request), 0 when all input was used
 * and more is needed, -1 on malformed framing (400). Chunk extensions must follow
 * RFC 9112 7.1.1 (";" name ["=" token / quoted-string], BWS around ";" and "=")
 * and are then ignored. Trailer lines must be field lines ("name: value") and are
 * skipped; their total is capped at max_trailer bytes.
 */
int lh_chunked_decode(struct lh_chunked *c, const char *in, size_t len, char *out,
                      size_t *consumed, size_t *produced, size_t max_trailer);

#endif
