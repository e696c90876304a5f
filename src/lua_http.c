/* lua_http.c - http.request, http.get, http.post and proxy(): the outbound HTTP
 * client (client.c) seen from Lua. See lua_int.h.
 *
 * Each call builds the request head itself, starts an exchange and suspends the
 * calling handler or timer with lh_wait_yield until the exchange is over (proxy:
 * until the response head is in; the body then streams through a function body
 * that waits for each piece). The exchange lives in a userdata on the waiting
 * call's stack, whose __gc frees it: a call abandoned while it waits (its client
 * left) has its exchange cancelled by the server and collected with it.
 *
 * Misuse (a bad URL, a header with CR or LF) raises; what the network does (no
 * connection, a timeout, a malformed answer) is nil and a message for http.*, and
 * 502 or 504 for proxy(). */
#include "lua_int.h"

#include "client.h"
#include "log.h"
#include "response.h"
#include "wait.h"

#include <lauxlib.h>
#include <lua.h>

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FETCH_META "luahttpd.fetch"
#define DEFAULT_TIMEOUT 10.0              /* http.request */
#define PROXY_TIMEOUT 60.0                /* proxy(), as nginx's proxy_read_timeout */
#define DEFAULT_MAX_BODY (64u << 20)      /* http.request: 64 MiB unless max_body says */
#define MAX_REDIRECTS 20

/* ---- the exchange as a userdata ---------------------------------------------------------- */

static int fetch_gc(lua_State *L)
{
    struct lh_fetch **box = luaL_checkudata(L, 1, FETCH_META);
    lh_fetch_free(*box);
    *box = NULL;
    return 0;
}

/* Push an empty box for an exchange (made before the exchange, so that running out
 * of Lua memory cannot leak one). */
static struct lh_fetch **push_box(lua_State *L)
{
    struct lh_fetch **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    if (luaL_newmetatable(L, FETCH_META)) {
        lua_pushcfunction(L, fetch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return box;
}

/* ---- building a request head ------------------------------------------------------------ */

/* A token (RFC 9110 5.6.2), as a method or a field name must be: response.c's
 * classification of field names says BAD for anything else. */
static bool is_token(const char *s, size_t n)
{
    return lh_response_name_class(s, n) != LH_HNAME_BAD;
}

static bool name_is(const char *n, size_t len, const char *want)
{
    return strlen(want) == len && !strncasecmp(n, want, len);
}

/* Fields RFC 9110 7.6.1 calls hop-by-hop, and those the framing owns: never passed
 * on by proxy() in either direction. */
static bool hop_by_hop(const char *n, size_t len)
{
    const char *a = NULL, *b = NULL; /* the names of this length */
    switch (len) {
    case 2: a = "te"; break;
    case 7: a = "trailer", b = "upgrade"; break;
    case 10: a = "connection", b = "keep-alive"; break;
    case 14: a = "content-length"; break;
    case 16: a = "proxy-connection"; break;
    case 17: a = "transfer-encoding"; break;
    case 18: a = "proxy-authenticate"; break;
    case 19: a = "proxy-authorization"; break;
    default: return false;
    }
    return !strncasecmp(n, a, len) || (b && !strncasecmp(n, b, len));
}

/* The field names a message's Connection fields list (those are hop-by-hop too),
 * gathered once per message rather than looked for once per field. */
#define CONN_NAMES_MAX 16
struct conn_names {
    uint32_t n;
    bool more;                      /* over CONN_NAMES_MAX: the rest are not kept */
    const struct lh_header *h;
    uint32_t nh;
    struct {
        const char *s;
        size_t len;
    } name[CONN_NAMES_MAX];
};

/* Call fn(arg, token, len) for each token of the Connection fields in h. */
static bool each_conn_name(const struct lh_header *h, uint32_t nh,
                           bool (*fn)(void *arg, const char *t, size_t len), void *arg)
{
    for (uint32_t i = 0; i < nh; i++) {
        if (!name_is(h[i].name, h[i].name_len, "connection"))
            continue;
        const char *v = h[i].value, *end = v + h[i].value_len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                v++;
            const char *t = v;
            while (v < end && *v != ',' && *v != ' ' && *v != '\t')
                v++;
            if (v > t && fn(arg, t, (size_t)(v - t)))
                return true;
        }
    }
    return false;
}

static bool keep_conn_name(void *arg, const char *t, size_t len)
{
    struct conn_names *c = arg;
    if (hop_by_hop(t, len)) /* "keep-alive", "upgrade": dropped anyway */
        return false;
    if (c->n == CONN_NAMES_MAX)
        c->more = true;
    else
        c->name[c->n].s = t, c->name[c->n++].len = len;
    return false;
}

static void conn_names_init(struct conn_names *c, const struct lh_header *h, uint32_t nh)
{
    c->n = 0;
    c->more = false;
    c->h = h;
    c->nh = nh;
    each_conn_name(h, nh, keep_conn_name, c);
}

struct wanted {
    const char *n;
    size_t len;
};

static bool is_wanted(void *arg, const char *t, size_t len)
{
    const struct wanted *w = arg;
    return len == w->len && !strncasecmp(t, w->n, len);
}

/* Is the field n hop-by-hop: one of RFC 9110's, or named by the Connection fields? */
static bool hop_field(const struct conn_names *c, const char *n, size_t len)
{
    if (hop_by_hop(n, len))
        return true;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->name[i].len == len && !strncasecmp(c->name[i].s, n, len))
            return true;
    struct wanted w = {n, len};
    return c->more && each_conn_name(c->h, c->nh, is_wanted, &w);
}

