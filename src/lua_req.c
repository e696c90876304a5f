/* lua_req.c - the request object handlers see: a userdata around a pointer to the
 * request's ctx, with lazy fields (headers, query, params, url, host, ctx, ...) and
 * the methods req:json(), req:header() and req:query_all(); when the request ends
 * the pointer is cleared, so a handler that keeps req gets a Lua error. The same
 * object serves the request's before hooks, routes and after hooks. See lua_int.h. */
#include "lua_int.h"

#include "wait.h"

#include "http.h"
#include "path.h"

#include <lauxlib.h>
#include <lua.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REQ_META "luahttpd.request"

/* The request object at idx (a request's, ended or not), or NULL. Its metatable is
 * compared by address (the registry keeps it alive): luaL_checkudata's lookup by
 * name costs more than the rest of a req.x. */
static struct lh_ctx **to_req(lua_State *L, int idx)
{
    struct lh_ctx **p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx))
        return NULL;
    bool ours = lua_topointer(L, -1) == lh_host_of(L)->req_meta;
    lua_pop(L, 1);
    return ours ? p : NULL;
}

/* The request behind the userdata at idx; raises once its request has ended. */
static struct lh_ctx *check_req(lua_State *L, int idx)
{
    struct lh_ctx **p = to_req(L, idx);
    if (!p)
        luaL_typeerror(L, idx, REQ_META);
    if (!*p)
        luaL_error(L, "request object used after its request ended");
    return *p;
}

/* Cached fields live in the userdata's user values, one slot each: no table to make
 * for a request whose handler reads nothing. SLOT_CTX is also what makes req.ctx one
 * table for the whole request, since the object is. */
enum {
    SLOT_HEADERS = 1,
    SLOT_QUERY,
    SLOT_PARAMS,
    SLOT_REWRITTEN,
    SLOT_BAD_JSON,
    SLOT_URL,
    SLOT_QUERY_STRING,
    SLOT_HOST,
    SLOT_CTX,
    SLOT_COOKIES,
    SLOT_FORM,
    SLOT_FILES,
    NSLOTS = SLOT_FILES
};

/* Push the value cached in slot and return true, or push nothing and return false. */
static bool push_slot(lua_State *L, int ud, int slot)
{
    if (lua_getiuservalue(L, ud, slot) != LUA_TNIL)
        return true;
    lua_pop(L, 1);
    return false;
}

/* Keep the value on top of the stack (it stays there) in slot. */
static void keep_in_slot(lua_State *L, int ud, int slot)
{
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, ud, slot);
}

static void push_headers(lua_State *L, const struct lh_request *r)
{
    lua_createtable(L, 0, (int)r->nheaders);
    char name[256];
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const struct lh_header *h = &r->headers[i];
        size_t n = h->name_len < sizeof name ? h->name_len : sizeof name - 1;
        for (size_t k = 0; k < n; k++)
            name[k] = (char)((h->name[k] >= 'A' && h->name[k] <= 'Z') ? h->name[k] + 32
                                                                        : h->name[k]);
        lua_pushlstring(L, name, n);
        lua_pushlstring(L, h->value, h->value_len);
        lua_rawset(L, -3); /* a repeated header: the last one wins */
    }
}

/* Push the query-decoded form of s (never longer than s). */
static void push_decoded(lua_State *L, const char *s, size_t len)
{
    char small[256];
    if (len < sizeof small) { /* the common case: no luaL_Buffer box on the stack */
        lua_pushlstring(L, small, lh_query_decode(s, len, small, sizeof small));
        return;
    }
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, len + 1);
    luaL_pushresultsize(&b, lh_query_decode(s, len, out, len + 1));
}

/* One "key=value" pair of a raw query, both still encoded; a pair without '=' has
 * the value "". */
struct pair {
    const char *key, *value;
    size_t key_len, value_len;
};

