/* gzip.h - gzip response compression: who accepts it, what is worth it, the
 * compressing itself, and a worker's cache of compressed static files. Pure: the only
 * I/O is reading the file descriptor a caller hands to lh_gzcache_get.
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
#include <sys/stat.h>

#define LH_GZIP_MIN ((size_t)1024)              /* smaller bodies are sent as they are */
#define LH_GZIP_LEVEL 6                         /* zlib's default level; the cache uses it */
#define LH_GZIP_FILE_MAX ((int64_t)8 << 20)     /* larger files are never compressed */
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

/* ---- the cache of compressed static files ---------------------------------------- */

/*
 * Which version of a file: equal keys mean the same bytes. The change time is in it
 * because the size and modification time survive some edits (cp -p, touch -r).
 */
struct lh_gzkey {
    uint64_t dev, ino;
    int64_t size;
    int64_t mtime_sec, mtime_nsec;
    int64_t ctime_sec, ctime_nsec;
};

/* Fill *k from st (as fstat gives it for the file about to be served). */
void lh_gzkey_of(const struct stat *st, struct lh_gzkey *k);

/*
 * A worker's cache of gzip-compressed files, least recently used out first: each
 * version of a file is compressed once and kept while it fits. No locking: one per
 * process, used from one thread.
 */
struct lh_gzcache;

/*
 * An empty cache that keeps at most max_bytes: the compressed bytes plus each
 * entry's own bookkeeping (the hash table's array is extra: 8 to 16 bytes an entry).
 * Returns it, owned by the caller (lh_gzcache_free), or NULL when out of memory.
 */
struct lh_gzcache *lh_gzcache_new(size_t max_bytes);

/* Free c and every buffer it holds. NULL is fine. */
void lh_gzcache_free(struct lh_gzcache *c);

/*
 * The gzip-coded body of the file version *key, whose contents fd reads (with
 * pread from offset 0; fd stays the caller's, its offset unchanged). On a miss, reads
 * the key->size bytes, compresses them at LH_GZIP_LEVEL and keeps the result.
 * Returns 0 with *data / *len the compressed bytes, owned by the cache and valid until
 * the next call into it; or -1 (*data NULL, *len 0) when the file should go out as
 * it is: smaller than LH_GZIP_MIN or larger than LH_GZIP_FILE_MAX bytes, not made
 * smaller by gzip or too big for the cache once compressed (both remembered for this
 * key, so that the file is not compressed again), a read that fails or finds a size
 * other than key->size (the file changed: not remembered), or no memory.
 * A file whose key changed is a new entry; the old version's entry goes with it
 * when dev and ino are the same, else when it is the least recently used.
 */
int lh_gzcache_get(struct lh_gzcache *c, const struct lh_gzkey *key, int fd,
                   const char **data, size_t *len);

struct lh_gzcache_stats {
    size_t entries;     /* versions remembered, those not worth compressing included */
    size_t bytes;       /* what counts against max_bytes */
    size_t max_bytes;
    uint64_t hits;      /* gets answered from memory (a remembered "no" included) */
    uint64_t misses;    /* gets that read and compressed the file */
    uint64_t evictions; /* entries removed to make room */
};
void lh_gzcache_stats(const struct lh_gzcache *c, struct lh_gzcache_stats *st);

#endif