/* A backend's Date and Server: the server sends its own, as nginx does (CONTRACT 5:
 * every response has them; a handler may still set either). */
static bool backend_own(const char *n, size_t len)
{
    return name_is(n, len, "date") || name_is(n, len, "server");
}

static void add_field(luaL_Buffer *b, const char *n, size_t nl, const char *v, size_t vl)
{
    luaL_addlstring(b, n, nl);
    luaL_addstring(b, ": ");
    luaL_addlstring(b, v, vl);
    luaL_addstring(b, "\r\n");
}

/* "METHOD target HTTP/1.1\r\n": the target is u's, or base (u's path) then rest. */
static void add_request_line(luaL_Buffer *b, const char *method, size_t mlen,
                             const struct lh_url *u)
{
    luaL_addlstring(b, method, mlen);
    luaL_addchar(b, ' ');
    if (u->slash)
        luaL_addchar(b, '/');
    luaL_addlstring(b, u->target, u->target_len);
    luaL_addstring(b, " HTTP/1.1\r\n");
}

static bool method_idempotent(const char *m, size_t n)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", NULL};
    for (const char *const *p = safe; *p; p++)
        if (strlen(*p) == n && !memcmp(*p, m, n))
            return true;
    return false;
}

/* ---- the response as Lua sees it ------------------------------------------------------ */

/* Push the head's fields as a table, names in lower case; a repeated name gets an
 * array of its values. proxy: leave out hop-by-hop fields, and keep the names as the
 * backend wrote them (the server sends them on). */
static void push_headers(lua_State *L, const struct lh_response_head *h, bool proxy)
{
    struct conn_names conn;
    if (proxy)
        conn_names_init(&conn, h->headers, h->nheaders);
    lua_createtable(L, 0, (int)h->nheaders);
    char name[256];
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const struct lh_header *f = &h->headers[i];
        if (proxy && (hop_field(&conn, f->name, f->name_len) ||
                      backend_own(f->name, f->name_len)))
            continue;
        size_t n = f->name_len < sizeof name ? f->name_len : sizeof name - 1;
        for (size_t j = 0; j < n; j++)
            name[j] = proxy ? f->name[j] : (char)tolower((unsigned char)f->name[j]);
        lua_pushlstring(L, name, n);
        lua_pushvalue(L, -1);
        int t = lua_rawget(L, -3);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushlstring(L, f->value, f->value_len);
        } else if (t == LUA_TSTRING) { /* the second: an array of both */
            lua_createtable(L, 2, 0);
            lua_insert(L, -2);
            lua_rawseti(L, -2, 1);
            lua_pushlstring(L, f->value, f->value_len);
            lua_rawseti(L, -2, 2);
        } else {
            lua_pushlstring(L, f->value, f->value_len);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
        lua_rawset(L, -3);
    }
}

/* ---- http.request ---------------------------------------------------------------------- */

/* The request's options, read from the table at index 1. */
struct req_opts {
    const char *method;
    size_t method_len;
    struct lh_url u;
    const char *body;
    size_t body_len;
    struct lh_fetch_opts fo;
    char ca_file[PATH_MAX];
    int redirects;
};