/* The next non-empty pair of q[0..len) from *at on ("a=1&&b" has two); false at the
 * end. */
static inline bool next_pair(const char *q, size_t len, size_t *at, struct pair *p)
{
    size_t i = *at;
    while (i < len && q[i] == '&')
        i++;
    if (i >= len)
        return false;
    size_t s = i, e;
    while (i < len && q[i] != '&')
        i++;
    for (e = s; e < i && q[e] != '='; e++)
        ;
    p->key = q + s;
    p->key_len = e - s;
    p->value = e < i ? q + e + 1 : "";
    p->value_len = e < i ? i - e - 1 : 0;
    *at = i;
    return true;
}

static void push_query(lua_State *L, const char *q, size_t len)
{
    int pairs = 0;
    for (size_t i = 0; q && i < len; i++)
        pairs += q[i] == '&';
    lua_createtable(L, 0, q && len ? pairs + 1 : 0);
    struct pair p;
    for (size_t at = 0; q && next_pair(q, len, &at, &p);) {
        push_decoded(L, p.key, p.key_len);
        push_decoded(L, p.value, p.value_len);
        lua_rawset(L, -3); /* the last value wins */
    }
}

/* req:query_all(name): every decoded value of name, in the query's order. Keys are
 * compared decoded, as req.query stores them ("a%5Bb%5D" is "a[b]"). */
static int req_query_all(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    size_t name_len;
    const char *name = luaL_checklstring(L, 2, &name_len);
    lua_newtable(L);
    struct pair p;
    lua_Integer n = 0;
    for (size_t at = 0; ctx->query && next_pair(ctx->query, ctx->query_len, &at, &p);) {
        if (p.key_len < name_len) /* decoding never lengthens */
            continue;
        push_decoded(L, p.key, p.key_len);
        size_t k_len;
        const char *k = lua_tolstring(L, -1, &k_len);
        bool same = k_len == name_len && memcmp(k, name, k_len) == 0;
        lua_pop(L, 1);
        if (same) {
            push_decoded(L, p.value, p.value_len);
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/* req:header(name): the value of the request header name (any case), the values of a
 * repeated one joined with ", " in the order received (RFC 9110 5.3); nil when
 * absent. */
static int req_header(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    size_t name_len;
    const char *name = luaL_checklstring(L, 2, &name_len);
    const struct lh_request *r = ctx->req;
    luaL_Buffer b;
    int found = 0;
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const struct lh_header *h = &r->headers[i];
        if (h->name_len != name_len || strncasecmp(h->name, name, name_len) != 0)
            continue;
        if (found++ == 0)
            luaL_buffinit(L, &b);
        else
            luaL_addlstring(&b, ", ", 2);
        luaL_addlstring(&b, h->value, h->value_len);
    }
    if (found)
        luaL_pushresult(&b);
    else
        lua_pushnil(L);
    return 1;
}

/* req:json(). Its error, if it reaches the top uncaught, answers 400 (the body is the
 * client's fault): lh_call_run_slice recognises the very string raised here, kept
 * alive in a user value of the request. A handler that catches it and fails for
 * another reason answers 500. json.decode is the one config.lua started with,
 * whatever the global `json` holds now. */
static int req_json(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lh_host_key_decode);
    lua_pushlstring(L, ctx->body, ctx->body_len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, SLOT_BAD_JSON);
        ctx->bad_json = lua_topointer(L, -1);
        return lua_error(L);
    }
    return 1;
}

/* ---- the fields ------------------------------------------------------------ */

/* Each pushes one field's value; the ones with a slot run once per request. */
typedef void (*field_fn)(lua_State *L, struct lh_ctx *ctx);

static void f_query(lua_State *L, struct lh_ctx *ctx)
{
    push_query(L, ctx->query, ctx->query_len);
}

static void f_params(lua_State *L, struct lh_ctx *ctx)
{
    lua_newtable(L); /* a route without captures: lh_req_set_params left the slot empty */
}

