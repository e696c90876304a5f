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

/* Every extension the table must know (looked up by binary search, so a table out of
 * order would lose some of these). */
static const struct {
    const char *ext, *type;
} known[] = {
    {"html", "text/html" TEXT},
    {"htm", "text/html" TEXT},
    {"css", "text/css" TEXT},
    {"js", "text/javascript" TEXT},
    {"mjs", "text/javascript" TEXT},
    {"json", "application/json" TEXT},
    {"jsonld", "application/ld+json" TEXT},
    {"map", "application/json" TEXT},
    {"webmanifest", "application/manifest+json" TEXT},
    {"svg", "image/svg+xml" TEXT},
    {"xml", "application/xml" TEXT},
    {"txt", "text/plain" TEXT},
    {"md", "text/markdown" TEXT},
    {"csv", "text/csv" TEXT},
    {"png", "image/png"},
    {"apng", "image/apng"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"otf", "font/otf"},
    {"ttf", "font/ttf"},
    {"eot", "application/vnd.ms-fontobject"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"7z", "application/x-7z-compressed"},
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

/* text types and the textual application types say their charset, the others not */
static void test_charset(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *t = known[i].type;
        bool textual = strncmp(t, "text/", 5) == 0 || strstr(t, "json") || strstr(t, "xml");
        char path[32];
        snprintf(path, sizeof path, "x.%s", known[i].ext);
        bool has = strstr(lh_mime_type(path), TEXT) != NULL;
        if (textual != has)
            fail_msg("%s: charset %s", path, has ? "unexpected" : "missing");
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
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
