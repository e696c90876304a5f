/* Unit tests for gzip.c: Accept-Encoding, compressible types, compressing, ETags and
 * the cache of compressed files (over real files in a mkdtemp folder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cond.h"
#include "gzip.h"
#include "mime.h"

/* A copy of s in a buffer of exactly its length, so that reading past len shows
 * under AddressSanitizer. Free it. */
static char *exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

/* ---- Accept-Encoding ------------------------------------------------------------ */

static bool accepted(const char *v)
{
    char *p = exact(v, strlen(v));
    bool ok = lh_gzip_accepted(p, strlen(v));
    free(p);
    return ok;
}

static void test_accept_encoding(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        bool ok;
    } cases[] = {
        {"gzip", true},
        {"GZIP", true},
        {"x-gzip", true},
        {"X-Gzip", true},
        {"gzip;q=0", false},
        {"deflate, gzip;q=0.5", true},
        {"deflate,gzip", true},
        {"gzip, deflate, br, zstd", true},
        {"*", true},
        {"*;q=0", false},
        {"gzip;q=0, *", false},
        {"*, gzip;q=0", false},
        {"x-gzip;q=0, *", false},
        {"*;q=0, gzip", true}, /* listed by name: * does not decide */
        {"gzip, gzip;q=0", false},
        {"br", false},
        {"deflate, br;q=1.0", false},
        {"identity", false},
        {"identity;q=0", false},
        {"identity;q=0, gzip", true},
        {"br;q=1, gzip;q=0.1", true},
        {"", false},
        {" ", false},
        {",", false},
        {";;,,q=", false},
        {"gzip ; q=0.000", false},
        {"gzip;q=1.0", true},
        {"gzip;q=1.000", true},
        {"gzip;q=1.", true},
        {"gzip;Q=0.001", true},
        {"\tgzip\t;\tq=0.8\t", true},
        {"  gzip  ", true},
        {",gzip,", true},
        {"gzip;level=9", true}, /* unknown parameters are ignored */
        /* malformed elements are skipped, as if absent */
        {"gzip;q=1.5", false},
        {"gzip;q=2", false},
        {"gzip;q=1.001", false},
        {"gzip;q=0.5000", false},
        {"gzip;q=", false},
        {"gzip;q=abc", false},
        {"gzip;q=-1", false},
        {"gzip;q = 0.5", false},
        {"gzip;", false},
        {"gzip;q=0.5;", false},
        {"gzip foo", false},
        {"\"gzip\"", false},
        {"gzip;q=abc, *", true},
        {"gzip;q=abc, br", false},
        {"gzipx", false},
        {"gzi", false},
        {"xgzip", false},
        {"g\x01zip, gzip", true},
        {"\x80\xff;;=,=;q=0,gzip;q=0.9", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (accepted(cases[i].v) != cases[i].ok)
            fail_msg("Accept-Encoding \"%s\": expected %d", cases[i].v, cases[i].ok);
    assert_false(lh_gzip_accepted(NULL, 0));
}

/* only len bytes count */
static void test_accept_encoding_uses_len(void **state)
{
    (void)state;
    assert_true(lh_gzip_accepted("gzip;q=0", 4));
    assert_false(lh_gzip_accepted("gzip", 3));
    assert_false(lh_gzip_accepted("br, gzip", 2));
    assert_true(lh_gzip_accepted("br, gzip;q=0.5", 8));
    assert_false(lh_gzip_accepted("gzip", 0));
    char buf[] = {'g', 'z', 'i', 'p', '\0', ';', 'q', '=', '0'};
    assert_false(lh_gzip_accepted(buf, sizeof buf)); /* a NUL is not a token char */
}

/* ---- Content-Type --------------------------------------------------------------- */

static bool type_ok(const char *ct)
{
    char *p = exact(ct, strlen(ct));
    bool ok = lh_gzip_type_ok(p, strlen(ct));
    free(p);
    return ok;
}

static void test_content_type(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "text/html", "text/html; charset=utf-8", "TEXT/HTML;charset=UTF-8", "text/css",
        "text/plain", "text/csv", "text/markdown", "text/javascript", "text/xml",
        " text/html", "text/html ; charset=utf-8", "application/json",
        "Application/JSON ; charset=utf-8", "application/javascript",
        "application/x-javascript", "application/ecmascript", "application/xml",
        "application/toml", "application/yaml", "application/ld+json",
        "application/vnd.api+json", "application/problem+json", "image/svg+xml",
        "image/svg+xml; charset=utf-8", "application/xhtml+xml", "application/rss+xml",
        "application/atom+xml", "application/manifest+json",
    };
    static const char *const no[] = {
        "image/png", "image/jpeg", "image/webp", "application/octet-stream",
        "application/wasm", "application/gzip", "application/zip", "application/pdf",
        "font/woff2", "video/mp4", "audio/mpeg", "application/epub+zip",
        "model/vnd.usdz+zip", "text/event-stream", "text/event-stream; charset=utf-8",
        "TEXT/EVENT-STREAM", "", " ", "text", "text/", "/html", "texthtml",
        "application/jsonx", "application/json5", "xapplication/json", "x/+json",
        "application/+xml", "text/html/x", "text/ht\"ml", ";text/html", "multipart/form-data",
        "application/x-www-form-urlencoded",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!type_ok(yes[i]))
            fail_msg("\"%s\" should be compressed", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (type_ok(no[i]))
            fail_msg("\"%s\" should not be compressed", no[i]);
    assert_false(lh_gzip_type_ok(NULL, 0));
    assert_false(lh_gzip_type_ok("text/html", 4));
    assert_false(lh_gzip_type_ok("application/json", 13));
    assert_false(lh_gzip_type_ok("image/svg+xml", 11));
    assert_true(lh_gzip_type_ok("text/htmlX", 9));
}

/* What mime.c gives each extension: the text types (those with a charset) are the
 * compressible ones; .svgz is, by type, but arrives gzip-coded already. */
static void test_content_type_of_every_extension(void **state)
{
    (void)state;
    static const char *const ext[] = {
        "3gp",  "7z",   "aac",  "apng",  "atom",     "avi",  "avif",        "bmp",  "bz2",
        "cjs",  "css",  "csv",  "doc",   "docx",     "eot",  "epub",        "flac", "geojson",
        "gif",  "glb",  "gltf", "gz",    "heic",     "heif", "htm",         "html", "ico",
        "ics",  "jpeg", "jpg",  "js",    "json",     "jsonld", "jxl",       "lua",  "m3u8",
        "m4a",  "m4v",  "map",  "markdown", "md",    "mjs",  "mkv",         "mov",  "mp3",
        "mp4",  "mpd",  "mpeg", "mpg",   "odp",      "ods",  "odt",         "oga",  "ogg",
        "ogv",  "opus", "otf",  "pdf",   "png",      "ppt",  "pptx",        "rar",  "rss",
        "rtf",  "svg",  "svgz", "tar",   "tif",      "tiff", "toml",        "tsv",  "ttf",
        "txt",  "usdz", "vcf",  "vtt",   "wasm",     "wav",  "weba",        "webm",
        "webmanifest", "webp", "woff", "woff2", "xhtml", "xls", "xlsx",     "xml",  "xz",
        "yaml", "yml",  "zip",  "zst",   "unknown-ext",
    };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "a.%s", ext[i]);
        const char *ct = lh_mime_type(name);
        bool text = strstr(ct, "charset=") != NULL;
        if (lh_gzip_type_ok(ct, strlen(ct)) != text)
            fail_msg("%s (%s): expected %d", name, ct, text);
        bool coded = lh_mime_encoding(name) != NULL;
        assert_int_equal(coded, strcmp(ext[i], "svgz") == 0);
    }
}

