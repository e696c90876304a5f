/* path.h - request-target decoding and normalisation; pure, no I/O. */
#ifndef LH_PATH_H
#define LH_PATH_H

#include <stddef.h>
#include <stdbool.h>

/*
 * Split an origin-form request target ("/a%20b/c?x=1") into its path and query.
 * Sets *path_len to the length of the path part and *query / *query_len to the
 * part after the first '?' (NULL / 0 when there is none). Never fails.
 */
void lh_path_split(const char *target, size_t len, size_t *path_len,
                   const char **query, size_t *query_len);

/*
 * Decode and normalise the path part of a request target into out (NUL-terminated,
 * always starting with '/').
 *
 * - percent-decodes exactly once ("%252e" stays "%2e" literally);
 * - refuses with 404 a raw or decoded NUL, an encoded slash ("%2f"), a raw or
 *   decoded backslash ("\\", "%5c"); with 400 a bad percent escape ("%zz", "%4")
 *   or a path that does not start with '/';
 * - removes "." segments and empty segments ("//"); ".." removes the previous
 *   segment, and a ".." that would climb above "/" is refused with 403;
 * - keeps a trailing slash if the target had one ("/a/b/" stays "/a/b/",
 *   "/a/b/.." becomes "/a/").
 *
 * Returns 0 on success, or an HTTP status (400, 403, 404) describing the refusal;
 * decoding comes first, so its refusals (400, 404) win over a 403. out must hold at
 * least len + 2 bytes, else 414. After a refusal out is "" (when outsz > 0).
 */
int lh_path_normalize(const char *path, size_t len, char *out, size_t outsz);

/*
 * Normalise a path that is already decoded (what a before hook assigns to req.path):
 * lh_path_normalize without its decoding, so '%' is an ordinary byte and "%2e%2e" an
 * ordinary name, never a ".." segment. Refuses with 404 a NUL or a backslash (what
 * lh_path_normalize refuses once decoded), with 403 a ".." that would climb above
 * "/", with 400 a path that does not start with '/'. Dot segments, empty segments
 * and the trailing slash are treated as there. Same return value and same contract
 * for out (at least len + 2 bytes, else 414; "" after a refusal); out must not
 * overlap path.
 */
int lh_path_resolve(const char *path, size_t len, char *out, size_t outsz);

/* True if any segment of the normalised path starts with '.' ("/.env", "/a/.git/x"). */
bool lh_path_has_dotfile(const char *norm);

/*
 * Percent-decode a query component (in[0..len), need not be NUL-terminated) into out:
 * '+' becomes ' ', "%XX" its byte (which may be NUL); a bad escape is kept literally.
 * Writes at most outsz-1 bytes plus a NUL (nothing when outsz is 0) and returns the
 * number of bytes written before that NUL; outsz = len + 1 never truncates.
 * Used for query keys and values.
 */
size_t lh_query_decode(const char *in, size_t len, char *out, size_t outsz);

/*
 * Write into out (capacity outsz, NUL-terminated) an HTML-escaped copy of s
 * (& < > " ' escaped). Returns the length written, or (size_t)-1 if it did not fit
 * (out's contents are then unspecified).
 */
size_t lh_html_escape(const char *s, char *out, size_t outsz);

/*
 * Percent-encode s into out for use in a URL path (keeps the unreserved characters
 * A-Z a-z 0-9 - . _ ~ and '/'; everything else becomes %XX, upper-case hex).
 * Returns the length written, or (size_t)-1 if it did not fit in outsz (incl. NUL).
 */
size_t lh_url_escape_path(const char *s, char *out, size_t outsz);

#endif
