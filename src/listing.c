/* listing.c - the HTML page that lists a folder. See listing.h.
 *
 * The page is one small HTML5 document with its style inline (no other request),
 * light or dark as the reader's system prefers, and readable on a phone: no fixed
 * widths, long names wrap anywhere, and the table scrolls sideways if it still does
 * not fit. static.c decides which entries are shown; this file only writes them. */
#include "listing.h"

#include "path.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- order ----------------------------------------------------------------- */

static int fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Names without regard to ASCII case ("b" after "A"), then in byte order so that
 * "README" and "readme" still have a fixed order. Other bytes (UTF-8 included) are
 * compared as they are: no locale is involved. */
static int name_cmp(const char *a, const char *b)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    while (*x && fold(*x) == fold(*y)) {
        x++;
        y++;
    }
    int d = fold(*x) - fold(*y);
    return d ? d : strcmp(a, b);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct lh_listing_entry *x = a, *y = b;
    if (x->dir != y->dir)
        return x->dir ? -1 : 1;
    return name_cmp(x->name, y->name);
}

void lh_listing_sort(struct lh_listing_entry *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, entry_cmp);
}

/* ---- sizes and times --------------------------------------------------------- */

void lh_listing_size(int64_t bytes, char out[LH_LISTING_SIZE_LEN])
{
    static const char *const unit[] = {"KiB", "MiB", "GiB"};
    if (bytes < 1024) {
        snprintf(out, LH_LISTING_SIZE_LEN, "%lld B", (long long)(bytes < 0 ? 0 : bytes));
        return;
    }
    /* tenths of the unit, rounded half up, in integers: no double rounding surprises */
    int64_t u = 1024, tenths = 0;
    for (size_t i = 0; i < 3; i++, u *= 1024) {
        tenths = bytes / u * 10 + (bytes % u * 10 + u / 2) / u;
        if (tenths < 10240 || i == 2) {
            snprintf(out, LH_LISTING_SIZE_LEN, "%lld.%lld %s", (long long)(tenths / 10),
                     (long long)(tenths % 10), unit[i]);
            return;
        }
    }
}

void lh_listing_time(time_t t, char human[LH_LISTING_TIME_LEN], char iso[LH_LISTING_TIME_LEN])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) ||
        !strftime(human, LH_LISTING_TIME_LEN, "%Y-%m-%d %H:%M", &tm) ||
        !strftime(iso, LH_LISTING_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm))
        human[0] = iso[0] = '\0';
}

/* ---- the page -------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

/* Room for n more bytes and a NUL: where they go, or NULL once out of memory. */
static char *sb_room(struct sbuf *b, size_t n)
{
    if (b->oom || n > SIZE_MAX / 4 - b->len) {
        b->oom = true;
        return NULL;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

static void sb_str(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    char *d = sb_room(b, n);
    if (d) {
        memcpy(d, s, n + 1);
        b->len += n;
    }
}

/* s escaped for HTML text and attributes: at most 6 bytes ("&quot;") per byte. */
static void sb_html(struct sbuf *b, const char *s)
{
    size_t room = strlen(s) * 6 + 1;
    char *d = sb_room(b, room);
    if (d)
        b->len += lh_html_escape(s, d, room);
}

/* s percent-encoded for a URL path: at most 3 bytes ("%3C") per byte. */
static void sb_url(struct sbuf *b, const char *s)
{
    size_t room = strlen(s) * 3 + 1;
    char *d = sb_room(b, room);
    if (d)
        b->len += lh_url_escape_path(s, d, room);
}

/* The fixed markup, in the order it is written; the path goes between the parts. */
static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<meta name=\"color-scheme\" content=\"light dark\">\n<title>Index of ";
static const char page_style[] =
    "</title>\n<style>\n"
    "body{margin:0 auto;max-width:60rem;padding:1rem;font:1rem/1.5 system-ui,sans-serif;"
    "color:#222;background:#fff}\n"
    "h1{font-size:1.3rem;font-weight:600;overflow-wrap:anywhere}\n"
    "div{overflow-x:auto}\n"
    "table{width:100%;border-collapse:collapse}\n"
    "th,td{padding:.35rem .6rem;border-bottom:1px solid #ddd;text-align:left;"
    "vertical-align:baseline}\n"
    "th{font-size:.85rem;font-weight:600;color:#666}\n"
    "td{overflow-wrap:anywhere}td+td,th+th{width:1%;white-space:nowrap}.r{text-align:right}\n"
    "a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}\n"
    "tbody tr:hover{background:#f3f5f8}\n"
    "@media(prefers-color-scheme:dark){body{color:#ddd;background:#17191c}"
    "th,td{border-color:#333}th{color:#999}a{color:#7ab7ff}tbody tr:hover{background:#22262b}}\n"
    "@media(max-width:30rem){body{padding:.5rem}th,td{padding:.35rem .3rem}}\n"
    "</style></head>\n<body><h1>Index of ";
static const char page_table[] =
    "</h1>\n<div><table>\n<thead><tr><th>Name</th><th class=\"r\">Size</th>"
    "<th>Modified (UTC)</th></tr></thead>\n<tbody>\n";
static const char parent_row[] =
    "<tr><td><a href=\"../\">../</a></td><td class=\"r\"></td><td></td></tr>\n";
static const char page_tail[] = "</tbody></table></div>\n</body></html>\n";

#define EM_DASH "\xe2\x80\x94" /* the size of a folder: U+2014 in UTF-8 */

/* One row: the link (a folder's ends in '/'), the size, the time. */
static void put_row(struct sbuf *b, const struct lh_listing_entry *e)
{
    char size[LH_LISTING_SIZE_LEN], human[LH_LISTING_TIME_LEN], iso[LH_LISTING_TIME_LEN];
    const char *slash = e->dir ? "/" : "";

    if (e->dir)
        snprintf(size, sizeof size, "%s", EM_DASH);
    else
        lh_listing_size(e->size, size);
    lh_listing_time(e->mtime, human, iso);
    sb_str(b, "<tr><td><a href=\"");
    sb_url(b, e->name);
    sb_str(b, slash);
    sb_str(b, "\">");
    sb_html(b, e->name);
    sb_str(b, slash);
    sb_str(b, "</a></td><td class=\"r\">");
    sb_str(b, size);
    sb_str(b, "</td><td>");
    if (iso[0]) {
        sb_str(b, "<time datetime=\"");
        sb_str(b, iso);
        sb_str(b, "\">");
        sb_str(b, human);
        sb_str(b, "</time>");
    }
    sb_str(b, "</td></tr>\n");
}

char *lh_listing_page(const char *path, const struct lh_listing_entry *v, size_t n,
                      size_t *len)
{
    struct sbuf b = {0};
    sb_str(&b, page_head);
    sb_html(&b, path);
    sb_str(&b, page_style);
    sb_html(&b, path);
    sb_str(&b, page_table);
    if (strcmp(path, "/") != 0)
        sb_str(&b, parent_row);
    for (size_t i = 0; i < n; i++)
        put_row(&b, &v[i]);
    sb_str(&b, page_tail);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