static double opt_number(lua_State *L, int t, const char *name, double dflt)
{
    int ty = lua_getfield(L, t, name);
    double v = dflt;
    if (ty != LUA_TNIL) {
        if (ty != LUA_TNUMBER)
            luaL_error(L, "http.request: %s must be a number", name);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* opts.ca_file, relative to the config file's folder (upvalue 1). */
static void read_tls_opts(lua_State *L, int t, struct lh_fetch_opts *fo, char *ca, size_t cap)
{
    int ty = lua_getfield(L, t, "verify");
    fo->verify = ty == LUA_TNIL || lua_toboolean(L, -1);
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
        luaL_error(L, "verify must be true or false");
    lua_pop(L, 1);
    fo->ca_file = NULL;
    if (lua_getfield(L, t, "ca_file") != LUA_TNIL) {
        const char *p = luaL_checkstring(L, -1); /* a number would do as a name too */
        const char *dir = lua_tostring(L, lua_upvalueindex(1));
        if (p[0] == '/' || !dir || !*dir)
            snprintf(ca, cap, "%s", p);
        else
            snprintf(ca, cap, "%s/%s", dir, p);
        fo->ca_file = ca;
    }
    lua_pop(L, 1);
}

static void read_opts(lua_State *L, struct req_opts *o)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    memset(o, 0, sizeof *o);
    o->method = "GET";
    o->method_len = 3;
    if (lua_getfield(L, 1, "method") != LUA_TNIL) {
        o->method = luaL_checklstring(L, -1, &o->method_len);
        if (!is_token(o->method, o->method_len))
            luaL_error(L, "http.request: method is not a token");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "url") != LUA_TSTRING)
        luaL_error(L, "http.request: url (a string) expected");
    size_t ulen;
    const char *url = lua_tolstring(L, -1, &ulen), *err;
    if (lh_url_parse(url, ulen, &o->u, &err) < 0)
        luaL_error(L, "http.request: bad url %s: %s", url, err);
    lua_pop(L, 1); /* the table keeps the string, and u points into it */
    if (lua_getfield(L, 1, "body") != LUA_TNIL)
        o->body = luaL_checklstring(L, -1, &o->body_len);
    lua_pop(L, 1);
    o->fo.timeout = opt_number(L, 1, "timeout", DEFAULT_TIMEOUT);
    if (!(o->fo.timeout > 0) || o->fo.timeout > 1e6)
        luaL_error(L, "http.request: timeout must be a number of seconds > 0");
    double mb = opt_number(L, 1, "max_body", DEFAULT_MAX_BODY);
    if (!(mb >= 0) || mb > (double)SIZE_MAX / 2)
        luaL_error(L, "http.request: max_body must be a number of bytes >= 0");
    o->fo.max_body = (size_t)mb;
    double rd = opt_number(L, 1, "redirects", 0);
    if (!(rd >= 0) || rd > MAX_REDIRECTS)
        luaL_error(L, "http.request: redirects must be from 0 to %d", MAX_REDIRECTS);
    o->redirects = (int)rd;
    read_tls_opts(L, 1, &o->fo, o->ca_file, sizeof o->ca_file);
    o->fo.head_request = o->method_len == 4 && !memcmp(o->method, "HEAD", 4);
    o->fo.idempotent = method_idempotent(o->method, o->method_len);
}

static void add_content_length(luaL_Buffer *b, const char *method, size_t mlen, size_t n,
                               bool always)
{
    /* a body, or a method that has one, even empty (RFC 9110 8.6) */
    if (n || always || (mlen == 4 && !memcmp(method, "POST", 4)) ||
        (mlen == 3 && !memcmp(method, "PUT", 3)) || (mlen == 5 && !memcmp(method, "PATCH", 5))) {
        char cl[48];
        int k = snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", n);
        luaL_addlstring(b, cl, (size_t)k);
    }
}

/* Push the request head of o, with the fields of opts.headers (index 1): a value may
 * be an array of strings (repeated lines). */
static void push_head(lua_State *L, const struct req_opts *o)
{
    lua_newtable(L); /* the lines of opts.headers, checked */
    int lines = lua_gettop(L), nlines = 0;
    bool host = false, agent = false;
    if (lua_getfield(L, 1, "headers") == LUA_TTABLE) {
        int t = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, t)) {
            size_t nl, vl;
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "http.request: header names must be strings");
            const char *n = lua_tolstring(L, -2, &nl);
            if (!is_token(n, nl))
                luaL_error(L, "http.request: bad header name '%s'", n);
            if (name_is(n, nl, "content-length") || name_is(n, nl, "transfer-encoding") ||
                name_is(n, nl, "connection"))
                luaL_error(L, "http.request: %s is the client's to set (from the body)", n);
            host = host || name_is(n, nl, "host");
            agent = agent || name_is(n, nl, "user-agent");
            bool many = lua_type(L, -1) == LUA_TTABLE;
            lua_Integer count = many ? (lua_Integer)lua_rawlen(L, -1) : 1;
            for (lua_Integer i = 1; i <= count; i++) {
                if (many)
                    lua_rawgeti(L, -1, i);
                if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
                    luaL_error(L, "http.request: header %s must be a string", n);
                const char *v = lua_tolstring(L, -1, &vl);
                if (!lh_response_value_ok(v, vl))
                    luaL_error(L, "http.request: header %s holds CR, LF or NUL (or another "
                                  "control byte)", n);
                lua_pushfstring(L, "%s: %s\r\n", n, v);
                lua_rawseti(L, lines, ++nlines);
                if (many)
                    lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "http.request: headers must be a table");
    }
    lua_pop(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_request_line(&b, o->method, o->method_len, &o->u);
    if (!host)
        add_field(&b, "Host", 4, o->u.authority, strlen(o->u.authority));
    if (!agent)
        luaL_addstring(&b, "User-Agent: luahttpd\r\n");
    for (int i = 1; i <= nlines; i++) {
        lua_rawgeti(L, lines, i);
        luaL_addvalue(&b);
    }
    add_content_length(&b, o->method, o->method_len, o->body_len, false);
    luaL_addstring(&b, "\r\n");
    luaL_pushresult(&b);
    lua_remove(L, lines);
}