/* ---- compressing ---------------------------------------------------------------- */

/* gz must be exactly one gzip member whose contents are want[0..n). */
static void assert_gunzips_to(const char *gz, size_t gz_len, const char *want, size_t n)
{
    assert_true(gz_len >= 18);
    assert_int_equal((unsigned char)gz[0], 0x1f);
    assert_int_equal((unsigned char)gz[1], 0x8b);
    assert_int_equal((unsigned char)gz[2], 8); /* deflate */
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)gz;
    z.avail_in = (uInt)gz_len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)(n + 1);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.avail_in, 0);
    assert_int_equal(z.total_out, n);
    assert_memory_equal(buf, want, n);
    inflateEnd(&z);
    free(buf);
}

/* n bytes of text made of words in an order that does not repeat soon: gzip shrinks
 * it well, but not to nothing. seed picks the text. */
static char *text(size_t n, unsigned seed)
{
    static const char *const words[] = {"lorem", "ipsum", "dolor", "sit", "amet",
                                        "<div class=\"x\">", "</div>\n", "{\"k\": ",
                                        "function", "return", "var", "42", "\n"};
    char *s = malloc(n + 1);
    assert_non_null(s);
    uint32_t x = seed * 2654435761u + 1;
    size_t i = 0;
    while (i < n) {
        x = x * 1664525u + 1013904223u;
        const char *w = words[(x >> 16) % (sizeof words / sizeof words[0])];
        for (; *w && i < n; w++)
            s[i++] = *w;
        if (i < n)
            s[i++] = ' ';
    }
    s[n] = '\0';
    return s;
}

