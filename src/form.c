/* form.c - the Cookie header and form bodies, urlencoded and multipart. See form.h.
 *
 * Every scan moves forward only: a delimiter is searched for with memmem from the
 * start of the part it ends, and each part's headers are read once, so a body costs
 * O(len) whatever it holds. Nothing reads past len; NUL bytes are ordinary bytes. */
#include "form.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 70 /* RFC 2046 5.1.1 */

static bool is_blank(unsigned char c) { return c == ' ' || c == '\t'; }

/* tchar (RFC 9110 5.6.2): header names, media types, parameter names and tokens */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* bchars (RFC 2046 5.1.1): what a boundary is made of */
static bool is_bchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Narrow [*s, *e) to drop the blanks at both ends. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank((unsigned char)**s))
        (*s)++;
    while (*e > *s && is_blank((unsigned char)(*e)[-1]))
        (*e)--;
}

static bool word_is(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* ---- Cookie ------------------------------------------------------------------- */

int lh_cookie_parse(const char *header, size_t len, lh_form_cb cb, void *ud)
{
    if (len == 0)
        return 0;
    const char *p = header, *end = header + len;
    for (;;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pe = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (eq) {
            const char *ns = p, *ne = eq, *vs = eq + 1, *ve = pe;
            trim(&ns, &ne);
            trim(&vs, &ve);
            if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
                vs++;
                ve--;
            }
            if (ne > ns) {
                struct lh_form_field f = {.name = ns, .name_len = (size_t)(ne - ns),
                                          .value = vs, .value_len = (size_t)(ve - vs)};
                int rc = cb(ud, &f);
                if (rc)
                    return rc;
            }
        }
        if (!semi)
            return 0;
        p = semi + 1;
    }
}

/* ---- application/x-www-form-urlencoded ------------------------------------------ */

/* Decode in[0..n) ("+" a space, %XX a byte) into out; false on a bad "%". */
static bool form_decode(const char *in, size_t n, char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        out[o++] = c;
    }
    *outlen = o;
    return true;
}

int lh_form_urlencoded(const char *body, size_t len, char *scratch, lh_form_cb cb, void *ud)
{
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t pe = amp ? (size_t)(amp - body) : len;
        if (pe > i) {
            const char *eq = memchr(body + i, '=', pe - i);
            size_t ne = eq ? (size_t)(eq - body) : pe;
            size_t vs = eq ? ne + 1 : pe;
            /* each part decodes into scratch at its own offset: it only shrinks, so
             * the name and the value never overlap */
            struct lh_form_field f = {.name = scratch + i, .value = scratch + vs};
            if (!form_decode(body + i, ne - i, scratch + i, &f.name_len) ||
                !form_decode(body + vs, pe - vs, scratch + vs, &f.value_len))
                return -1;
            int rc = cb(ud, &f);
            if (rc)
                return rc;
        }
        i = pe + 1;
    }
    return 0;
}

/* ---- parameters: "; name=value" after a media type or a disposition type ---------- */

/*
 * One parameter (RFC 9110 5.6.6). The value is a token, or the inside of a
 * quoted-string still escaped (esc: it holds a backslash). Blanks around "=" are
 * taken too, as RFC 6266's implied LWS allows them in Content-Disposition.
 */
struct param {
    const char *name, *value;
    size_t name_len, value_len;
    bool esc;
};

/* The quoted-string at p (on its opening quote) up to end: its inside into *prm,
 * the position after the closing quote into *after. false when it is unclosed or
 * holds a control byte (qdtext and quoted-pair admit HTAB, SP, VCHAR, obs-text). */
static bool quoted(const char *p, const char *end, struct param *prm, const char **after)
{
    const char *s = ++p;
    prm->esc = false;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            prm->value = s;
            prm->value_len = (size_t)(p - s);
            *after = p + 1;
            return true;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
        /* browsers escape no backslash (WHATWG: only '"', CR and LF, as %22, %0D,
         * %0A), and a Windows path may hold them: only \" and \\ are escapes */
        if (c == '\\' && end - p > 1 && (p[1] == '"' || p[1] == '\\')) {
            prm->esc = true;
            p++;
        }
    }
    return false;
}