/* Start o's exchange into the box at index box. Raises when out of memory. */
static void start(lua_State *L, int box, const struct req_opts *o, const char *head,
                  size_t head_len)
{
    struct lh_fetch **f = lua_touserdata(L, box);
    lh_fetch_free(*f);
    *f = lh_fetch_start(&o->u, head, head_len, o->body, o->body_len, &o->fo);
    if (!*f)
        luaL_error(L, "http.request: out of memory");
}

static int request_k(lua_State *L, int status, lua_KContext k);

/* The stack of a waiting http.request: 1 the options, 2 the exchange's box, 3 the
 * redirects left, 4 the URL of the exchange (for a relative Location). */
static int wait_for(lua_State *L)
{
    return lh_wait_yield(L, "http.request", lh_fetch_wait(*(struct lh_fetch **)lua_touserdata(L, 2)),
                         request_k);
}

/* Where a redirect points: Location resolved against the URL at index base. Pushes
 * the new URL. */
static void push_location(lua_State *L, int base, const char *loc, size_t len)
{
    size_t blen;
    const char *b = lua_tolstring(L, base, &blen);
    struct lh_url u;
    const char *err;
    const char *hash = memchr(loc, '#', len); /* the fragment is the client's alone */
    if (hash)
        len = (size_t)(hash - loc);
    if ((len >= 7 && !strncasecmp(loc, "http://", 7)) ||
        (len >= 8 && !strncasecmp(loc, "https://", 8))) {
        lua_pushlstring(L, loc, len);
        return;
    }
    if (lh_url_parse(b, blen, &u, &err) < 0)
        luaL_error(L, "http.request: bad url: %s", err);
    const char *scheme = u.tls ? "https:" : "http:";
    size_t dir = 0; /* what of the target stays: relative to its folder */
    for (size_t i = 0; i < u.target_len && u.target[i] != '?'; i++)
        if (u.target[i] == '/')
            dir = i + 1;
    if (len == 0 || loc[0] == '?') /* the same path: all of it stays (RFC 3986 5.2.2) */
        for (dir = 0; dir < u.target_len && u.target[dir] != '?'; dir++)
            ;
    if (len >= 2 && loc[0] == '/' && loc[1] == '/') /* another host, same scheme */
        lua_pushstring(L, scheme);
    else if (len >= 1 && loc[0] == '/')
        lua_pushfstring(L, "%s//%s", scheme, u.authority);
    else
        lua_pushfstring(L, "%s//%s%s%s", scheme, u.authority, u.slash ? "/" : "",
                        lua_pushlstring(L, u.target, dir));
    lua_pushlstring(L, loc, len); /* not NUL-terminated: it is the head's */
    lua_concat(L, 2);
    if (!(len >= 1 && loc[0] == '/'))
        lua_remove(L, -2); /* the target's folder, pushed for the format */
}

/* The options table at the top goes to another server: its headers (a copy) lose what
 * was meant for the first one only, as curl and browsers do. */
static void drop_credentials(lua_State *L)
{
    if (lua_getfield(L, -1, "headers") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        size_t nl = 0;
        const char *n = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nl) : "";
        if (name_is(n, nl, "authorization") || name_is(n, nl, "proxy-authorization") ||
            name_is(n, nl, "cookie") || name_is(n, nl, "host")) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_setfield(L, -3, "headers");
    lua_pop(L, 1);
}

/* A redirect to follow: make the next exchange from the options at 1 with the url
 * (and method) changed; true when one was started. */