static void f_headers(lua_State *L, struct lh_ctx *ctx) { push_headers(L, ctx->req); }

static void f_method(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushlstring(L, ctx->req->method, ctx->req->method_len);
}

static void f_path(lua_State *L, struct lh_ctx *ctx) { lua_pushstring(L, ctx->path); }

static void f_body(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushlstring(L, ctx->body, ctx->body_len);
}

static void f_remote_addr(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushstring(L, ctx->remote_addr);
}

static void f_json(lua_State *L, struct lh_ctx *ctx) { lua_pushcfunction(L, req_json); }

static void f_header(lua_State *L, struct lh_ctx *ctx) { lua_pushcfunction(L, req_header); }

static void f_query_all(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushcfunction(L, req_query_all);
}

/* A new table; its slot keeps it for the request's every hook and handler. */
static void f_ctx(lua_State *L, struct lh_ctx *ctx) { lua_newtable(L); }

/* The target as the client sent it: not decoded, query included, absolute-form as
 * such; a before hook's rewrite of req.path leaves it alone. */
static void f_url(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushlstring(L, ctx->req->target, ctx->req->target_len);
}

static void f_query_string(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushlstring(L, ctx->query ? ctx->query : "", ctx->query_len);
}

static void f_host(lua_State *L, struct lh_ctx *ctx)
{
    size_t n;
    const char *h = lh_http_host(ctx->req, &n);
    lua_pushlstring(L, h, n);
}

static void f_scheme(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushliteral(L, "http"); /* no TLS here: a proxy in front terminates it */
}

static void f_version(lua_State *L, struct lh_ctx *ctx)
{
    lua_pushstring(L, ctx->req->version == 10 ? "1.0" : "1.1");
}

static void f_cookies(lua_State *L, struct lh_ctx *ctx) { lh_form_push_cookies(L, ctx->req); }

/* req.form and req.files are made together, on the first read of either, and both
 * kept. A malformed form body raises an error that, reaching the top uncaught,
 * answers 400 as req:json()'s does (a long string: never interned, so no other error
 * is the same object). */
static void make_form(lua_State *L, struct lh_ctx *ctx)
{
    if (!lh_form_push_fields(L, ctx)) {
        lua_pushliteral(L, "req.form: the request body is not a well-formed form "
                           "(application/x-www-form-urlencoded or multipart/form-data)");
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, SLOT_BAD_JSON);
        ctx->bad_json = lua_topointer(L, -1);
        lua_error(L);
    }
    lua_setiuservalue(L, 1, SLOT_FILES);
    lua_setiuservalue(L, 1, SLOT_FORM);
}

static void f_form(lua_State *L, struct lh_ctx *ctx)
{
    make_form(L, ctx);
    lua_getiuservalue(L, 1, SLOT_FORM);
}

static void f_files(lua_State *L, struct lh_ctx *ctx)
{
    make_form(L, ctx);
    lua_getiuservalue(L, 1, SLOT_FILES);
}

struct field {
    const char *name;
    uint8_t len;
    uint8_t slot; /* the user value that caches it; 0: pushed anew on every read */
    field_fn push;
};
#define FIELD(name, slot, push) {name, sizeof name - 1, slot, push}

/* Tried in order, the fields most handlers read first, so that adding one costs those
 * nothing; a length and a first byte tell any two apart before memcmp runs. */
