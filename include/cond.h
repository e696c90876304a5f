/* cond.h - HTTP dates, entity tags, conditional requests and Range; pure helpers. */
#ifndef LH_COND_H
#define LH_COND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LH_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Format t as an IMF-fixdate into out (at least LH_HTTP_DATE_LEN + 1 bytes). */
void lh_http_date(time_t t, char *out);

/*
 * Parse an HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime forms).
 * s need not be NUL-terminated. Returns 0 and sets *t, or -1 if it is not a date.
 */
int lh_http_date_parse(const char *s, size_t len, time_t *t);

/*
 * Write the strong entity tag for a file of this size and modification time
 * (nanoseconds included), quotes included, into out (at least 48 bytes): lower-case
 * hex "\"<mtime_sec>.<mtime_nsec>-<size>\"", e.g. "\"5f1c2b3a.1d2e3f-267\"". An
 * nsec outside 0..999999999 counts as 0. Returns its length (at most 44).
 */
size_t lh_etag(int64_t size, int64_t mtime_sec, long mtime_nsec, char *out);

/*
 * Does an If-None-Match header value (a list of entity tags, or "*") match etag?
 * Uses weak comparison (W/ prefixes ignored), as RFC 9110 13.1.2 asks.
 */
bool lh_etag_match(const char *header, size_t len, const char *etag);

/*
 * Should a GET/HEAD of a resource with this etag and mtime get 304?
 * inm / ims are the If-None-Match and If-Modified-Since values (NULL when absent).
 * If-None-Match, when present, decides alone; an unparsable If-Modified-Since is
 * ignored.
 */
bool lh_not_modified(const char *inm, size_t inm_len, const char *ims, size_t ims_len,
                     const char *etag, time_t mtime);

enum lh_range_result {
    LH_RANGE_NONE = 0,       /* no usable Range: send the whole file with 200 */
    LH_RANGE_OK = 1,         /* one satisfiable range: 206 */
    LH_RANGE_UNSATISFIABLE = 2 /* 416 with Content-Range: bytes * /size */
};

/*
 * Parse a Range header value for a file of `size` bytes. Only the "bytes" unit and a
 * single range are honoured ("a-b", "a-", "-n"); a syntactically invalid header, an
 * unknown unit or a list of several ranges is ignored (LH_RANGE_NONE). b past the end
 * is clamped. On LH_RANGE_OK, *first and *last are the inclusive byte positions.
 */
enum lh_range_result lh_range_parse(const char *v, size_t len, int64_t size,
                                    int64_t *first, int64_t *last);

/*
 * If-Range: true when the Range header may be honoured (the validator matches the
 * etag exactly with a strong comparison, or is a date equal to mtime).
 */
bool lh_if_range_ok(const char *v, size_t len, const char *etag, time_t mtime);

#endif
