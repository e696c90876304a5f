/* lua_form.c - req.cookies, req.form and req.files: the request's Cookie headers and
 * its form body, parsed by form.c into Lua tables. lua_req.c makes them on first use
 * and keeps them for the rest of the request. See lua_int.h. */
#include "lua_int.h"

#include "form.h"

#include <lauxlib.h>
#include <lua.h>

#include <string.h>
#include <strings.h>

/* The table the callbacks fill, at an absolute index of L. */
struct fill {
    lua_State *L;
    int t;     /* the table: cookies, or form fields */
    int files; /* req.files (form bodies only) */
};

/* A cookie: the first of a name wins, as browsers send the most specific first
 * (RFC 6265 section 5.4, point 2). */
static int on_cookie(void *ud, const struct lh_form_field *f)
{
    struct fill *fl = ud;
    lua_State *L = fl->L;
    lua_pushlstring(L, f->name, f->name_len);
    if (lua_rawget(L, fl->t) == LUA_TNIL) {
        lua_pushlstring(L, f->name, f->name_len);
        lua_pushlstring(L, f->value, f->value_len);
        lua_rawset(L, fl->t);
    }
    lua_pop(L, 1);
    return 0;
}

void lh_form_push_cookies(lua_State *L, const struct lh_request *req)
{
    struct fill fl = {L, 0, 0};
    lua_newtable(L);
    fl.t = lua_gettop(L);
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const struct lh_header *h = &req->headers[i];
        if (h->name_len == 6 && strncasecmp(h->name, "cookie", 6) == 0)
            lh_cookie_parse(h->value, h->value_len, on_cookie, &fl);
    }
}

/* A form field (the last of a name wins, as in req.query) or a file part. */
static int on_field(void *ud, const struct lh_form_field *f)
{
    struct fill *fl = ud;
    lua_State *L = fl->L;
    lua_pushlstring(L, f->name, f->name_len);
    if (!f->filename) {
        lua_pushlstring(L, f->value, f->value_len);
        lua_rawset(L, fl->t);
        return 0;
    }
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, f->filename, f->filename_len);
    lua_setfield(L, -2, "filename");
    if (f->content_type) {
        lua_pushlstring(L, f->content_type, f->content_type_len);
        lua_setfield(L, -2, "content_type");
    }
    lua_pushlstring(L, f->value, f->value_len);
    lua_setfield(L, -2, "data");
    lua_pushinteger(L, (lua_Integer)f->value_len);
    lua_setfield(L, -2, "size");
    lua_rawset(L, fl->files);
    return 0;
}

/* The request's Content-Type value, or NULL. */
static const struct lh_header *content_type(const struct lh_request *req)
{
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const struct lh_header *h = &req->headers[i];
        if (h->name_len == 12 && strncasecmp(h->name, "content-type", 12) == 0)
            return h;
    }
    return NULL;
}

/* Does the media type of a Content-Type value (before any ';') equal type? */
static bool media_type_is(const struct lh_header *ct, const char *type)
{
    size_t n = strlen(type), len = ct->value_len;
    const char *semi = memchr(ct->value, ';', len);
    if (semi)
        len = (size_t)(semi - ct->value);
    while (len > 0 && (ct->value[len - 1] == ' ' || ct->value[len - 1] == '\t'))
        len--;
    return len == n && strncasecmp(ct->value, type, n) == 0;
}

bool lh_form_push_fields(lua_State *L, const struct lh_ctx *ctx)
{
    lua_newtable(L); /* form */
    lua_newtable(L); /* files */
    struct fill fl = {L, lua_gettop(L) - 1, lua_gettop(L)};
    const struct lh_header *ct = content_type(ctx->req);
    if (!ct || ctx->body_len == 0)
        return true;
    /* the decoded names and values: never longer than the body; a userdata, so that a
     * Lua error in a callback leaves nothing to free */
    char *scratch = lua_newuserdatauv(L, ctx->body_len, 0);
    int rc = 0;
    if (media_type_is(ct, "application/x-www-form-urlencoded")) {
        rc = lh_form_urlencoded(ctx->body, ctx->body_len, scratch, on_field, &fl);
    } else if (media_type_is(ct, "multipart/form-data")) {
        const char *b;
        size_t blen;
        char *bscratch = lua_newuserdatauv(L, ct->value_len + 1, 0);
        rc = lh_form_boundary(ct->value, ct->value_len, bscratch, &b, &blen);
        if (rc == 0)
            rc = lh_form_multipart(ctx->body, ctx->body_len, b, blen, scratch, on_field, &fl);
    }
    if (rc != 0) {
        lua_settop(L, fl.t - 1);
        return false;
    }
    lua_settop(L, fl.files);
    return true;
}