static char *random_bytes(size_t n, unsigned seed)
{
    char *s = malloc(n ? n : 1);
    assert_non_null(s);
    uint64_t x = seed + 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s[i] = (char)(x >> 24);
    }
    return s;
}

static void roundtrip(const char *in, size_t n, int level, size_t *gz_len)
{
    char *gz = (char *)1;
    assert_int_equal(lh_gzip_compress(in, n, level, &gz, gz_len), 0);
    assert_non_null(gz);
    assert_gunzips_to(gz, *gz_len, in, n);
    free(gz);
}

static void test_compress_roundtrip(void **state)
{
    (void)state;
    size_t len;
    roundtrip(NULL, 0, -1, &len);
    roundtrip("", 0, 9, &len);
    assert_true(len > 0);
    roundtrip("x", 1, -1, &len);
    assert_true(len > 1); /* the wrapper alone is 18 bytes: below LH_GZIP_MIN, no gain */

    char *t = text(100 * 1024, 1);
    for (int level = -1; level <= 9; level++) {
        roundtrip(t, 100 * 1024, level, &len);
        if (level != 0)
            assert_true(len < 100 * 1024 / 3);
    }
    free(t);

    /* random bytes come out larger: why a caller keeps the result only when smaller */
    char *r = random_bytes(64 * 1024, 7);
    roundtrip(r, 64 * 1024, -1, &len);
    assert_true(len > 64 * 1024);
    free(r);
    r = random_bytes(1, 3);
    roundtrip(r, 1, 1, &len);
    free(r);
}

static void test_compress_bad_level(void **state)
{
    (void)state;
    char *gz = (char *)1;
    size_t len = 99;
    assert_int_equal(lh_gzip_compress("abc", 3, 10, &gz, &len), -1);
    assert_null(gz);
    assert_int_equal(len, 0);
    gz = (char *)1;
    assert_int_equal(lh_gzip_compress("abc", 3, -2, &gz, &len), -1);
    assert_null(gz);
}

/* ---- ETag ----------------------------------------------------------------------- */

static void etag_is(const char *in, const char *want)
{
    char out[128];
    char *p = exact(in, strlen(in));
    size_t n = lh_gzip_etag(p, strlen(in), out, sizeof out);
    free(p);
    if (n != strlen(want) || strcmp(out, want) != 0)
        fail_msg("etag %s: got %s (%zu), want %s", in, out, n, want);
}

