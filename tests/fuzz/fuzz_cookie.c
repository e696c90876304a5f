/* libFuzzer target: the Cookie header. The oracle: names and values lie in the
 * header and hold no ";", nor a blank at either end (but inside quotes); a name is
 * never empty and holds no "="; there are never more pairs than ";"-separated
 * pieces; a callback's nonzero value (after a number of pairs the input's length
 * picks) stops the parse and is returned. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

struct ctx {
    const char *in;
    size_t len, pairs, stop_at;
};

static int within(const char *p, size_t n, const char *base, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return a >= b && n <= len && a - b <= len - n;
}

static int blank(char c) { return c == ' ' || c == '\t'; }

static int check(void *ud, const struct lh_form_field *f)
{
    struct ctx *c = ud;
    assert(f->name && f->value && !f->filename && !f->content_type);
    assert(within(f->name, f->name_len, c->in, c->len));
    assert(within(f->value, f->value_len, c->in, c->len));
    assert(f->name_len > 0 && f->value > f->name);
    assert(!blank(f->name[0]) && !blank(f->name[f->name_len - 1]));
    assert(!memchr(f->name, ';', f->name_len) && !memchr(f->name, '=', f->name_len));
    assert(!memchr(f->value, ';', f->value_len));
    if (f->value_len) /* a blank at an end is inside quotes */
        assert((!blank(f->value[0]) || f->value[-1] == '"') &&
               (!blank(f->value[f->value_len - 1]) || f->value[f->value_len] == '"'));
    return ++c->pairs == c->stop_at ? 9 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1); /* exactly size bytes, for ASan */
    memcpy(in, data, size);
    struct ctx c = {.in = in, .len = size, .stop_at = size % 7};
    int rc = lh_cookie_parse(in, size, check, &c);
    size_t pieces = 1;
    for (size_t i = 0; i < size; i++)
        pieces += in[i] == ';';
    assert(c.pairs <= pieces);
    if (c.stop_at && c.pairs == c.stop_at)
        assert(rc == 9);
    else
        assert(rc == 0);
    free(in);
    return 0;
}
