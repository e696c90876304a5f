/* Unit tests for mime.c: Content-Type by extension. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mime.h"

static const struct {
    const char *path, *type;
} cases[] = {
    {"/index.html", "text/html; charset=utf-8"},
    {"/a.HTM", "text/html; charset=utf-8"},
    {"/s.css", "text/css; charset=utf-8"},
    {"/app.js", "text/javascript; charset=utf-8"},
    {"/m.mjs", "text/javascript; charset=utf-8"},
    {"/d.json", "application/json; charset=utf-8"},
    {"/i.svg", "image/svg+xml; charset=utf-8"},
    {"/i.png", "image/png"},
    {"/i.JPG", "image/jpeg"},
    {"/i.jpeg", "image/jpeg"},
    {"/i.gif", "image/gif"},
    {"/i.webp", "image/webp"},
    {"/favicon.ico", "image/x-icon"},
    {"/m.wasm", "application/wasm"},
    {"/r.txt", "text/plain; charset=utf-8"},
    {"/README.md", "text/markdown; charset=utf-8"},
    {"/d.pdf", "application/pdf"},
    {"/f.woff", "font/woff"},
    {"/f.woff2", "font/woff2"},
    {"/v.mp4", "video/mp4"},
    {"/zzz.7z", "application/x-7z-compressed"},
    {"/z.zip", "application/zip"},
    {"/site.webmanifest", "application/manifest+json; charset=utf-8"},
    {"/noext", "application/octet-stream"},
    {"/a.d/file", "application/octet-stream"},
    {"/.bashrc", "application/octet-stream"},
    {"/trailing.", "application/octet-stream"},
    {"/x.unknownext", "application/octet-stream"},
    {"plain.css", "text/css; charset=utf-8"},
};

static void test_types(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(lh_mime_type(cases[i].path), cases[i].type) != 0)
            fail_msg("%s: got %s", cases[i].path, lh_mime_type(cases[i].path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_types)};
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
