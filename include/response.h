/* response.h - a response as status, headers and body, and the one place where it
 * is turned into the bytes of a status line and header block. */
#ifndef LH_RESPONSE_H
#define LH_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LH_RESP_MAX_HEADERS 64
#define LH_RESP_STORE 8192

enum lh_body_kind { LH_BODY_NONE, LH_BODY_MEM, LH_BODY_FILE };

struct lh_resp_header {
    const char *name;   /* NUL-terminated, in the response's store */
    const char *value;
};

struct lh_response {
    int status;
    uint32_t nheaders;
    uint32_t store_len;
    struct lh_resp_header headers[LH_RESP_MAX_HEADERS];
    char store[LH_RESP_STORE];          /* copies of header names and values */

    enum lh_body_kind body_kind;
    const char *body;                   /* LH_BODY_MEM: body_len bytes */
    size_t body_len;
    char *body_owned;                   /* malloc'd, freed by lh_response_free */
    int fd;                             /* LH_BODY_FILE: owned, closed by lh_response_free */
    int64_t file_off, file_len;
    bool no_body;                       /* HEAD: headers as for the body, no body sent */
    bool close;                         /* close the connection after this response */
    char page[512];                     /* built-in error pages are written here */
};

/* Start an empty response with this status (no headers, no body). */
void lh_response_init(struct lh_response *r, int status);

/* Add a header, copying name and value. Returns 0, or -1 when the response has no
 * room left (LH_RESP_MAX_HEADERS headers or LH_RESP_STORE bytes). */
int lh_response_header(struct lh_response *r, const char *name, const char *value);

/* The value of a header already added (case-insensitive name), or NULL. */
const char *lh_response_get(const struct lh_response *r, const char *name);

/* Remove every header with this name (case-insensitive). */
void lh_response_unset(struct lh_response *r, const char *name);

/* A memory body. owned (may be NULL) is freed with the response. */
void lh_response_body(struct lh_response *r, const char *body, size_t len, char *owned);

/* A file body: len bytes of fd from off. Takes ownership of fd, even on error. */
void lh_response_file(struct lh_response *r, int fd, int64_t off, int64_t len);

/* Make r the built-in page for status (an HTML body naming the status), dropping
 * any previous body and headers. */
void lh_response_error(struct lh_response *r, int status);

/* Move src into dst (both initialised or not; dst's old contents are not freed):
 * header pointers and a built-in page follow into dst. src is left empty. */
void lh_response_move(struct lh_response *dst, struct lh_response *src);

/* Release the body and the file; r can then be initialised again. */
void lh_response_free(struct lh_response *r);

/* Reason phrase for a status code ("Not Found"); "Unknown" for others. */
const char *lh_status_reason(int status);

/* Bytes of body that will be sent (0 for HEAD, 304, 204, 1xx). */
int64_t lh_response_body_bytes(const struct lh_response *r);

/*
 * Render the status line and header block into out: the headers of r, then Date,
 * Server, Content-Length (where the status allows a body), Connection (close when
 * !keepalive; keep-alive on an HTTP/1.0 response that stays open), and the blank
 * line. Returns the length, or 0 if it does not fit in outsz.
 */
size_t lh_response_render_head(const struct lh_response *r, int version, bool keepalive,
                               const char *date, char *out, size_t outsz);

#endif
