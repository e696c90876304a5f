/* libFuzzer target: form bodies. The input's first line is a Content-Type value and
 * the rest a multipart body: the boundary is what lh_form_boundary finds there, or
 * else the line itself taken as a boundary (any bytes, 1 to 70 of them). The whole
 * input is also parsed as a Content-Type and as an urlencoded body. The oracle: every
 * pointer handed over lies in the input or the scratch buffer, a multipart value and
 * Content-Type lie in the body, and no value holds the delimiter that ends it. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

struct ctx {
    const char *in, *scratch;
    size_t len, fields;
    const char *delim; /* "\n--boundary"; NULL for urlencoded */
    size_t dlen;
};

static int within(const char *p, size_t n, const char *base, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return a >= b && n <= len && a - b <= len - n;
}

static void check_ptr(const struct ctx *c, const char *p, size_t n)
{
    assert(p);
    assert(within(p, n, c->in, c->len) || within(p, n, c->scratch, c->len));
}

static int check(void *ud, const struct lh_form_field *f)
{
    struct ctx *c = ud;
    c->fields++;
    check_ptr(c, f->name, f->name_len);
    check_ptr(c, f->value, f->value_len);
    if (!c->delim) {
        /* urlencoded: decoded into scratch, never longer than the input */
        assert(!f->filename && !f->content_type);
        assert(f->name_len + f->value_len <= c->len);
        return 0;
    }
    assert(within(f->value, f->value_len, c->in, c->len));
    assert(!memmem(f->value, f->value_len, c->delim, c->dlen));
    if (f->filename)
        check_ptr(c, f->filename, f->filename_len);
    else
        assert(f->filename_len == 0);
    if (f->content_type) {
        assert(within(f->content_type, f->content_type_len, c->in, c->len));
        assert(!memchr(f->content_type, '\n', f->content_type_len));
    } else {
        assert(f->content_type_len == 0);
    }
    return 0;
}

/* Run the multipart parser on body[0..len) with a heap scratch of exactly len bytes. */
static void multipart(const char *body, size_t len, const char *b, size_t blen)
{
    char delim[3 + 70];
    memcpy(delim, "\n--", 3);
    memcpy(delim + 3, b, blen);
    char *scratch = malloc(len ? len : 1);
    struct ctx c = {.in = body, .scratch = scratch, .len = len, .delim = delim,
                    .dlen = 3 + blen};
    int rc = lh_form_multipart(body, len, b, blen, scratch, check, &c);
    assert(rc == 0 || rc == -1);
    /* every part ends at a delimiter, so there are never more fields than those */
    size_t n = 0;
    for (const char *p = body; (p = memmem(p, len - (size_t)(p - body), delim + 1,
                                           blen + 2)) != NULL; p++)
        n++;
    assert(c.fields <= n);
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly size bytes, so that ASan sees a read past the end */
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    char *scratch = malloc(size ? size : 1);

    const char *b;
    size_t blen;
    if (lh_form_boundary(in, size, scratch, &b, &blen) == 0) {
        assert(blen >= 1 && blen <= 70);
        assert(within(b, blen, in, size) || within(b, blen, scratch, size));
    }
    struct ctx c = {.in = in, .scratch = scratch, .len = size};
    int rc = lh_form_urlencoded(in, size, scratch, check, &c);
    assert(rc == 0 || rc == -1);

    const char *nl = memchr(in, '\n', size);
    if (nl) {
        size_t clen = (size_t)(nl - in), rest = size - clen - 1;
        /* the body in a block of its own, exactly as long */
        char *body = malloc(rest ? rest : 1);
        memcpy(body, nl + 1, rest);
        char *cscratch = malloc(clen ? clen : 1);
        if (lh_form_boundary(in, clen, cscratch, &b, &blen) == 0) {
            char copy[70];
            memcpy(copy, b, blen);
            multipart(body, rest, copy, blen);
        } else if (clen >= 1 && clen <= 70) {
            multipart(body, rest, in, clen);
        }
        free(cscratch);
        free(body);
    }
    free(scratch);
    free(in);
    return 0;
}
