/* response.h - a response as status, headers and body, and the one place where it
 * is turned into the bytes of a status line and header block. */
#ifndef LH_RESPONSE_H
#define LH_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header room. A response keeps LH_RESP_INLINE_HEADERS headers and LH_RESP_STORE
 * bytes of names and values inside itself (it lives in a worker's scratch and in
 * every paused request, so it stays small); past that the headers move to the heap,
 * up to LH_RESP_MAX_HEADERS lines and LH_RESP_MAX_STORE bytes (each name and value
 * counted with one byte more, its NUL). */
#define LH_RESP_INLINE_HEADERS 64
#define LH_RESP_STORE 8192
#define LH_RESP_MAX_HEADERS 1024
#define LH_RESP_MAX_STORE (128 * 1024)

/* LH_BODY_STREAM: the body is made piece by piece after the head is sent (a Lua
 * function, see send.c's lh_send_stream_*): no Content-Length; chunked on HTTP/1.1,
 * ended by closing the connection on HTTP/1.0. */
enum lh_body_kind { LH_BODY_NONE, LH_BODY_MEM, LH_BODY_FILE, LH_BODY_STREAM };

/* One header line: offsets into the response's store, where name and value are
 * NUL-terminated; use lh_response_name / lh_response_value. */
struct lh_resp_header {
    uint32_t name, name_len;
    uint32_t value, value_len;
};

/* Server headers that a header of the response replaces (lh_response_render_head). */
#define LH_RESP_HAS_DATE 1u
#define LH_RESP_HAS_SERVER 2u

struct lh_response {
    int status;
    uint32_t nheaders;
    uint32_t store_len;
    uint32_t has;                       /* LH_RESP_HAS_* */
    /* NULL while the inline arrays below are enough; malloc'd and owned otherwise */
    struct lh_resp_header *heap_headers;
    char *heap_store;
    uint32_t heap_headers_cap, heap_store_cap;

    enum lh_body_kind body_kind;
    const char *body;                   /* LH_BODY_MEM: body_len bytes */
    size_t body_len;
    char *body_owned;                   /* malloc'd, freed by lh_response_free */
    int fd;                             /* LH_BODY_FILE: owned, closed by lh_response_free */
    int64_t file_off, file_len;
    bool no_body;                       /* HEAD: headers as for the body, no body sent */
    int64_t known_length;               /* >= 0: the Content-Length to say with no_body
                                         * and no body (a proxied HEAD's, as the backend
                                         * said it) or with a stream (proxy()'s body of
                                         * a known length), which is then sent as it is,
                                         * not chunked */
    bool close;                         /* close the connection after this response */
    bool builtin;                       /* the server's own error page (lh_response_error,
                                         * docroot/404.html): front.c may give it another
                                         * body; a handler's own error body is not */
    char page[512];                     /* built-in error pages are written here */
    struct lh_resp_header inline_headers[LH_RESP_INLINE_HEADERS];
    char inline_store[LH_RESP_STORE];   /* last: lh_response_move copies only its used part */
};

/* Start an empty response with this status (no headers, no body). r must be new
 * (never initialised) or released with lh_response_free: what it held is not freed. */
void lh_response_init(struct lh_response *r, int status);

/* Add a header line, copying name and value (name_len and value_len bytes; neither
 * may hold a NUL). Several lines may have the same name. A Date or Server header
 * replaces the server's own. Returns 0, or -1 when the response is full
 * (LH_RESP_MAX_HEADERS lines, LH_RESP_MAX_STORE bytes) or memory ran out; r is then
 * unchanged. The values are not checked: see lh_response_name_class. */
int lh_response_add(struct lh_response *r, const char *name, size_t name_len,
                    const char *value, size_t value_len);

/* lh_response_add for NUL-terminated strings. */
int lh_response_header(struct lh_response *r, const char *name, const char *value);