static bool follow(lua_State *L, const struct lh_response_head *h)
{
    int left = (int)lua_tointeger(L, 3);
    if (left <= 0 || (h->status != 301 && h->status != 302 && h->status != 303 &&
                      h->status != 307 && h->status != 308))
        return false;
    const struct lh_header *loc = NULL;
    for (uint32_t i = 0; i < h->nheaders; i++)
        if (name_is(h->headers[i].name, h->headers[i].name_len, "location"))
            loc = &h->headers[i];
    if (!loc)
        return false;
    push_location(L, 4, loc->value, loc->value_len);
    struct lh_url next;
    size_t nlen;
    const char *nurl = lua_tolstring(L, -1, &nlen), *err;
    if (lh_url_parse(nurl, nlen, &next, &err) < 0) { /* the server's mistake: not followed */
        lua_pop(L, 1);
        return false;
    }
    /* a copy of the options for the next exchange: 303 (and 301/302 after a POST, as
     * browsers do) turn into a GET without a body */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    struct lh_url was;
    if (lh_url_parse(lua_tostring(L, 4), lua_rawlen(L, 4), &was, &err) < 0 ||
        was.tls != next.tls || was.port != next.port || strcasecmp(was.host, next.host))
        drop_credentials(L);
    lua_getfield(L, 1, "method");
    const char *m = lua_tostring(L, -1);
    bool to_get = h->status == 303 || ((h->status == 301 || h->status == 302) && m &&
                                       !strcmp(m, "POST"));
    lua_pop(L, 1);
    if (to_get) {
        lua_pushliteral(L, "GET");
        lua_setfield(L, -2, "method");
        lua_pushnil(L);
        lua_setfield(L, -2, "body");
    }
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "url");
    lua_replace(L, 1);
    lua_replace(L, 4);
    lua_pushinteger(L, left - 1);
    lua_replace(L, 3);
    struct req_opts o;
    read_opts(L, &o);
    push_head(L, &o);
    size_t hl;
    const char *head = lua_tolstring(L, -1, &hl);
    start(L, 2, &o, head, hl);
    lua_pop(L, 1);
    return true;
}

static int request_k(lua_State *L, int status, lua_KContext k)
{
    lh_wait_resumed(L, "http.request");
    lua_settop(L, 4);
    struct lh_fetch **box = lua_touserdata(L, 2);
    const char *err;
    int st;
    const struct lh_response_head *h = lh_fetch_head(*box, &err, &st);
    if (!h) { /* what it read goes now: C memory, which the collector does not see */
        luaL_pushfail(L);
        lua_pushstring(L, err);
        lh_fetch_free(*box);
        *box = NULL;
        return 2;
    }
    if (follow(L, h))
        return wait_for(L);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, h->status);
    lua_setfield(L, -2, "status");
    push_headers(L, h, false);
    lua_setfield(L, -2, "headers");
    size_t n;
    const char *body = lh_fetch_body(*box, &n);
    lua_pushlstring(L, body, n);
    lua_setfield(L, -2, "body");
    lh_fetch_free(*box); /* its buffers now, not at the next collection */
    *box = NULL;
    return 1;
}

/* http.request{ method=, url=, headers=, body=, timeout=, max_body=, verify=,
 * ca_file=, redirects= } */
static int api_request(lua_State *L)
{
    lh_wait_check(L, "http.request");
    struct req_opts o;
    read_opts(L, &o);
    lua_settop(L, 1);
    push_box(L);
    lua_pushinteger(L, o.redirects);
    lua_getfield(L, 1, "url");
    push_head(L, &o);
    size_t hl;
    const char *head = lua_tolstring(L, -1, &hl);
    start(L, 2, &o, head, hl);
    lua_pop(L, 1);
    return wait_for(L);
}

/* Replace the stack with one table of options for api_request: a copy of the table
 * at opts (may be nil), with the url at index 1, method (unless the table has one)
 * and the body at index body (0: none). */
static void shorthand(lua_State *L, int opts, const char *method, int body)
{
    luaL_checkstring(L, 1);
    if (body)
        luaL_checkstring(L, body);
    lua_newtable(L);
    int t = lua_gettop(L);
    if (!lua_isnoneornil(L, opts)) {
        luaL_checktype(L, opts, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, opts)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        }
    }
    lua_pushvalue(L, 1);
    lua_setfield(L, t, "url");
    if (lua_getfield(L, t, "method") == LUA_TNIL) {
        lua_pushstring(L, method);
        lua_setfield(L, t, "method");
    }
    lua_pop(L, 1);
    if (body) {
        lua_pushvalue(L, body);
        lua_setfield(L, t, "body");
    }
    lua_replace(L, 1);
    lua_settop(L, 1);
}

/* http.get(url [, opts]) */
static int api_get(lua_State *L)
{
    lh_wait_check(L, "http.get");
    shorthand(L, 2, "GET", 0);
    return api_request(L);
}

