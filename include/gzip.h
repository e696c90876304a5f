/* gzip.h - gzip response compression: who accepts it, what is worth it, the
 * compressing itself. Pure: no I/O.
 *
 * The rule a caller follows (contract section 8, `compress`): compress a response
 * when lh_gzip_accepted(Accept-Encoding) and lh_gzip_type_ok(Content-Type), the body
 * has at least LH_GZIP_MIN bytes, the response has no Content-Encoding yet (a .svgz
 * file is image/svg+xml already gzipped) and the request has no Range (a Range
 * request gets identity bytes); send the compressed body only when it is smaller than
 * the identity one, with Content-Encoding: gzip and the ETag from lh_gzip_etag. Every
 * response that could have been compressed, either way, carries
 * Vary: Accept-Encoding. */
#ifndef LH_GZIP_H
#define LH_GZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LH_GZIP_MIN ((size_t)1024)              /* smaller bodies are sent as they are */
#define LH_GZIP_LEVEL 6                         /* zlib's default level */
#define LH_GZIP_ETAG_EXTRA 5                    /* what lh_gzip_etag adds: "-gzip" */

/*
 * Does an Accept-Encoding value (RFC 9110 12.5.3; need not be NUL-terminated) let
 * the response be gzip-coded? A list of codings, each with an optional ";q=" weight,
 * any case, optional whitespace. True when gzip or x-gzip is listed with q > 0 and
 * neither is listed with q = 0; when neither is listed, "*" decides the same way.
 * identity and the other codings do not matter. A malformed
 * element (a bad token or qvalue) is skipped as if absent. NULL or an empty value
 * (the client wants no coding): false.
 */
bool lh_gzip_accepted(const char *accept_encoding, size_t len);

/*
 * Is a response of this Content-Type (need not be NUL-terminated) text that gzip
 * shrinks? Only the media type counts, not its parameters, in any case: any text
 * type (but text/event-stream, which is streamed), application/json, javascript,
 * ecmascript, xml, toml and yaml, and every type with a +json or +xml suffix
 * (image/svg+xml included). Images, audio, video, fonts, archives, wasm: false.
 */
bool lh_gzip_type_ok(const char *content_type, size_t len);

/*
 * Compress in[0..n) into one gzip member (RFC 1952) at level (0-9, or -1 for
 * LH_GZIP_LEVEL). Any n works, 0 included; it is for the caller to apply LH_GZIP_MIN
 * and to keep the result only when it is smaller than n. Returns 0 with *out a
 * malloc'd buffer the caller frees and *out_len its length; -1 (bad level, no
 * memory) with *out NULL.
 */
int lh_gzip_compress(const char *in, size_t n, int level, char **out, size_t *out_len);

/*
 * The entity tag of the gzip-coded body, from the identity body's etag (len bytes,
 * need not be NUL-terminated): "-gzip" goes before the closing quote, and a W/
 * prefix stays, so "\"abc\"" gives "\"abc-gzip\"" and "W/\"abc\"" gives
 * "W/\"abc-gzip\"". Writes it NUL-terminated into out (outsz bytes; len +
 * LH_GZIP_ETAG_EXTRA + 1 is always enough). Returns its length, or 0 (out holds "" if
 * outsz > 0) when etag is not a quoted entity tag or out is too small.
 */
size_t lh_gzip_etag(const char *etag, size_t len, char *out, size_t outsz);

#endif