static void test_etag(void **state)
{
    (void)state;
    etag_is("\"abc\"", "\"abc-gzip\"");
    etag_is("W/\"abc\"", "W/\"abc-gzip\"");
    etag_is("\"\"", "\"-gzip\"");
    etag_is("\"5f1c2b3a.1d2e3f-267\"", "\"5f1c2b3a.1d2e3f-267-gzip\"");
    etag_is("\"\x80\xff!#~\"", "\"\x80\xff!#~-gzip\"");
    /* not entity tags */
    static const char *const bad[] = {"abc", "\"abc", "abc\"", "\"", "", "W/abc", "W/\"",
                                      "w/\"abc\"", "\"a\"b\"", "\"a b\"", "\"a\x7f\"",
                                      " \"abc\"", "\"abc\" ", "W/ \"abc\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        etag_is(bad[i], "");
}

static void test_etag_sizes(void **state)
{
    (void)state;
    char out[16];
    const char *e = "\"abcd\""; /* 6 bytes: needs 6 + 5 + 1 */
    memset(out, 'X', sizeof out);
    assert_int_equal(lh_gzip_etag(e, 6, out, 12), 11);
    assert_string_equal(out, "\"abcd-gzip\"");
    memset(out, 'X', sizeof out);
    assert_int_equal(lh_gzip_etag(e, 6, out, 11), 0);
    assert_string_equal(out, "");
    out[0] = 'X';
    assert_int_equal(lh_gzip_etag(e, 6, out, 0), 0);
    assert_int_equal(out[0], 'X'); /* nothing written */
    assert_int_equal(lh_gzip_etag("\"abc\"xyz", 5, out, sizeof out), 10); /* uses len */
    assert_string_equal(out, "\"abc-gzip\"");
}

/* the two bodies' tags differ, even under weak comparison */
static void test_etag_differs(void **state)
{
    (void)state;
    char id[48], gz[48 + LH_GZIP_ETAG_EXTRA];
    size_t n = lh_etag(4096, 1700000000, 123456789, id);
    assert_int_equal(lh_gzip_etag(id, n, gz, sizeof gz), n + LH_GZIP_ETAG_EXTRA);
    assert_false(lh_etag_match(id, strlen(id), gz));
    assert_false(lh_etag_match(gz, strlen(gz), id));
    assert_true(lh_etag_match(gz, strlen(gz), gz));
    char hdr[128];
    snprintf(hdr, sizeof hdr, "W/%s", gz);
    assert_true(lh_etag_match(hdr, strlen(hdr), gz));
}

/* ---- the cache ------------------------------------------------------------------ */

struct files {
    char dir[64];
    int n;
};

static int files_setup(void **state)
{
    struct files *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/lh-gzip-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int files_teardown(void **state)
{
    struct files *f = *state;
    for (int i = 0; i < f->n; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/f%d", f->dir, i);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A new file holding data[0..n), opened for reading and writing; *k its key. */
static int new_file(struct files *f, const char *data, size_t n, struct lh_gzkey *k)
{
    char p[128];
    snprintf(p, sizeof p, "%s/f%d", f->dir, f->n++);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    lh_gzkey_of(&st, k);
    assert_int_equal(k->size, (int64_t)n);
    return fd;
}

static struct lh_gzcache_stats stats(const struct lh_gzcache *c)
{
    struct lh_gzcache_stats st;
    lh_gzcache_stats(c, &st);
    return st;
}

static void test_key_of(void **state)
{
    (void)state;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_dev = 3;
    st.st_ino = 77;
    st.st_size = 5000;
    st.st_mtim.tv_sec = 1700000000;
    st.st_mtim.tv_nsec = 5;
    st.st_ctim.tv_sec = 1700000001;
    st.st_ctim.tv_nsec = 6;
    struct lh_gzkey k;
    lh_gzkey_of(&st, &k);
    assert_int_equal(k.dev, 3);
    assert_int_equal(k.ino, 77);
    assert_int_equal(k.size, 5000);
    assert_int_equal(k.mtime_sec, 1700000000);
    assert_int_equal(k.mtime_nsec, 5);
    assert_int_equal(k.ctime_sec, 1700000001);
    assert_int_equal(k.ctime_nsec, 6);
}

/* A hit gives the same bytes without reading the file: the file is changed behind
 * the cache's back but the key is not, and the old contents come back. A new key
 * (the file changed) gives the new contents and replaces the old version. */
static void test_cache_hit_and_change(void **state)
{
    struct files *f = *state;
    size_t n = 100 * 1024;
    char *t1 = text(n, 1), *t2 = text(n, 2);
    struct lh_gzkey k;
    int fd = new_file(f, t1, n, &k);
    struct lh_gzcache *c = lh_gzcache_new(1 << 20);
    assert_non_null(c);

    const char *gz, *gz2;
    size_t len, len2;
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), 0);
    assert_true(len < n);
    assert_gunzips_to(gz, len, t1, n);
    assert_int_equal(stats(c).misses, 1);
    assert_int_equal(stats(c).entries, 1);
    assert_true(stats(c).bytes >= len && stats(c).bytes <= stats(c).max_bytes);

    assert_int_equal(pwrite(fd, t2, n, 0), (ssize_t)n);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz2, &len2), 0);
    assert_ptr_equal(gz2, gz);
    assert_int_equal(len2, len);
    assert_gunzips_to(gz2, len2, t1, n);
    assert_int_equal(stats(c).misses, 1);
    assert_int_equal(stats(c).hits, 1);

    /* the change as fstat reports it: a new modification time */
    struct timespec ts[2] = {{.tv_sec = 1600000000, .tv_nsec = 1},
                             {.tv_sec = 1600000000, .tv_nsec = 1}};
    assert_int_equal(futimens(fd, ts), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    struct lh_gzkey k2;
    lh_gzkey_of(&st, &k2);
    assert_int_not_equal(k2.mtime_sec, k.mtime_sec);
    assert_int_equal(lh_gzcache_get(c, &k2, fd, &gz2, &len2), 0);
    assert_gunzips_to(gz2, len2, t2, n);
    assert_int_equal(stats(c).misses, 2);
    assert_int_equal(stats(c).entries, 1); /* the old version went */

    /* a key that differs only in the change time is another version too */
    k2.ctime_nsec ^= 1;
    assert_int_equal(lh_gzcache_get(c, &k2, fd, &gz2, &len2), 0);
    assert_int_equal(stats(c).misses, 3);
    assert_int_equal(stats(c).entries, 1);

    lh_gzcache_free(c);
    close(fd);
    free(t1);
    free(t2);
}

/* Files outside LH_GZIP_MIN..LH_GZIP_FILE_MAX are never read. */
static void test_cache_size_limits(void **state)
{
    struct files *f = *state;
    struct lh_gzcache *c = lh_gzcache_new(1 << 20);
    const char *gz = "x";
    size_t len = 1;
    char *t = text(LH_GZIP_MIN, 3);
    struct lh_gzkey k;
    int fd = new_file(f, t, LH_GZIP_MIN - 1, &k);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), -1);
    assert_null(gz);
    assert_int_equal(len, 0);
    close(fd);
    fd = new_file(f, t, LH_GZIP_MIN, &k);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), 0);
    assert_gunzips_to(gz, len, t, LH_GZIP_MIN);
    close(fd);

    struct lh_gzkey big = {.dev = 1, .ino = 2, .size = LH_GZIP_FILE_MAX + 1};
    assert_int_equal(lh_gzcache_get(c, &big, -1, &gz, &len), -1);
    big.size = -1;
    assert_int_equal(lh_gzcache_get(c, &big, -1, &gz, &len), -1);
    assert_int_equal(stats(c).misses, 1);
    assert_int_equal(stats(c).entries, 1);
    lh_gzcache_free(c);
    free(t);
}