/* http.post(url, body [, opts]) */
static int api_post(lua_State *L)
{
    lh_wait_check(L, "http.post");
    shorthand(L, 3, "POST", 2);
    return api_request(L);
}

/* ---- proxy() ---------------------------------------------------------------------------- */

/* What proxy(url, opts) was made with (upvalue 2 of its handler; upvalue 1 is the url
 * string, which u points into). */
struct proxy {
    struct lh_url u;
    struct lh_fetch_opts fo;
    bool change_origin;         /* Host: the backend's, not the client's */
    char ca_file[PATH_MAX];
};

/* Add s[0..n), a decoded path, percent-encoding what a path may not hold as it is. */
static void add_path_encoded(luaL_Buffer *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || strchr("-._~!$&'()*+,;=:@/", c)) {
            luaL_addchar(b, (char)c);
        } else {
            luaL_addchar(b, '%');
            luaL_addchar(b, hex[c >> 4]);
            luaL_addchar(b, hex[c & 15]);
        }
    }
}

/* The target for the backend: the proxy URL's path, then the route's `*` capture
 * (rest, when the route has one), then both queries. */
static void add_proxy_target(luaL_Buffer *b, const struct lh_url *u, const char *rest,
                             size_t rest_len, const struct lh_ctx *ctx)
{
    const char *q = memchr(u->target, '?', u->target_len);
    size_t plen = q ? (size_t)(q - u->target) : u->target_len;
    if (rest) {
        while (plen > 0 && u->target[plen - 1] == '/')
            plen--;
        luaL_addlstring(b, u->target, plen);
        luaL_addchar(b, '/');
        add_path_encoded(b, rest[0] == '/' ? rest + 1 : rest, rest[0] == '/' ? rest_len - 1 : rest_len);
    } else {
        if (plen == 0)
            luaL_addchar(b, '/');
        luaL_addlstring(b, u->target, plen);
    }
    bool any = false;
    if (q && q + 1 < u->target + u->target_len) {
        luaL_addlstring(b, q, (size_t)(u->target + u->target_len - q));
        any = true;
    }
    if (ctx->query && ctx->query_len) {
        luaL_addchar(b, any ? '&' : '?');
        luaL_addlstring(b, ctx->query, ctx->query_len);
    }
}

/* Push the head proxy() sends for ctx's request. */
static void push_proxy_head(lua_State *L, const struct proxy *px, const struct lh_ctx *ctx,
                            const char *rest, size_t rest_len)
{
    const struct lh_request *r = ctx->req;
    const struct lh_header *h = r->headers, *host = r->host;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, r->method, r->method_len);
    luaL_addchar(&b, ' ');
    add_proxy_target(&b, &px->u, rest, rest_len, ctx);
    luaL_addstring(&b, " HTTP/1.1\r\n");
    if (host && !px->change_origin)
        add_field(&b, "Host", 4, host->value, host->value_len);
    else
        add_field(&b, "Host", 4, px->u.authority, strlen(px->u.authority));
    bool xff = false;
    struct conn_names conn;
    conn_names_init(&conn, h, r->nheaders);
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const char *n = h[i].name;
        size_t nl = h[i].name_len;
        if (hop_field(&conn, n, nl) ||
            name_is(n, nl, "host") || name_is(n, nl, "expect") ||
            name_is(n, nl, "x-forwarded-proto") || name_is(n, nl, "x-forwarded-host"))
            continue;
        if (name_is(n, nl, "x-forwarded-for")) { /* the client's own list, then the client */
            if (xff)
                continue;
            xff = true;
            luaL_addstring(&b, "X-Forwarded-For: ");
            for (uint32_t j = i; j < r->nheaders; j++)
                if (name_is(h[j].name, h[j].name_len, "x-forwarded-for")) {
                    luaL_addlstring(&b, h[j].value, h[j].value_len);
                    luaL_addstring(&b, ", ");
                }
            luaL_addstring(&b, ctx->remote_addr);
            luaL_addstring(&b, "\r\n");
            continue;
        }
        add_field(&b, n, nl, h[i].value, h[i].value_len);
    }
    if (!xff)
        add_field(&b, "X-Forwarded-For", 15, ctx->remote_addr, strlen(ctx->remote_addr));
    luaL_addstring(&b, "X-Forwarded-Proto: http\r\n");
    if (host)
        add_field(&b, "X-Forwarded-Host", 16, host->value, host->value_len);
    add_content_length(&b, r->method, r->method_len, ctx->body_len,
                       r->content_length >= 0 || r->chunked);
    luaL_addstring(&b, "\r\n");
    luaL_pushresult(&b);
}

