/* http.h - strict HTTP/1.x parsing (RFC 9112): request heads, response heads (for
 * the outbound client) and chunked bodies.
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

/* A parsed response head. Every pointer points into the caller's buffer. */
struct lh_response_head {
    int version;              /* 10 for HTTP/1.0, 11 for HTTP/1.1 */
    int status;               /* 100..999 */
    const char *reason;       /* the reason phrase as sent, possibly empty */
    uint32_t reason_len;
    uint32_t head_len;        /* bytes of status line + headers + blank line */
    int64_t content_length;   /* -1 when absent */
    bool chunked;             /* Transfer-Encoding ends in chunked */
    bool te_other;            /* Transfer-Encoding names a coding other than chunked:
                                 alone or last, the body runs until close; before a
                                 final chunked, the dechunked body is still coded */
    bool conn_close;          /* Connection: close */
    bool conn_keepalive;      /* Connection: keep-alive */
    uint32_t nheaders;
    struct lh_header headers[LH_MAX_HEADERS];
};

/*
 * Parse the response head at the start of buf[0..len), strictly: a backend must not
 * be able to make the client read its response differently from how a careful peer
 * would (response splitting, desynchronised keep-alive connections).
 *
 * *scanned carries progress as for lh_http_parse_head (start it at 0 for each
 * response). max_head caps the head's bytes (below INT_MAX).
 *
 * Returns the head length (> 0) when a whole head was parsed into r; 0 when more
 * bytes are needed; -2 when the head is longer than max_head or has more than
 * LH_MAX_HEADERS fields ("response head too large"); -1 when it is malformed or
 * ambiguous. r is only meaningful after a return > 0.
 *
 * The status line is "HTTP/1.0" or "HTTP/1.1", SP, three digits 100..999, then SP
 * and a reason phrase (any bytes but control bytes other than HTAB; may be empty)
 * or nothing ("HTTP/1.1 200" CRLF). Any other version is -1, and so is an empty
 * line before the status line (a server may skip those in requests; a client has
 * no reason to). Lines end in CRLF; a bare CR or LF is -1 as soon as it arrives.
 * Field lines follow the request rules: a name is a token right before its colon,
 * a value has no control byte but HTAB (obs-text is allowed), surrounding
 * whitespace is not part of it, and obs-fold is -1.
 *
 * Also -1: a Content-Length other than 1*DIGIT of at most 18 digits, or values
 * that differ (several lines, or a list, with one value are taken as it); a
 * Transfer-Encoding with an empty value, a parameter, chunked named twice, together
 * with Content-Length or in HTTP/1.0 (RFC 9112 6.1: faulty framing); and a 1xx or
 * 204, which has no body, with Transfer-Encoding or a Content-Length other than 0.
 */
int lh_http_parse_response_head(const char *buf, size_t len, size_t *scanned,
                                size_t max_head, struct lh_response_head *r);

/* Case-insensitive header lookup; NULL when absent. Returns the first match. */
const struct lh_header *lh_http_response_header(const struct lh_response_head *r,
                                                const char *name);

/* How the body of a response ends (RFC 9112 6.3). */
enum lh_body_framing {
    LH_FRAMING_NONE,    /* no body: the next response's head follows the blank line */
    LH_FRAMING_LENGTH,  /* content_length bytes */
    LH_FRAMING_CHUNKED, /* chunked: decode it with lh_chunked_decode */
    LH_FRAMING_CLOSE,   /* everything up to the server's close */
};

/* The framing of r's body: NONE for a response to HEAD (head_request) and for 1xx,
 * 204 and 304; else CHUNKED when Transfer-Encoding ends in chunked, CLOSE for any
 * other Transfer-Encoding, LENGTH with a Content-Length, CLOSE without. A 2xx to
 * CONNECT (a tunnel) and a 101 (another protocol) are for the caller to notice. */
enum lh_body_framing lh_http_response_framing(const struct lh_response_head *r,
                                              bool head_request);

/* May the connection serve another request once r's body ended exactly where its
 * framing says? Yes for HTTP/1.1 without Connection: close and for HTTP/1.0 with
 * Connection: keep-alive (and not close); never when the body runs until close, nor
 * after a 1xx (the final response is still to come, or with 101 another protocol). */
bool lh_http_response_reusable(const struct lh_response_head *r, bool head_request);

/* Incremental decoder of a chunked body, a request's or a response's. Zero it to
 * start. */
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
 * (bytes after *consumed belong to the next message), 0 when all input was used
 * and more is needed, -1 on malformed framing (400). Chunk extensions must follow
 * RFC 9112 7.1.1 (";" name ["=" token / quoted-string], BWS around ";" and "=")
 * and are then ignored. Trailer lines must be field lines ("name: value") and are
 * skipped; their total is capped at max_trailer bytes.
 */
int lh_chunked_decode(struct lh_chunked *c, const char *in, size_t len, char *out,
                      size_t *consumed, size_t *produced, size_t max_trailer);

#endif