/* Header i (< r->nheaders), and its name and value: NUL-terminated, owned by r. */
static inline const struct lh_resp_header *lh_response_at(const struct lh_response *r,
                                                          uint32_t i)
{
    return (r->heap_headers ? r->heap_headers : r->inline_headers) + i;
}
static inline const char *lh_response_name(const struct lh_response *r, uint32_t i)
{
    return (r->heap_store ? r->heap_store : r->inline_store) + lh_response_at(r, i)->name;
}
static inline const char *lh_response_value(const struct lh_response *r, uint32_t i)
{
    return (r->heap_store ? r->heap_store : r->inline_store) + lh_response_at(r, i)->value;
}

/* The value of the first header with this name (case-insensitive), or NULL. */
const char *lh_response_get(const struct lh_response *r, const char *name);

/* Remove every header with this name (case-insensitive). */
void lh_response_unset(struct lh_response *r, const char *name);

/* Remove every header (and free a store that grew onto the heap). */
void lh_response_clear_headers(struct lh_response *r);

/* What a header name set from Lua is, by RFC 9110 and this server's rules:
 *   BAD: not a token (empty, or a byte that is not a tchar);
 *   FRAMING: the server's own (Content-Length, Transfer-Encoding, Connection,
 *     Keep-Alive, and the other hop-by-hop names Upgrade, TE, Trailer,
 *     Proxy-Connection): not to be sent as given;
 *   SINGLE: one line that replaces the server's own (Date, Server, Content-Type);
 *   PLAIN: everything else. Names are compared without regard to case. */
enum lh_hname { LH_HNAME_BAD, LH_HNAME_PLAIN, LH_HNAME_SINGLE, LH_HNAME_FRAMING };
enum lh_hname lh_response_name_class(const char *name, size_t len);

/* Can these bytes be sent as a field value (RFC 9110 5.5: visible bytes, bytes from
 * 0x80, space and tab; no CR, LF, NUL or other control byte)? */
bool lh_response_value_ok(const char *value, size_t len);

/* Does a Connection value ask for the connection to be closed ("close" among its
 * comma-separated options, in any case)? */
bool lh_response_connection_close(const char *value, size_t len);

/* A memory body. owned (may be NULL) is freed with the response. */
void lh_response_body(struct lh_response *r, const char *body, size_t len, char *owned);

/* A file body: len bytes of fd from off. Takes ownership of fd, even on error. */
void lh_response_file(struct lh_response *r, int fd, int64_t off, int64_t len);

/* A streamed body (LH_BODY_STREAM): what makes it is the caller's to keep. */
void lh_response_stream(struct lh_response *r);

/* Is a body to be streamed after r's head (a streamed body, not for HEAD, and a
 * status that has a body)? Inline: every response is asked, and the first test
 * answers for all but streams. */
static inline bool lh_response_streams(const struct lh_response *r)
{
    return r->body_kind == LH_BODY_STREAM && !r->no_body && r->status >= 200 &&
           r->status != 204 && r->status != 304;
}

/* Make r the built-in page for status (an HTML body naming the status), dropping
 * any previous body and headers; r->builtin is set. */
void lh_response_error(struct lh_response *r, int status);

/* Move src into dst (both initialised or not; dst's old contents are not freed):
 * the headers (heap store included) and a built-in page follow into dst. src is
 * left empty. */
void lh_response_move(struct lh_response *dst, struct lh_response *src);

/* Release the body, the file and a heap header store; r can then be initialised
 * again. */
void lh_response_free(struct lh_response *r);

/* Reason phrase for a status code ("Not Found"); "Unknown" for others. */
const char *lh_status_reason(int status);

/* Bytes of body that will be sent (0 for HEAD, 304, 204, 1xx). */
int64_t lh_response_body_bytes(const struct lh_response *r);

/*
 * Render the status line and header block into out: Date and Server (unless r has
 * its own), the headers of r, Content-Length (where the status allows a body; for a
 * streamed body Transfer-Encoding: chunked on HTTP/1.1 and nothing on HTTP/1.0,
 * which the caller sends with keepalive false),
 * Connection (close when !keepalive; keep-alive on an HTTP/1.0 response that stays
 * open), and the blank line. Returns the length of the block; when that is more
 * than outsz, out holds nothing usable and the caller renders again into a buffer
 * of at least that size.
 */
size_t lh_response_render_head(const struct lh_response *r, int version, bool keepalive,
                               const char *date, char *out, size_t outsz);

#endif