/* A file gzip does not shrink is compressed once; then the answer is a remembered no. */
static void test_cache_incompressible(void **state)
{
    struct files *f = *state;
    struct lh_gzcache *c = lh_gzcache_new(1 << 20);
    char *r = random_bytes(4096, 9);
    struct lh_gzkey k;
    int fd = new_file(f, r, 4096, &k);
    const char *gz;
    size_t len;
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), -1);
    assert_null(gz);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), -1);
    assert_int_equal(stats(c).misses, 1);
    assert_int_equal(stats(c).hits, 1);
    assert_int_equal(stats(c).entries, 1);
    assert_true(stats(c).bytes < 4096);
    lh_gzcache_free(c);
    close(fd);
    free(r);
}

/* A read that fails or finds another size is not remembered. */
static void test_cache_read_fails(void **state)
{
    struct files *f = *state;
    struct lh_gzcache *c = lh_gzcache_new(1 << 20);
    size_t n = 8192;
    char *t = text(n, 4);
    struct lh_gzkey k;
    int fd = new_file(f, t, n, &k);
    const char *gz;
    size_t len;
    struct lh_gzkey longer = k, shorter = k;
    longer.size++;
    shorter.size--;
    assert_int_equal(lh_gzcache_get(c, &longer, fd, &gz, &len), -1);
    assert_int_equal(lh_gzcache_get(c, &shorter, fd, &gz, &len), -1);
    assert_int_equal(lh_gzcache_get(c, &k, -1, &gz, &len), -1);
    assert_int_equal(stats(c).entries, 0);
    assert_int_equal(stats(c).bytes, 0);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), 0);
    assert_gunzips_to(gz, len, t, n);
    assert_int_equal(stats(c).entries, 1);
    lh_gzcache_free(c);
    close(fd);
    free(t);
}

