/* Unit tests for mime.c: Content-Type by extension. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mime.h"

#define TEXT "; charset=utf-8"
#define OCTET "application/octet-stream"

/* Every extension the table knows (looked up by binary search, so a table out of
 * order would lose some of these). The common web types follow Debian's
 * /etc/mime.types (package media-types) except where browsers and standards say
 * otherwise: text/javascript, image/x-icon, audio/wav, application/rss+xml. */
static const struct {
    const char *ext, *type;
} known[] = {
    {"3gp", "video/3gpp"},
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"atom", "application/atom+xml" TEXT},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"cjs", "text/javascript" TEXT},
    {"css", "text/css" TEXT},
    {"csv", "text/csv" TEXT},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"eot", "application/vnd.ms-fontobject"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"geojson", "application/geo+json" TEXT},
    {"gif", "image/gif"},
    {"glb", "model/gltf-binary"},
    {"gltf", "model/gltf+json" TEXT},
    {"gz", "application/gzip"},
    {"heic", "image/heic"},
    {"heif", "image/heif"},
    {"htm", "text/html" TEXT},
    {"html", "text/html" TEXT},
    {"ico", "image/x-icon"},
    {"ics", "text/calendar" TEXT},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript" TEXT},
    {"json", "application/json" TEXT},
    {"jsonld", "application/ld+json" TEXT},
    {"jxl", "image/jxl"},
    {"lua", "text/plain" TEXT},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"m4a", "audio/mp4"},
    {"m4v", "video/mp4"},
    {"map", "application/json" TEXT},
    {"markdown", "text/markdown" TEXT},
    {"md", "text/markdown" TEXT},
    {"mjs", "text/javascript" TEXT},
    {"mkv", "video/x-matroska"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpd", "application/dash+xml" TEXT},
    {"mpeg", "video/mpeg"},
    {"mpg", "video/mpeg"},
    {"odp", "application/vnd.oasis.opendocument.presentation"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"rar", "application/vnd.rar"},
    {"rss", "application/rss+xml" TEXT},
    {"rtf", "application/rtf"},
    {"svg", "image/svg+xml" TEXT},
    {"svgz", "image/svg+xml" TEXT},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"toml", "application/toml" TEXT},
    {"tsv", "text/tab-separated-values" TEXT},
    {"ttf", "font/ttf"},
    {"txt", "text/plain" TEXT},
    {"usdz", "model/vnd.usdz+zip"},
    {"vcf", "text/vcard" TEXT},
    {"vtt", "text/vtt" TEXT},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json" TEXT},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml" TEXT},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "application/xml" TEXT},
    {"xz", "application/x-xz"},
    {"yaml", "text/yaml" TEXT},
    {"yml", "text/yaml" TEXT},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

static void test_known_extensions(void **state)
{
    (void)state;
    char path[64], upper[64];
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        snprintf(path, sizeof path, "/dir/file.%s", known[i].ext);
        const char *got = lh_mime_type(path);
        if (strcmp(got, known[i].type) != 0)
            fail_msg("%s: got %s, want %s", path, got, known[i].type);
        /* the extension is case-insensitive */
        size_t n = strlen(path);
        for (size_t k = 0; k <= n; k++)
            upper[k] = (char)toupper((unsigned char)path[k]);
        got = lh_mime_type(upper);
        if (strcmp(got, known[i].type) != 0)
            fail_msg("%s: got %s, want %s", upper, got, known[i].type);
    }
}

/* Textual: any text/ type, and the types whose subtype is JSON, XML or TOML, or ends in +json
 * or +xml (vnd.openxmlformats-... is a zip file, not XML text). */
static bool textual(const char *t)
{
    const char *sub = strchr(t, '/') + 1;
    size_t n = strcspn(sub, ";");
    static const char *const plain[] = {"json", "xml", "toml"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (n == strlen(plain[i]) && strncmp(sub, plain[i], n) == 0)
            return true;
    return strncmp(t, "text/", 5) == 0 || (n > 5 && strncmp(sub + n - 5, "+json", 5) == 0) ||
           (n > 4 && strncmp(sub + n - 4, "+xml", 4) == 0);
}

/* text types and the textual application types say their charset, the others not */
static void test_charset(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char path[32];
        snprintf(path, sizeof path, "x.%s", known[i].ext);
        bool has = strstr(lh_mime_type(path), TEXT) != NULL;
        if (textual(known[i].type) != has)
            fail_msg("%s: charset %s", path, has ? "unexpected" : "missing");
    }
}

/* .svgz is the only name stored encoded: image/svg+xml sent with Content-Encoding:
 * gzip, so that a browser shows it; archives such as .gz are sent as they are. */
static void test_encoding(void **state)
{
    (void)state;
    assert_string_equal(lh_mime_encoding("/icons/logo.svgz"), "gzip");
    assert_string_equal(lh_mime_encoding("LOGO.SVGZ"), "gzip");
    assert_string_equal(lh_mime_type("/icons/logo.svgz"), "image/svg+xml" TEXT);
    static const char *const plain[] = {"/a.svg", "/a.gz", "/a.tar.gz", "/a.svgz.gz",
                                        "/a.zip", "/svgz", "/.svgz", "/a.svgz/", "", "/x."};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (lh_mime_encoding(plain[i]) != NULL)
            fail_msg("'%s': encoding %s", plain[i], lh_mime_encoding(plain[i]));
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char path[32];
        snprintf(path, sizeof path, "x.%s", known[i].ext);
        if (strcmp(known[i].ext, "svgz") != 0 && lh_mime_encoding(path) != NULL)
            fail_msg("%s: encoding %s", path, lh_mime_encoding(path));
    }
}

static const struct {
    const char *path, *type;
} cases[] = {
    {"/index.html", "text/html" TEXT},
    {"/a.HTM", "text/html" TEXT},
    {"/i.JpEg", "image/jpeg"},
    {"plain.css", "text/css" TEXT},       /* no directory at all */
    {"/a.b.c/x.tar.gz", "application/gzip"}, /* the last '.' of the last segment */
    {"/archive.tar", "application/x-tar"},
    {"/app.mjs.map", "application/json" TEXT}, /* source maps, of modules too */
    {"/app.min.js.map", "application/json" TEXT},
    {"/lib.cjs", "text/javascript" TEXT},
    {"/sub/captions.en.vtt", "text/vtt" TEXT},
    {"/x.ts", OCTET},                     /* TypeScript or MPEG-TS: it cannot tell */
    {"/a.d/file.txt", "text/plain" TEXT},
    {"/.hidden.css", "text/css" TEXT},    /* a dotfile with an extension */
    {"/noext", OCTET},
    {"", OCTET},
    {"/", OCTET},
    {"/a.d/file", OCTET},                 /* the dot is in a directory name */
    {"/a.css/", OCTET},                   /* a directory */
    {"/.bashrc", OCTET},                  /* a dotfile without extension */
    {"/dir/.css", OCTET},
    {".css", OCTET},
    {"/trailing.", OCTET},
    {"/x.unknownext", OCTET},
    {"/x.htmlx", OCTET},                  /* no prefix matching */
    {"/x.htm ", OCTET},
    {"/x.h", OCTET},
    {"/x.", OCTET},
};

static void test_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(lh_mime_type(cases[i].path), cases[i].type) != 0)
            fail_msg("'%s': got %s, want %s", cases[i].path, lh_mime_type(cases[i].path),
                     cases[i].type);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_extensions),
        cmocka_unit_test(test_charset),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
