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

/* 1 for ".", 2 for "..", 0 for any other segment s[0..n). */
static int dots(const char *s, size_t n)
{
    if (n == 1 && s[0] == '.')
        return 1;
    return n == 2 && s[0] == '.' && s[1] == '.' ? 2 : 0;
}

/*
 * Pass 1: percent-decode in[0..len) into out, exactly once. After it every '/' in out
 * is a real separator, because an encoded one is refused. Returns 0, 400 or 404.
 */
static int decode(const char *in, size_t len, char *out, size_t *n)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = hi >= 0 ? hexval((unsigned char)in[i + 2]) : -1;
            if (lo < 0)
                return 400;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            if (c == '/')
                return 404; /* an encoded separator names no file */
        }
        if (c == '\\' || c == '\0')
            return 404; /* a Windows separator or a NUL names no file either */
        out[o++] = (char)c;
    }
    *n = o;
    return 0;
}

/*
 * Close the segment p[seg..*w) of the path being resolved: drop it if it is "." or
 * empty (the slash before it stays), let ".." remove it and the segment before it,
 * else keep it and write its closing '/'. Returns 0, or 403 for a ".." at the root.
 */
static int close_segment(char *p, size_t *w, size_t seg)
{
    switch (dots(p + seg, *w - seg)) {
    case 1:
        *w = seg;
        return 0;
    case 2:
        if (seg == 1)
            return 403; /* would climb above the root */
        *w = seg - 1; /* the slash that ends the previous segment */
        while (p[*w - 1] != '/')
            (*w)--;
        return 0;
    default:
        if (*w > seg)
            p[(*w)++] = '/';
        return 0;
    }
}

/*
 * Pass 2: resolve the segments of p[0..*n) (p[0] is '/') in place; the write index
 * never passes the read index. Returns 0 and the new length in *n, or 403.
 */
static int resolve(char *p, size_t *n)
{
    size_t w = 1, seg = 1;
    for (size_t r = 1; r < *n; r++) {
        if (p[r] != '/') {
            p[w++] = p[r];
            continue;
        }
        int st = close_segment(p, &w, seg);
        if (st)
            return st;
        seg = w;
    }
    /* a last "." or ".." names a directory: resolve it, leaving a trailing slash */
    if (dots(p + seg, w - seg)) {
        int st = close_segment(p, &w, seg);
        if (st)
            return st;
    }
    *n = w;
    return 0;
}

/*
 * Pass 1 for a path that is already decoded (a rewrite): copy it into out, refusing
 * in the same way what decode() refuses once decoded, a backslash or a NUL. A '%' is
 * an ordinary byte here. Returns 0 or 404.
 */
static int copy_decoded(const char *in, size_t len, char *out, size_t *n)
{
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\\' || in[i] == '\0')
            return 404;
        out[i] = in[i];
    }
    *n = len;
    return 0;
}

typedef int (*first_pass)(const char *in, size_t len, char *out, size_t *n);

/* The checks both entry points share around pass 1 and pass 2. */
static int normalize(const char *path, size_t len, char *out, size_t outsz, first_pass pass)
{
    size_t n = 0;
    int st;
    if (len == 0 || path[0] != '/')
        st = 400;
    else if (outsz < len + 2)
        st = 414;
    else if ((st = pass(path, len, out, &n)) == 0)
        st = resolve(out, &n);
    if (outsz > 0)
        out[st ? 0 : n] = '\0'; /* "" after a refusal: a careless caller gets no path */
    return st;
}

int lh_path_normalize(const char *path, size_t len, char *out, size_t outsz)
{
    return normalize(path, len, out, outsz, decode);
}

int lh_path_resolve(const char *path, size_t len, char *out, size_t outsz)
{
    return normalize(path, len, out, outsz, copy_decoded);
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