static int piece_k(lua_State *L, int status, lua_KContext k);

/* The body function of a proxied response: the backend's next piece, nil at its end;
 * an error (the stream is cut, so the client sees it fail) when the backend fails. */
static int proxy_piece(lua_State *L)
{
    struct lh_fetch **box = lua_touserdata(L, lua_upvalueindex(1));
    const char *data;
    size_t n;
    int r = *box ? lh_fetch_next(*box, &data, &n) : 0;
    switch (r) {
    case 1:
        lua_pushlstring(L, data, n);
        return 1;
    case 0:
        if (*box) {
            lh_wait_detach(L, lh_fetch_wait(*box));
            lh_fetch_free(*box); /* the connection went back to its pool */
        }
        *box = NULL;
        return 0;
    case -1:
        return luaL_error(L, "proxy: %s", lh_fetch_error(*box));
    default:
        return lh_wait_yield(L, "proxy", lh_fetch_wait(*box), piece_k);
    }
}

static int piece_k(lua_State *L, int status, lua_KContext k)
{
    lh_wait_resumed(L, "proxy");
    return proxy_piece(L);
}

int64_t lh_http_stream_length(lua_State *L, int idx)
{
    if (lua_tocfunction(L, idx) != proxy_piece || !lua_getupvalue(L, idx, 1))
        return -1;
    struct lh_fetch **box = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return *box ? lh_fetch_left(*box) : 0; /* no exchange: the body has ended */
}

/* Add h's headers to resp, hop-by-hop ones left out; false at one only the headers
 * table's checks may answer (see prefill). */
static bool fill(struct lh_response *resp, const struct lh_response_head *h)
{
    struct conn_names conn;
    conn_names_init(&conn, h->headers, h->nheaders);
    bool seen_type = false;
    for (uint32_t i = 0; i < h->nheaders; i++) {
        const struct lh_header *f = &h->headers[i];
        if (hop_field(&conn, f->name, f->name_len) || backend_own(f->name, f->name_len))
            continue;
        enum lh_hname class = lh_response_name_class(f->name, f->name_len);
        if (class == LH_HNAME_BAD || class == LH_HNAME_FRAMING ||
            !lh_response_value_ok(f->value, f->value_len))
            return false;
        if (class == LH_HNAME_SINGLE) { /* Content-Type: replaces the server's own */
            if (seen_type)
                return false;
            seen_type = true;
        }
        if (lh_response_add(resp, f->name, f->name_len, f->value, f->value_len) != 0)
            return false;
    }
    return true;
}

/* The backend's status and headers straight into resp: for a proxy() handler the
 * server called itself, whose headers table nobody would see (making it and reading
 * it back was a third of a proxied request's instructions). false, resp to be made
 * again, for what only the table's checks may answer (a name or value the response
 * cannot carry, Content-Type twice: a 500, as for a handler). */
static bool prefill(struct lh_response *resp, const struct lh_response_head *h)
{
    lh_response_free(resp);
    lh_response_init(resp, h->status);
    if (fill(resp, h))
        return true;
    lh_response_clear_headers(resp); /* what spilled to the heap: the table's way inits */
    return false;
}

/* The handler's answer once the backend's head is in (stack: 1 req, 2 the box, 3
 * whether the server called the handler itself). */
static int proxy_k(lua_State *L, int status, lua_KContext k)
{
    lh_wait_resumed(L, "proxy");
    bool direct = lua_toboolean(L, 3);
    lua_settop(L, 2);
    struct lh_fetch **box = lua_touserdata(L, 2);
    const char *err;
    int st;
    const struct lh_response_head *h = lh_fetch_head(*box, &err, &st);
    if (!h || h->status > 599) {
        struct proxy *px = lua_touserdata(L, lua_upvalueindex(2));
        lh_log_error("error", "proxy to %s: %s", px->u.authority,
                     h ? "a status above 599" : err);
        lua_pushinteger(L, h ? 502 : st);
        lua_pushlightuserdata(L, (void *)&lh_resp_builtin_error);
        lh_fetch_free(*box); /* its connection now, not at a collection */
        *box = NULL;
        return 2;
    }
    lua_pushinteger(L, h->status);
    if (lh_fetch_complete(*box)) { /* all of it is in: one string, with its length */
        size_t n;
        const char *body = lh_fetch_body(*box, &n);
        if (n)
            lua_pushlstring(L, body, n);
        else
            lua_pushnil(L);
    } else {
        /* a client that leaves before the end closes the backend's connection at once */
        lh_wait_attach(L, lh_fetch_wait(*box));
        lua_pushvalue(L, 2);
        lua_pushcclosure(L, proxy_piece, 1);
    }
    struct lh_ctx *ctx = lh_lua_running(L);
    if (direct && ctx && ctx->resp && prefill(ctx->resp, h)) {
        lua_pushlightuserdata(L, (void *)&lh_resp_prefilled);
    } else {
        push_headers(L, h, true);
        if (!lh_http_response_header(h, "content-type")) {
            lua_pushboolean(L, 0); /* the backend sent none: neither does the proxy */
            lua_setfield(L, -2, "Content-Type");
        }
    }
    if (ctx && ctx->req->method_len == 4 && !memcmp(ctx->req->method, "HEAD", 4))
        ctx->head_length = h->content_length; /* -1 when it did not say */
    if (lh_fetch_complete(*box)) {
        lh_fetch_free(*box);
        *box = NULL;
    }
    return 3;
}

