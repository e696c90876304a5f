/* form.h - what browsers and curl put in a request for a handler to read: the
 * Cookie header (RFC 6265 section 4.2), and form bodies, both
 * application/x-www-form-urlencoded (WHATWG URL, "application/x-www-form-urlencoded
 * parsing") and multipart/form-data (RFC 7578, RFC 2046 section 5.1).
 *
 * Pure functions: no I/O, no malloc. Each hands the fields it finds to a callback, in
 * the order they appear. Names and values point into the input or into a scratch
 * buffer the caller gives (at least as long as the input: decoding never lengthens),
 * and are valid only during the callback. The callback may longjmp (a Lua error):
 * the parsers hold nothing that would leak. */
#ifndef LH_FORM_H
#define LH_FORM_H

#include <stddef.h>

struct lh_form_field {
    const char *name;
    size_t name_len;
    const char *value; /* a part's bytes, for a file too */
    size_t value_len;
    const char *filename;     /* multipart: the part's filename; NULL: not a file */
    size_t filename_len;
    const char *content_type; /* multipart: the part's Content-Type; NULL: none */
    size_t content_type_len;
};

/* Called for each field; nonzero stops the parse, and the parser returns it. */
typedef int (*lh_form_cb)(void *ud, const struct lh_form_field *f);

/*
 * The Cookie header's value: name=value pairs separated by ";" (with or without the
 * space after it). Blanks around names and values are dropped; a value in double
 * quotes loses the quotes; nothing is percent-decoded (RFC 6265 leaves values
 * opaque). A pair without "=", or with an empty name, is skipped, never fatal. Only
 * name and value are set. Returns 0, or the callback's nonzero value.
 */
int lh_cookie_parse(const char *header, size_t len, lh_form_cb cb, void *ud);

/*
 * An application/x-www-form-urlencoded body: name=value pairs separated by "&";
 * "+" is a space and %XX a byte, in names and values; a pair without "=" is a name
 * with an empty value; empty pairs are skipped. scratch: at least len bytes. Returns
 * 0; -1 when the body is malformed (a "%" not followed by two hex digits), after the
 * fields before it were handed over; or the callback's nonzero value.
 */
int lh_form_urlencoded(const char *body, size_t len, char *scratch, lh_form_cb cb, void *ud);

/*
 * The boundary of a multipart/form-data Content-Type value (the media type in any
 * case, the boundary parameter quoted or not, other parameters around it). 0 with
 * *boundary pointing into content_type or into scratch (an escaped quoted string is
 * unescaped there; scratch: at least len bytes), 1 to 70 bytes long; -1 when the
 * type is not multipart/form-data or the boundary is missing or invalid.
 */
int lh_form_boundary(const char *content_type, size_t len, char *scratch,
                     const char **boundary, size_t *blen);

/*
 * A multipart/form-data body with that boundary: the parts between "--boundary" lines
 * (CRLF line ends; a bare LF is accepted too, as some clients send it), each with
 * headers, a blank line and its bytes; the body ends with "--boundary--" (what follows
 * is ignored, and so is a preamble before the first boundary). Each part's
 * Content-Disposition must be form-data with a name; its filename (if any) and
 * Content-Type are handed over too. Quoted names and filenames are unescaped: \"
 * and \\ only, as browsers escape no backslash (they send %22 for a quote, which
 * stays as it is) and a Windows path holds them; filename* (RFC 5987) is not read. value points into body. scratch: at least
 * len bytes. Returns 0; -1 when the body is malformed (no first boundary, a part
 * without headers or without a blank line after them, a part without a form-data
 * name, no closing boundary, a "--boundary" line with more than blanks after it: RFC
 * 2046 finds a delimiter by its prefix), after the parts before it were handed over,
 * or when blen is not 1 to 70; or the callback's nonzero value.
 */
int lh_form_multipart(const char *body, size_t len, const char *boundary, size_t blen,
                      char *scratch, lh_form_cb cb, void *ud);

#endif