/* The next parameter from *pp (before end) into *prm: 1, or 0 at the end of the list,
 * or -1 when the list is not well formed. Empty parameters (";;") are skipped. */
static int next_param(const char **pp, const char *end, struct param *prm)
{
    const char *p = *pp;
    for (;;) {
        while (p < end && is_blank((unsigned char)*p))
            p++;
        if (p == end)
            return 0;
        if (*p != ';')
            return -1;
        p++;
        while (p < end && is_blank((unsigned char)*p))
            p++;
        if (p == end)
            return 0;
        if (*p != ';')
            break;
    }
    prm->name = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    prm->name_len = (size_t)(p - prm->name);
    while (p < end && is_blank((unsigned char)*p))
        p++;
    if (prm->name_len == 0 || p == end || *p != '=')
        return -1;
    p++;
    while (p < end && is_blank((unsigned char)*p))
        p++;
    if (p < end && *p == '"') {
        if (!quoted(p, end, prm, &p))
            return -1;
    } else {
        prm->value = p;
        prm->esc = false;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        prm->value_len = (size_t)(p - prm->value);
        if (prm->value_len == 0)
            return -1;
    }
    *pp = p;
    return 1;
}

/* The value of prm, unescaped into out when it holds a backslash (never longer than
 * it was); *v and *n are set to the result. */
static void param_value(const struct param *prm, char *out, const char **v, size_t *n)
{
    if (!prm->esc) {
        *v = prm->value;
        *n = prm->value_len;
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < prm->value_len; i++) {
        if (prm->value[i] == '\\' && i + 1 < prm->value_len &&
            (prm->value[i + 1] == '"' || prm->value[i + 1] == '\\'))
            i++;
        out[o++] = prm->value[i];
    }
    *v = out;
    *n = o;
}

/* A type (token "/" token for a media type, one token for a disposition type) at the
 * start of [*pp, end), after any blanks; its bytes into *t, *tlen. */
static bool type_token(const char **pp, const char *end, bool media, const char **t,
                       size_t *tlen)
{
    const char *p = *pp;
    while (p < end && is_blank((unsigned char)*p))
        p++;
    const char *s = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    if (p == s)
        return false;
    if (media) {
        if (p == end || *p != '/')
            return false;
        const char *sub = ++p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        if (p == sub)
            return false;
    }
    *t = s;
    *tlen = (size_t)(p - s);
    *pp = p;
    return true;
}

/* ---- the boundary ---------------------------------------------------------------- */