static const struct field fields[] = {
    FIELD("query", SLOT_QUERY, f_query),
    FIELD("params", SLOT_PARAMS, f_params),
    FIELD("headers", SLOT_HEADERS, f_headers),
    FIELD("method", 0, f_method),
    FIELD("path", 0, f_path),
    FIELD("body", 0, f_body),
    FIELD("remote_addr", 0, f_remote_addr),
    FIELD("json", 0, f_json),
    FIELD("ctx", SLOT_CTX, f_ctx),
    FIELD("header", 0, f_header),
    FIELD("url", SLOT_URL, f_url),
    FIELD("query_string", SLOT_QUERY_STRING, f_query_string),
    FIELD("query_all", 0, f_query_all),
    FIELD("host", SLOT_HOST, f_host),
    FIELD("scheme", 0, f_scheme),
    FIELD("version", 0, f_version),
    FIELD("cookies", SLOT_COOKIES, f_cookies),
    FIELD("form", SLOT_FORM, f_form),
    FIELD("files", SLOT_FILES, f_files),
};
#undef FIELD

static int req_index(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    size_t len;
    const char *k = luaL_checklstring(L, 2, &len);
    for (const struct field *f = fields; f < fields + sizeof fields / sizeof fields[0]; f++) {
        if (f->len != len || f->name[0] != k[0] || memcmp(f->name, k, len) != 0)
            continue;
        if (f->slot && push_slot(L, 1, f->slot))
            return 1;
        f->push(L, ctx);
        if (f->slot)
            keep_in_slot(L, 1, f->slot);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/*
 * Only req.path may be set, and only by a before hook (a coroutine it runs included):
 * later, routes have been matched against the old path. The new path is decoded
 * already; it is normalised here, never decoded again, into a Lua string the request
 * object keeps (SLOT_REWRITTEN) while ctx->path points at it: sized by the string,
 * and wherever ctx moves while the hook is paused. A path that no client could ask
 * for is refused as that request would be: ctx->rewrite_refused holds its status
 * (403 above "/", 404 for a NUL or a backslash, 414 longer than
 * limits.header_bytes) and the path stays as it was.
 */
static int req_newindex(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "path") != 0)
        return luaL_error(L, "req.%s is read-only (only req.path can be rewritten)", k);
    const char *kind = ctx->what_kind ? ctx->what_kind : "?";
    if (strcmp(kind, "before") != 0 || lh_host_of(L)->running != ctx) /* or another's req */
        return luaL_error(L, "req.path can only be changed by a before hook, not by %s",
                          strcmp(kind, "route") == 0 ? "a route handler" : "an after hook");
    size_t len;
    const char *p = luaL_checklstring(L, 3, &len);
    if (len == 0 || p[0] != '/')
        return luaL_error(L, "req.path must start with '/'");
    if (len > lh_host_of(L)->path_max) {
        ctx->rewrite_refused = 414;
        return 0;
    }
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, len + 2);
    int st = lh_path_resolve(p, len, out, len + 2);
    if (st != 0) {
        ctx->rewrite_refused = st;
        return 0;
    }
    luaL_pushresultsize(&b, strlen(out));
    keep_in_slot(L, 1, SLOT_REWRITTEN); /* keeps the string alive while ctx->path points at it */
    ctx->path = lua_tostring(L, -1);
    return 0;
}

static int req_tostring(lua_State *L)
{
    struct lh_ctx **p = to_req(L, 1);
    if (!p)
        return luaL_typeerror(L, 1, REQ_META);
    if (*p)
        lua_pushfstring(L, "request %s", (*p)->path);
    else
        lua_pushliteral(L, "request (ended)");
    return 1;
}

static const luaL_Reg req_meta[] = {
    {"__index", req_index},
    {"__newindex", req_newindex},
    {"__tostring", req_tostring},
    {NULL, NULL},
};

