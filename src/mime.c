/* mime.c - Content-Type by extension. See mime.h. */
#include "mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mime {
    const char *ext;
    const char *value;     /* a Content-Type, or a Content-Encoding in `encodings` */
};

#define TEXT "; charset=utf-8"

/*
 * Sorted by extension (lower case) for bsearch. Checked against Debian's
 * /etc/mime.types (package media-types) for what a web site serves; where browsers and
 * the standards expect another name, that one is used: text/javascript (RFC 9239),
 * image/x-icon, audio/wav, application/rss+xml. .toml is application/toml (not in
 * Debian's list). .ts is left out: TypeScript or an MPEG transport stream, it cannot
 * tell.
 */
static const struct mime types[] = {
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

/* Files whose every copy is stored encoded. .svgz is gzip-compressed SVG: sent as
 * image/svg+xml with Content-Encoding: gzip, which is what makes a browser show it
 * (while a .gz file is an archive to download, sent as it is). Sorted too. */
static const struct mime encodings[] = {
    {"svgz", "gzip"},
};

static int by_ext(const void *key, const void *elem)
{
    return strcasecmp(key, ((const struct mime *)elem)->ext);
}

/* The value for path's extension in table (n rows), or NULL. */
static const char *lookup(const struct mime *table, size_t n, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1])
        return NULL;
    const struct mime *m = bsearch(dot + 1, table, n, sizeof *table, by_ext);
    return m ? m->value : NULL;
}

const char *lh_mime_type(const char *path)
{
    const char *type = lookup(types, sizeof types / sizeof types[0], path);
    return type ? type : "application/octet-stream";
}

const char *lh_mime_encoding(const char *path)
{
    return lookup(encodings, sizeof encodings / sizeof encodings[0], path);
}