static bool boundary_ok(const char *b, size_t n)
{
    if (n == 0 || n > BOUNDARY_MAX || b[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_bchar((unsigned char)b[i]))
            return false;
    return true;
}

int lh_form_boundary(const char *content_type, size_t len, char *scratch,
                     const char **boundary, size_t *blen)
{
    if (len == 0)
        return -1;
    const char *p = content_type, *end = content_type + len, *t;
    size_t tlen;
    if (!type_token(&p, end, true, &t, &tlen) || !word_is(t, tlen, "multipart/form-data"))
        return -1;
    const char *b = NULL;
    size_t n = 0;
    struct param prm;
    int r;
    while ((r = next_param(&p, end, &prm)) == 1) {
        if (!word_is(prm.name, prm.name_len, "boundary"))
            continue;
        if (b) /* two boundaries: which one the sender meant is anyone's guess */
            return -1;
        param_value(&prm, scratch + (prm.value - content_type), &b, &n);
    }
    if (r < 0 || !b || !boundary_ok(b, n))
        return -1;
    *boundary = b;
    *blen = n;
    return 0;
}

/* ---- multipart/form-data ----------------------------------------------------------- */

/* Content-Disposition [v, ve) of a part into f: form-data with a name, maybe a
 * filename. Quoted values with escapes are unescaped into scratch at their offset
 * from body. 0, or -1 when it is not that (a repeated name or filename included). */
static int disposition(const char *v, const char *ve, const char *body, char *scratch,
                       struct lh_form_field *f)
{
    const char *t;
    size_t tlen;
    if (!type_token(&v, ve, false, &t, &tlen) || !word_is(t, tlen, "form-data"))
        return -1;
    struct param prm;
    int r;
    while ((r = next_param(&v, ve, &prm)) == 1) {
        const char **dst;
        size_t *dlen;
        if (word_is(prm.name, prm.name_len, "name")) {
            dst = &f->name;
            dlen = &f->name_len;
        } else if (word_is(prm.name, prm.name_len, "filename")) {
            dst = &f->filename;
            dlen = &f->filename_len;
        } else {
            continue; /* filename* (RFC 5987) and anything else */
        }
        if (*dst)
            return -1;
        param_value(&prm, scratch + (prm.value - body), dst, dlen);
    }
    return r < 0 || !f->name ? -1 : 0;
}

/* The part body[ps..pe) (the CRLF before its delimiter left out): header lines, a
 * blank line, the value. Hands it to cb; -1 when it is malformed. */
static int part(const char *body, size_t ps, size_t pe, char *scratch, lh_form_cb cb,
                void *ud)
{
    struct lh_form_field f = {0};
    size_t p = ps;
    for (;;) {
        const char *lf = memchr(body + p, '\n', pe - p);
        if (!lf)
            return -1; /* no blank line before the next delimiter */
        size_t le = (size_t)(lf - body), next = le + 1;
        if (le > p && body[le - 1] == '\r')
            le--;
        if (le == p) {
            p = next;
            break;
        }
        size_t c = p;
        while (c < le && is_tchar((unsigned char)body[c]))
            c++;
        if (c == p || c == le || body[c] != ':')
            return -1; /* not a header line (a folded one included) */
        const char *vs = body + c + 1, *ve = body + le;
        trim(&vs, &ve);
        if (word_is(body + p, c - p, "content-disposition")) {
            /* a second one is refused too: f has a name already */
            if (disposition(vs, ve, body, scratch, &f) < 0)
                return -1;
        } else if (word_is(body + p, c - p, "content-type")) {
            if (f.content_type)
                return -1;
            f.content_type = vs;
            f.content_type_len = (size_t)(ve - vs);
        }
        p = next;
    }
    if (!f.name)
        return -1; /* no Content-Disposition */
    f.value = body + p;
    f.value_len = pe - p;
    return cb(ud, &f);
}

int lh_form_multipart(const char *body, size_t len, const char *boundary, size_t blen,
                      char *scratch, lh_form_cb cb, void *ud)
{
    if (len == 0 || blen == 0 || blen > BOUNDARY_MAX)
        return -1;
    /* the delimiter: "--boundary" at the start of a line (LF, or CRLF whose CR is
     * dropped from the part before) */
    char delim[3 + BOUNDARY_MAX];
    size_t dlen = 3 + blen;
    memcpy(delim, "\n--", 3);
    memcpy(delim + 3, boundary, blen);

    size_t pos; /* just after a "--boundary" */
    if (len >= dlen - 1 && memcmp(body, delim + 1, dlen - 1) == 0) {
        pos = dlen - 1;
    } else {
        const char *d = memmem(body, len, delim, dlen); /* after a preamble */
        if (!d)
            return -1;
        pos = (size_t)(d - body) + dlen;
    }
    for (;;) {
        if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-')
            return 0; /* the closing delimiter; an epilogue may follow */
        /* transport padding, then the line end; anything else after "--boundary"
         * (a longer boundary, a truncated body) is refused: RFC 2046 says a delimiter
         * is found by its prefix, so the sender broke the rule that it never occurs
         * in the data */
        while (pos < len && is_blank((unsigned char)body[pos]))
            pos++;
        if (pos < len && body[pos] == '\r')
            pos++;
        if (pos == len || body[pos] != '\n')
            return -1;
        pos++;
        const char *d = memmem(body + pos, len - pos, delim, dlen);
        if (!d)
            return -1; /* no closing delimiter */
        size_t end = (size_t)(d - body), next = end + dlen;
        if (end > pos && body[end - 1] == '\r')
            end--;
        int rc = part(body, pos, end, scratch, cb, ud);
        if (rc)
            return rc;
        pos = next;
    }
}