/* The handler proxy() makes: forward req to the backend and answer what it answers. */
static int proxy_handler(lua_State *L)
{
    lh_wait_check(L, "proxy");
    /* nothing below it in its coroutine: the server called it as a handler or a before
     * hook, and takes its results straight (a handler that calls it gets a headers
     * table it may change; an after hook's results are not taken) */
    lua_Debug ar;
    struct lh_ctx *ctx = lh_lua_running(L);
    bool direct = !lua_getstack(L, 1, &ar) && !ctx->in_after;
    if (!ctx->req->method_len || !ctx->remote_addr) /* a timer's call: no request */
        return luaL_error(L, "proxy: a handler made by proxy() forwards a request: it "
                             "cannot run outside a request (in a timer)");
    struct proxy *px = lua_touserdata(L, lua_upvalueindex(2));
    lua_settop(L, 1);
    const char *rest = NULL;
    size_t rest_len = 0;
    if (lua_istable(L, 1) || lua_isuserdata(L, 1)) {
        if (lua_getfield(L, 1, "params") == LUA_TTABLE && lua_getfield(L, -1, "*") == LUA_TSTRING)
            rest = lua_tolstring(L, -1, &rest_len);
    }
    push_box(L);
    lua_replace(L, 2); /* 1 req, 2 box, then what holds rest */
    push_proxy_head(L, px, ctx, rest, rest_len);
    size_t hl;
    const char *head = lua_tolstring(L, -1, &hl);
    struct lh_fetch_opts fo = px->fo;
    fo.head_request = ctx->req->method_len == 4 && !memcmp(ctx->req->method, "HEAD", 4);
    fo.idempotent = method_idempotent(ctx->req->method, ctx->req->method_len);
    struct lh_fetch **box = lua_touserdata(L, 2);
    *box = lh_fetch_start(&px->u, head, hl, ctx->body, ctx->body_len, &fo);
    if (!*box)
        return luaL_error(L, "proxy: out of memory");
    lua_settop(L, 2);
    lua_pushboolean(L, direct);
    return lh_wait_yield(L, "proxy", lh_fetch_wait(*box), proxy_k);
}

/* proxy(url [, { timeout=, verify=, ca_file=, change_origin= }]): a handler. */
static int api_proxy(lua_State *L)
{
    size_t ulen;
    const char *url = luaL_checklstring(L, 1, &ulen), *err;
    lua_settop(L, 2);
    struct proxy *px = lua_newuserdatauv(L, sizeof *px, 0);
    memset(px, 0, sizeof *px);
    if (lh_url_parse(url, ulen, &px->u, &err) < 0)
        return luaL_error(L, "proxy: bad url %s: %s", url, err);
    px->fo.timeout = PROXY_TIMEOUT;
    px->fo.verify = true;
    px->fo.stream = true;
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        px->fo.timeout = opt_number(L, 2, "timeout", PROXY_TIMEOUT);
        if (!(px->fo.timeout > 0) || px->fo.timeout > 1e6)
            return luaL_error(L, "proxy: timeout must be a number of seconds > 0");
        read_tls_opts(L, 2, &px->fo, px->ca_file, sizeof px->ca_file);
        lua_getfield(L, 2, "change_origin");
        px->change_origin = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_insert(L, -2);
    lua_pushcclosure(L, proxy_handler, 2);
    return 1;
}

void lh_http_install(lua_State *L, const char *dir)
{
    static const luaL_Reg fns[] = {
        {"request", api_request}, {"get", api_get}, {"post", api_post}, {NULL, NULL}};
    lua_createtable(L, 0, 3);
    lua_pushstring(L, dir ? dir : "");
    luaL_setfuncs(L, fns, 1);
    lua_setglobal(L, "http");
    lua_pushstring(L, dir ? dir : "");
    lua_pushcclosure(L, api_proxy, 1);
    lua_setglobal(L, "proxy");
}
