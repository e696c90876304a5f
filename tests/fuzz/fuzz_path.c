/* libFuzzer target: request-target decoding and normalisation, and the normalisation
 * of rewrites (decoded already). The oracle is the confinement property: a path that
 * is accepted has no "." or ".." segment, no empty segment, no backslash and no NUL,
 * so joined to the docroot it cannot leave it. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"

/* The confinement oracle for an accepted path out (from an input of len bytes). */
static void check_clean(const char *out, size_t len)
{
    size_t n = strlen(out);
    assert(out[0] == '/' && n <= len + 1);
    assert(!memchr(out, '\\', n));
    for (const char *s = out; *s; s++) {
        if (*s != '/')
            continue;
        const char *e = strchr(s + 1, '/');
        size_t seg = e ? (size_t)(e - s - 1) : strlen(s + 1);
        assert(!(seg == 0 && e));                                /* no "//" */
        assert(!(seg == 1 && s[1] == '.'));                      /* no "/./" */
        assert(!(seg == 2 && s[1] == '.' && s[2] == '.'));       /* no "/../" */
    }
    (void)lh_path_has_dotfile(out);
}

/* lh_path_resolve (a rewrite, decoded already) on the same bytes: the same oracle;
 * where nothing is decoded it agrees with lh_path_normalize (st, norm), and what
 * lh_path_normalize accepted it leaves as it is. */
static void check_resolve(const char *t, size_t plen, int st, const char *norm)
{
    char *out = malloc(plen + 2);
    int rst = lh_path_resolve(t, plen, out, plen + 2);
    if (rst == 0)
        check_clean(out, plen);
    else
        assert(rst == 400 || rst == 403 || rst == 404);
    if (!memchr(t, '%', plen))
        assert(rst == st && (rst != 0 || strcmp(out, norm) == 0));
    if (st == 0) {
        size_t n = strlen(norm);
        char *again = malloc(n + 2);
        assert(lh_path_resolve(norm, n, again, n + 2) == 0 && strcmp(again, norm) == 0);
        free(again);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    size_t plen, qlen;
    const char *q;
    lh_path_split(t, size, &plen, &q, &qlen);
    assert(plen <= size && (!q || (q == t + plen + 1 && plen + 1 + qlen == size)));
    char *out = malloc(plen + 2);
    int st = lh_path_normalize(t, plen, out, plen + 2);
    if (st == 0)
        check_clean(out, plen);
    else
        assert(st == 400 || st == 403 || st == 404 || st == 414);
    check_resolve(t, plen, st, out);
    free(out);
    char small[16];
    size_t d = lh_query_decode(t, size, small, sizeof small);
    assert(d < sizeof small && small[d] == '\0');
    char esc[64];
    char *z = malloc(size + 1);
    memcpy(z, data, size);
    z[size] = '\0';
    size_t e1 = lh_html_escape(z, esc, sizeof esc);
    assert(e1 == (size_t)-1 || (e1 < sizeof esc && esc[e1] == '\0'));
    size_t e2 = lh_url_escape_path(z, esc, sizeof esc);
    assert(e2 == (size_t)-1 || (e2 < sizeof esc && esc[e2] == '\0'));
    free(z);
    return 0;
}
