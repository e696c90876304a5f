/* path.c - request-target decoding and normalisation. See path.h. */
#include "path.h"

#include <string.h>

void lh_path_split(const char *target, size_t len, size_t *path_len, const char **query,
                   size_t *query_len)
{
    const char *q = memchr(target, '?', len);
    if (!q) {
        *path_len = len;
        *query = NULL;
        *query_len = 0;
        return;
    }
    *path_len = (size_t)(q - target);
    *query = q + 1;
    *query_len = len - *path_len - 1;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Close the segment that ends at out[*o] (exclusive): drop "." and "", resolve "..".
 * seg is where the segment starts (just after its '/'). Returns 0 or 403. */
static int close_segment(char *out, size_t *o, size_t seg)
{
    size_t n = *o - seg;
    if (n == 0 || (n == 1 && out[seg] == '.')) {
        *o = seg; /* empty or "." segment: nothing, keep the slash */
        return 0;
    }
    if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        if (seg == 1)
            return 403; /* would climb above the root */
        size_t p = seg - 1; /* the slash before ".." */
        while (p > 0 && out[p - 1] != '/')
            p--;
        *o = p;
        return 0;
    }
    out[(*o)++] = '/';
    return 0;
}

int lh_path_normalize(const char *path, size_t len, char *out, size_t outsz)
{
    if (len == 0 || path[0] != '/')
        return 400;
    if (outsz < len + 2)
        return 414;
    size_t o = 1, seg = 1;
    out[0] = '/';
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)path[i + 1]) : -1;
            int lo = hi >= 0 ? hexval((unsigned char)path[i + 2]) : -1;
            if (lo < 0)
                return 400;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            if (c == '/' || c == '\\' || c == '\0')
                return 404; /* an encoded separator or NUL names no file */
        } else if (c == '/') {
            int st = close_segment(out, &o, seg);
            if (st)
                return st;
            seg = o;
            continue;
        }
        if (c == '\\' || c == '\0')
            return 404;
        out[o++] = (char)c;
    }
    /* the last segment: "." and ".." end in a directory, so keep a trailing slash */
    size_t n = o - seg;
    bool dots = (n == 1 && out[seg] == '.') || (n == 2 && out[seg] == '.' && out[seg + 1] == '.');
    if (n > 0 && dots) {
        int st = close_segment(out, &o, seg);
        if (st)
            return st;
    }
    out[o] = '\0';
    return 0;
}

bool lh_path_has_dotfile(const char *norm)
{
    for (const char *p = norm; (p = strchr(p, '/')); p++)
        if (p[1] == '.')
            return true;
    return false;
}

size_t lh_query_decode(const char *in, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    if (outsz == 0)
        return 0;
    for (size_t i = 0; i < len && o + 1 < outsz; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < len) {
            int hi = hexval((unsigned char)in[i + 1]), lo = hexval((unsigned char)in[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi * 16 + lo);
                i += 2;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return o;
}

size_t lh_html_escape(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        size_t n = rep ? strlen(rep) : 1;
        if (o + n + 1 > outsz)
            return (size_t)-1;
        if (rep)
            memcpy(out + o, rep, n);
        else
            out[o] = *s;
        o += n;
    }
    if (o + 1 > outsz)
        return (size_t)-1;
    out[o] = '\0';
    return o;
}

static bool keep_in_path(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
}

size_t lh_url_escape_path(const char *s, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        size_t n = keep_in_path(c) ? 1 : 3;
        if (o + n + 1 > outsz)
            return (size_t)-1;
        if (n == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o + 1 > outsz)
        return (size_t)-1;
    out[o] = '\0';
    return o;
}