/* The total stays under max_bytes; the least recently used goes first. */
static void test_cache_eviction(void **state)
{
    struct files *f = *state;
    enum { FILES = 24 };
    size_t n = 64 * 1024;
    char *t[FILES];
    struct lh_gzkey k[FILES];
    int fd[FILES];
    for (int i = 0; i < FILES; i++) {
        t[i] = text(n, 100 + (unsigned)i);
        fd[i] = new_file(f, t[i], n, &k[i]);
    }
    /* learn what one entry costs, then allow room for about five */
    struct lh_gzcache *c = lh_gzcache_new(1 << 30);
    const char *gz;
    size_t len;
    assert_int_equal(lh_gzcache_get(c, &k[0], fd[0], &gz, &len), 0);
    size_t one = stats(c).bytes;
    lh_gzcache_free(c);
    size_t max = one * 5 + one / 2;
    c = lh_gzcache_new(max);

    for (int i = 1; i < FILES; i++) {
        assert_int_equal(lh_gzcache_get(c, &k[i], fd[i], &gz, &len), 0);
        assert_gunzips_to(gz, len, t[i], n);
        assert_true(stats(c).bytes <= max);
        /* file 1 is kept in use, so it stays */
        assert_int_equal(lh_gzcache_get(c, &k[1], fd[1], &gz, &len), 0);
        assert_gunzips_to(gz, len, t[1], n);
        assert_true(stats(c).bytes <= max);
    }
    struct lh_gzcache_stats st = stats(c);
    assert_int_equal(st.misses, FILES - 1);
    assert_true(st.evictions > 0);
    assert_int_equal(st.entries + st.evictions, FILES - 1);
    assert_true(st.entries >= 3 && st.entries <= 6);
    /* the newest are there; the oldest (2) went */
    assert_int_equal(lh_gzcache_get(c, &k[FILES - 1], fd[FILES - 1], &gz, &len), 0);
    assert_int_equal(stats(c).misses, FILES - 1);
    assert_int_equal(lh_gzcache_get(c, &k[2], fd[2], &gz, &len), 0);
    assert_gunzips_to(gz, len, t[2], n);
    assert_int_equal(stats(c).misses, FILES);
    assert_true(stats(c).bytes <= max);

    lh_gzcache_free(c);
    for (int i = 0; i < FILES; i++) {
        close(fd[i]);
        free(t[i]);
    }
}

/* An entry bigger than the whole cache is not kept; the "no" for it is. */
static void test_cache_entry_too_big(void **state)
{
    struct files *f = *state;
    size_t n = 100 * 1024;
    char *t = text(n, 5);
    struct lh_gzkey k;
    int fd = new_file(f, t, n, &k);
    struct lh_gzcache *c = lh_gzcache_new(2048);
    const char *gz;
    size_t len;
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), -1);
    assert_null(gz);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), -1);
    assert_int_equal(stats(c).misses, 1);
    assert_int_equal(stats(c).entries, 1);
    assert_true(stats(c).bytes <= 2048);
    lh_gzcache_free(c);

    /* a cache with no room keeps nothing at all */
    c = lh_gzcache_new(0);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), -1);
    assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), -1);
    assert_int_equal(stats(c).misses, 2);
    assert_int_equal(stats(c).entries, 0);
    assert_int_equal(stats(c).bytes, 0);
    lh_gzcache_free(c);
    lh_gzcache_free(NULL);
    close(fd);
    free(t);
}

/* Many entries: the hash table grows and every one is still found. */
static void test_cache_many(void **state)
{
    (void)state;
    size_t n = 2048;
    char *t = text(n, 6);
    char p[] = "/tmp/lh-gzip-many-XXXXXX";
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    unlink(p);
    assert_int_equal(write(fd, t, n), (ssize_t)n);
    struct lh_gzcache *c = lh_gzcache_new(64 << 20);
    const char *gz;
    size_t len;
    enum { KEYS = 1000 };
    /* keys the cache cannot tell from other files: it trusts the caller's key */
    for (int round = 0; round < 2; round++)
        for (uint64_t i = 0; i < KEYS; i++) {
            struct lh_gzkey k = {.dev = i % 3, .ino = i, .size = (int64_t)n};
            assert_int_equal(lh_gzcache_get(c, &k, fd, &gz, &len), 0);
        }
    assert_int_equal(stats(c).entries, KEYS);
    assert_int_equal(stats(c).misses, KEYS);
    assert_int_equal(stats(c).hits, KEYS);
    assert_int_equal(stats(c).evictions, 0);
    lh_gzcache_free(c);
    close(fd);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding),
        cmocka_unit_test(test_accept_encoding_uses_len),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_content_type_of_every_extension),
        cmocka_unit_test(test_compress_roundtrip),
        cmocka_unit_test(test_compress_bad_level),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_etag_sizes),
        cmocka_unit_test(test_etag_differs),
        cmocka_unit_test(test_key_of),
        cmocka_unit_test_setup_teardown(test_cache_hit_and_change, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_cache_size_limits, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_cache_incompressible, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_cache_read_fails, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_cache_eviction, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_cache_entry_too_big, files_setup, files_teardown),
        cmocka_unit_test(test_cache_many),
    };
    return cmocka_run_group_tests_name("gzip", tests, NULL, NULL);
}
