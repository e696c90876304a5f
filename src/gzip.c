/* gzip.c - gzip response compression and the compressed-file cache. See gzip.h. */
#include "gzip.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define ZLIB_CONST
#include <zlib.h>

/* ---- Accept-Encoding ------------------------------------------------------------ */

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

/* tchar of RFC 9110 5.6.2 */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The length of the token at s[0..n). */
static size_t token_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    return i;
}

static bool token_is(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* A qvalue (RFC 9110 12.4.2: "0" ["." 0*3DIGIT] / "1" ["." 0*3"0"]) in thousandths,
 * or -1 when s[0..n) is not one. */
static int qvalue(const char *s, size_t n)
{
    if (n == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    int v = (s[0] - '0') * 1000;
    if (n == 1)
        return v;
    if (s[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v += (s[i] - '0') * scale;
    }
    return v > 1000 ? -1 : v;
}

/*
 * One list element s[0..n), already trimmed: a coding, then parameters
 * (OWS ";" OWS name "=" value). Sets *coding / *clen and *q (thousandths; 1000 when no
 * q is given). Parameters other than q are ignored. false when it is malformed.
 */
static bool element(const char *s, size_t n, const char **coding, size_t *clen, int *q)
{
    size_t i = token_len(s, n);
    if (i == 0)
        return false;
    *coding = s;
    *clen = i;
    *q = 1000;
    while (i < n) {
        while (i < n && is_ows(s[i]))
            i++;
        if (i == n || s[i++] != ';')
            return false;
        while (i < n && is_ows(s[i]))
            i++;
        size_t name = i, nlen = token_len(s + i, n - i);
        i += nlen;
        if (nlen == 0 || i == n || s[i++] != '=')
            return false;
        size_t value = i, vlen = token_len(s + i, n - i);
        i += vlen;
        if (token_is(s + name, nlen, "q") && (*q = qvalue(s + value, vlen)) < 0)
            return false;
    }
    return true;
}

/* What the list says about one coding: listed with q > 0, listed with q = 0. */
struct verdict {
    bool yes, no;
};

static bool verdict_ok(const struct verdict *v) { return v->yes && !v->no; }

bool lh_gzip_accepted(const char *v, size_t len)
{
    struct verdict gzip = {false, false}, star = {false, false};
    const char *end = v ? v + len : NULL;
    for (const char *p = v; p && p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *s = p;
        p = comma ? comma + 1 : end;
        while (s < e && is_ows(*s))
            s++;
        while (e > s && is_ows(e[-1]))
            e--;
        const char *coding;
        size_t clen;
        int q;
        if (s == e || !element(s, (size_t)(e - s), &coding, &clen, &q))
            continue;
        struct verdict *which = NULL;
        if (token_is(coding, clen, "gzip") || token_is(coding, clen, "x-gzip"))
            which = &gzip;
        else if (token_is(coding, clen, "*"))
            which = &star;
        if (which && q > 0)
            which->yes = true;
        else if (which)
            which->no = true;
    }
    return gzip.yes || gzip.no ? verdict_ok(&gzip) : verdict_ok(&star);
}

/* ---- Content-Type --------------------------------------------------------------- */

/* application/<subtype> that is text, besides the +json and +xml ones */
static const char *const app_text[] = {"json", "javascript", "x-javascript", "ecmascript",
                                       "xml",  "toml",       "yaml",         "x-yaml"};

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && strncasecmp(s + n - k, suffix, k) == 0;
}

bool lh_gzip_type_ok(const char *ct, size_t len)
{
    if (!ct)
        return false;
    size_t i = 0;
    while (i < len && is_ows(ct[i]))
        i++;
    const char *type = ct + i;
    size_t tlen = token_len(type, len - i);
    i += tlen;
    if (tlen == 0 || i == len || ct[i++] != '/')
        return false;
    const char *sub = ct + i;
    size_t slen = token_len(sub, len - i);
    i += slen;
    if (slen == 0 || (i < len && ct[i] != ';' && !is_ows(ct[i])))
        return false;
    if (token_is(type, tlen, "text"))
        return !token_is(sub, slen, "event-stream");
    if (ends_with(sub, slen, "+json") || ends_with(sub, slen, "+xml"))
        return true;
    if (!token_is(type, tlen, "application"))
        return false;
    for (size_t k = 0; k < sizeof app_text / sizeof app_text[0]; k++)
        if (token_is(sub, slen, app_text[k]))
            return true;
    return false;
}

/* ---- compressing ---------------------------------------------------------------- */

/* The next piece of a buffer zlib's 32-bit counters can take. */
static uInt chunk(size_t *left)
{
    uInt k = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
    *left -= k;
    return k;
}

int lh_gzip_compress(const char *in, size_t n, int level, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (level == -1)
        level = LH_GZIP_LEVEL;
    if (level < 0 || level > 9)
        return -1;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer around the deflate data */
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, n); /* counts the gzip wrapper too */
    char *buf = malloc(cap);
    size_t in_left = n, out_left = cap;
    z.next_in = (const Bytef *)in;
    z.next_out = (Bytef *)buf;
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    while (rc == Z_OK) {
        if (z.avail_in == 0)
            z.avail_in = chunk(&in_left);
        if (z.avail_out == 0 && (z.avail_out = chunk(&out_left)) == 0)
            rc = Z_BUF_ERROR; /* past deflateBound: cannot happen */
        else
            rc = deflate(&z, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
    }
    size_t got = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    char *fit = realloc(buf, got); /* the bound is generous; give the rest back */
    *out = fit ? fit : buf;
    *out_len = got;
    return 0;
}

/* ---- ETag ----------------------------------------------------------------------- */

/* etagc of RFC 9110 8.8.3: %x21 / %x23-7E / obs-text */
static bool is_etagc(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x7f); }

size_t lh_gzip_etag(const char *etag, size_t len, char *out, size_t outsz)
{
    if (outsz > 0)
        out[0] = '\0';
    size_t w = len >= 2 && etag[0] == 'W' && etag[1] == '/' ? 2 : 0;
    if (len < w + 2 || etag[w] != '"' || etag[len - 1] != '"')
        return 0;
    for (size_t i = w + 1; i < len - 1; i++)
        if (!is_etagc((unsigned char)etag[i]))
            return 0;
    size_t n = len + LH_GZIP_ETAG_EXTRA;
    if (n >= outsz)
        return 0;
    memcpy(out, etag, len - 1);
    memcpy(out + len - 1, "-gzip\"", LH_GZIP_ETAG_EXTRA + 2); /* NUL included */
    return n;
}

/* ---- the cache of compressed files ---------------------------------------------- */

/*
 * One version of one file, in a hash chain (hashed by dev and ino only, so that an
 * older version of the same file is found on the way) and in the LRU list.
 */
struct entry {
    struct lh_gzkey key;
    char *data;         /* the gzip bytes; NULL: not worth compressing ("no") */
    size_t len;
    struct entry *chain;
    struct entry *prev, *next; /* toward the most / least recently used */
};

struct lh_gzcache {
    struct entry **bucket;
    size_t nbuckets;           /* a power of two */
    struct entry *mru, *lru;   /* the ends of the LRU list */
    size_t entries, bytes, max_bytes;
    uint64_t hits, misses, evictions;
};

#define FIRST_BUCKETS 64

void lh_gzkey_of(const struct stat *st, struct lh_gzkey *k)
{
    k->dev = (uint64_t)st->st_dev;
    k->ino = (uint64_t)st->st_ino;
    k->size = (int64_t)st->st_size;
    k->mtime_sec = (int64_t)st->st_mtim.tv_sec;
    k->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
    k->ctime_sec = (int64_t)st->st_ctim.tv_sec;
    k->ctime_nsec = (int64_t)st->st_ctim.tv_nsec;
}

static bool same_file(const struct lh_gzkey *a, const struct lh_gzkey *b)
{
    return a->dev == b->dev && a->ino == b->ino;
}

static bool same_version(const struct lh_gzkey *a, const struct lh_gzkey *b)
{
    return same_file(a, b) && a->size == b->size && a->mtime_sec == b->mtime_sec &&
           a->mtime_nsec == b->mtime_nsec && a->ctime_sec == b->ctime_sec &&
           a->ctime_nsec == b->ctime_nsec;
}

static size_t bucket_of(const struct lh_gzcache *c, const struct lh_gzkey *k)
{
    uint64_t h = (k->ino ^ (k->dev * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
    return (size_t)(h ^ (h >> 31)) & (c->nbuckets - 1);
}

/* What an entry counts against max_bytes. */
static size_t cost(const struct entry *e) { return sizeof *e + e->len; }

struct lh_gzcache *lh_gzcache_new(size_t max_bytes)
{
    struct lh_gzcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->bucket = calloc(FIRST_BUCKETS, sizeof *c->bucket);
    if (!c->bucket) {
        free(c);
        return NULL;
    }
    c->nbuckets = FIRST_BUCKETS;
    c->max_bytes = max_bytes;
    return c;
}

void lh_gzcache_free(struct lh_gzcache *c)
{
    if (!c)
        return;
    for (struct entry *e = c->mru, *next; e; e = next) {
        next = e->next;
        free(e->data);
        free(e);
    }
    free(c->bucket);
    free(c);
}

void lh_gzcache_stats(const struct lh_gzcache *c, struct lh_gzcache_stats *st)
{
    st->entries = c->entries;
    st->bytes = c->bytes;
    st->max_bytes = c->max_bytes;
    st->hits = c->hits;
    st->misses = c->misses;
    st->evictions = c->evictions;
}

static void lru_unlink(struct lh_gzcache *c, struct entry *e)
{
    *(e->prev ? &e->prev->next : &c->mru) = e->next;
    *(e->next ? &e->next->prev : &c->lru) = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct lh_gzcache *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->mru;
    *(c->mru ? &c->mru->prev : &c->lru) = e;
    c->mru = e;
}

static void drop(struct lh_gzcache *c, struct entry *e)
{
    struct entry **pp = &c->bucket[bucket_of(c, &e->key)];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(c, e);
    c->entries--;
    c->bytes -= cost(e);
    free(e->data);
    free(e);
}

/* Twice the buckets when there are more entries than buckets; on no memory the
 * chains just grow longer. */
static void maybe_grow(struct lh_gzcache *c)
{
    if (c->entries <= c->nbuckets || c->nbuckets > SIZE_MAX / 2 / sizeof *c->bucket)
        return;
    struct entry **old = c->bucket;
    size_t n = c->nbuckets;
    c->bucket = calloc(n * 2, sizeof *c->bucket);
    if (!c->bucket) {
        c->bucket = old;
        return;
    }
    c->nbuckets = n * 2;
    for (size_t i = 0; i < n; i++)
        for (struct entry *e = old[i], *next; e; e = next) {
            next = e->chain;
            size_t b = bucket_of(c, &e->key);
            e->chain = c->bucket[b];
            c->bucket[b] = e;
        }
    free(old);
}

/* Keep e (its data may be NULL), making room by evicting from the LRU end. Frees e
 * when it cannot fit even in the empty cache. */
static void insert(struct lh_gzcache *c, struct entry *e)
{
    if (cost(e) > c->max_bytes) {
        free(e->data);
        free(e);
        return;
    }
    while (c->bytes + cost(e) > c->max_bytes) {
        drop(c, c->lru);
        c->evictions++;
    }
    size_t b = bucket_of(c, &e->key);
    e->chain = c->bucket[b];
    c->bucket[b] = e;
    lru_push(c, e);
    c->entries++;
    c->bytes += cost(e);
    maybe_grow(c);
}

/* Read exactly n bytes of fd from offset 0 into buf; -1 when it has fewer or more. */
static int read_exactly(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    char more;
    ssize_t r;
    do
        r = pread(fd, &more, 1, (off_t)n);
    while (r < 0 && errno == EINTR);
    return r == 0 ? 0 : -1;
}

/* A new entry for key: the file compressed, or data NULL when gzip does not shrink
 * it or the result could never fit. NULL when reading or compressing fails. */
static struct entry *compress_file(const struct lh_gzcache *c, const struct lh_gzkey *key,
                                   int fd)
{
    size_t n = (size_t)key->size;
    struct entry *e = calloc(1, sizeof *e);
    char *raw = malloc(n);
    char *gz = NULL;
    size_t gz_len = 0;
    if (!e || !raw || read_exactly(fd, raw, n) < 0 ||
        lh_gzip_compress(raw, n, LH_GZIP_LEVEL, &gz, &gz_len) < 0) {
        free(raw);
        free(e);
        return NULL;
    }
    free(raw);
    e->key = *key;
    if (gz_len < n && sizeof *e + gz_len <= c->max_bytes) {
        e->data = gz;
        e->len = gz_len;
    } else {
        free(gz);
    }
    return e;
}

int lh_gzcache_get(struct lh_gzcache *c, const struct lh_gzkey *key, int fd,
                   const char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (key->size < (int64_t)LH_GZIP_MIN || key->size > LH_GZIP_FILE_MAX)
        return -1;
    struct entry *e = c->bucket[bucket_of(c, key)], *old = NULL;
    for (; e && !same_version(&e->key, key); e = e->chain)
        if (same_file(&e->key, key))
            old = e;
    if (e) {
        c->hits++;
        lru_unlink(c, e);
        lru_push(c, e);
    } else {
        if (old)
            drop(c, old); /* that file has changed since */
        c->misses++;
        if (!(e = compress_file(c, key, fd)))
            return -1;
        bool worth = e->data != NULL;
        insert(c, e); /* keeps every e with data; may free one without */
        if (!worth)
            return -1;
    }
    if (!e->data)
        return -1;
    *data = e->data;
    *len = e->len;
    return 0;
}