void lh_req_create_meta(lua_State *L)
{
    luaL_newmetatable(L, REQ_META);
    luaL_setfuncs(L, req_meta, 0);
    lh_host_of(L)->req_meta = lua_topointer(L, -1);
    lh_host_of(L)->req_meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* A new request object is kept in the registry slot the last request left empty
 * (lh_lua_request_done) when there is one: a luaL_ref and luaL_unref per request cost
 * more than the rest of the object. */
void lh_req_push_object(struct lh_lua *lua, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    if (ctx->req_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->req_ref);
        return;
    }
    struct lh_ctx **p = lua_newuserdatauv(L, sizeof *p, NSLOTS);
    *p = ctx;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lua->req_meta_ref);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    if (lua->spare_req_ref != LUA_NOREF) {
        ctx->req_ref = lua->spare_req_ref;
        lua->spare_req_ref = LUA_NOREF;
        lua_rawseti(L, LUA_REGISTRYINDEX, ctx->req_ref);
    } else {
        ctx->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

void lh_req_set_params(struct lh_lua *lua, struct lh_ctx *ctx, const struct lh_route_match *m)
{
    lua_State *L = lua->L;
    if (m->nparams > 0) { /* the match is gone once the handler runs: copy it now */
        lh_req_push_object(lua, ctx);
        int req = lua_gettop(L);
        lua_createtable(L, 0, (int)m->nparams);
        for (size_t i = 0; i < m->nparams; i++) {
            lua_pushlstring(L, m->params[i].value, m->params[i].value_len);
            lua_setfield(L, -2, m->params[i].name);
        }
        keep_in_slot(L, req, SLOT_PARAMS);
        lua_settop(L, req - 1);
    } else if (ctx->req_ref != LUA_NOREF) { /* an earlier route's captures go */
        lh_req_push_object(lua, ctx);
        lua_pushnil(L);
        lua_setiuservalue(L, -2, SLOT_PARAMS);
        lua_pop(L, 1);
    }
}

/* Point ctx's request object at target (ctx itself, or NULL when it ends). */
static void retarget_req(struct lh_lua *lua, struct lh_ctx *ctx, struct lh_ctx *target)
{
    if (ctx->req_ref == LUA_NOREF)
        return;
    lua_rawgeti(lua->L, LUA_REGISTRYINDEX, ctx->req_ref);
    *(struct lh_ctx **)lua_touserdata(lua->L, -1) = target;
    lua_pop(lua->L, 1);
}

void lh_lua_ctx_moved(struct lh_lua *lua, struct lh_ctx *ctx)
{
    retarget_req(lua, ctx, ctx);
}

void lh_lua_request_done(struct lh_lua *lua, struct lh_ctx *ctx)
{
    free(ctx->dev_error); /* what lua_call.c kept of a failure */
    free(ctx->err_detail);
    free(ctx->err_trace);
    ctx->dev_error = ctx->err_detail = ctx->err_trace = NULL;
    if (ctx->wait_op) /* given up while it waited, or it failed reading the result */
        ctx->wait_op->cancel(ctx->wait_op);
    if (ctx->wait_held && ctx->wait_held != ctx->wait_op)
        ctx->wait_held->cancel(ctx->wait_held);
    ctx->wait_op = ctx->wait_held = NULL;
    if (!lua)
        return;
    retarget_req(lua, ctx, NULL);
    if (ctx->req_ref != LUA_NOREF && lua->spare_req_ref == LUA_NOREF) {
        /* the slot is kept, the object let go: false, not nil, which would leave a
         * hole in the registry's array, and luaL_ref (which takes lua_rawlen + 1 when
         * its free list is empty) could hand this slot out again to someone else */
        lua_pushboolean(lua->L, 0);
        lua_rawseti(lua->L, LUA_REGISTRYINDEX, ctx->req_ref);
        lua->spare_req_ref = ctx->req_ref;
    } else {
        luaL_unref(lua->L, LUA_REGISTRYINDEX, ctx->req_ref);
    }
    luaL_unref(lua->L, LUA_REGISTRYINDEX, ctx->res_ref);
    luaL_unref(lua->L, LUA_REGISTRYINDEX, ctx->stream_ref);
    ctx->req_ref = ctx->res_ref = ctx->stream_ref = LUA_NOREF;
    lh_call_drop_thread(lua, ctx, false); /* a handler abandoned while paused */
}
