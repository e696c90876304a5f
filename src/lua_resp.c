/* lua_resp.c - Lua values into the response: what a handler returns (status, body,
 * headers) once it has run, the calls of a function returned as the body (a streamed
 * body), a failed call's error response, and the res table after hooks see and
 * change. See lua_int.h. */
#include "lua_int.h"

#include "front.h"
#include "log.h"
#include "lua_json.h"
#include "path.h"
#include "static.h"

#include <lauxlib.h>
#include <lua.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- what handlers return ----------------------------------------------------------- */

/* Response headers from Lua (a handler's third value, an after hook's res.headers)
 * pass the rules of lh_response_name_class: a bad name or value, or a table past
 * the response's header room, is a 500 with a log line naming what ran and the
 * header; the server's framing headers are left out with a warning, which is given
 * once per route or hook and header name in a worker (and again after a reload, in
 * the new state) so that a busy route cannot flood the log; Connection: close is
 * honoured by closing the connection after the response. */

static const char key_warned; /* registry: table of the warnings already given */
static const char key_file_meta; /* registry: the metatable of what file() returns */
const char lh_resp_builtin_error;
const char lh_resp_prefilled;

/* Log why the header name (len bytes; may be NULL) makes the response a 500. */
static bool header_error(const struct lh_ctx *ctx, const char *name, size_t len,
                         const char *why)
{
    char what[160], shown[64 * 4 + 1]; /* 64 bytes, each \xHH at most */
    if (name)
        lh_log_str(shown, sizeof shown, name, len > 64 ? 64 : len); /* may hold a NUL */
    lh_log_error("error", "lua: %s: response header \"%s%s\" %s: answering 500",
                 lh_call_describe(ctx, what, sizeof what), name ? shown : "(not a string)",
                 len > 64 ? "..." : "", why);
    return false;
}

/* Warn that a framing header (name: a token, at most 17 bytes) was left out, the
 * first time this route or hook sets it. The warnings given are kept in the state,
 * keyed by "what runs" and the name in lower case: a few per route at most. */
static void warn_ignored(struct lh_lua *lua, const struct lh_ctx *ctx, const char *name,
                         size_t len, bool closes)
{
    lua_State *L = lua->L;
    char what[160], key[sizeof what + 32];
    lh_call_describe(ctx, what, sizeof what);
    size_t wlen = strlen(what);
    memcpy(key, what, wlen);
    key[wlen] = '\n';
    for (size_t i = 0; i < len && i < 31; i++)
        key[wlen + 1 + i] = (char)(name[i] | 0x20); /* a framing name's letters, lowered */
    size_t klen = wlen + 1 + (len < 31 ? len : 31);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_warned) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_warned);
    }
    lua_pushlstring(L, key, klen);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pushlstring(L, key, klen);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
        lh_log_error("warn", "lua: %s: response header %.*s is the server's and is not "
                     "sent%s (warned once per route and header name)", what, (int)len, name,
                     closes ? "; its close is honoured: the connection closes after the "
                              "response, with the server's own Connection: close"
                            : "");
    }
    lua_pop(L, 2);
}

/* Does the table on top of the stack hold exactly the keys 1..n? */
static bool is_array(lua_State *L, lua_Unsigned n)
{
    lua_Unsigned count = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        count++;
    }
    return count == n;
}

/* Add one value (on top of the stack) of the header name to resp. */
static bool add_value(struct lh_lua *lua, const struct lh_ctx *ctx, struct lh_response *resp,
                      const char *name, size_t nlen, enum lh_hname class)
{
    lua_State *L = lua->L;
    int t = lua_type(L, -1);
    size_t vlen = 0;
    const char *v = t == LUA_TSTRING || t == LUA_TNUMBER ? lua_tolstring(L, -1, &vlen) : NULL;
    if (!v)
        return header_error(ctx, name, nlen, "must be a string, a number or an array of them");
    if (!lh_response_value_ok(v, vlen))
        return header_error(ctx, name, nlen, "has a value with CR, LF, NUL or another "
                                             "control byte");
    if (class == LH_HNAME_FRAMING) {
        bool closes = nlen == 10 && strncasecmp(name, "connection", 10) == 0 &&
                      lh_response_connection_close(v, vlen);
        if (closes)
            resp->close = true; /* honoured: the server's own Connection: close goes out */
        warn_ignored(lua, ctx, name, nlen, closes);
        return true;
    }
    if (lh_response_add(resp, name, nlen, v, vlen) != 0)
        return header_error(ctx, name, nlen, "does not fit: a response has at most 1024 "
                                             "header lines and 128 KiB of them");
    return true;
}

/* Add the pair on top of the stack (a name, and a value or an array of values) to
 * resp. *singles: the Date, Server and Content-Type names seen in this table. */
static bool add_field(struct lh_lua *lua, const struct lh_ctx *ctx, struct lh_response *resp,
                      unsigned *singles)
{
    lua_State *L = lua->L;
    size_t nlen = 0;
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nlen) : NULL;
    enum lh_hname class = name ? lh_response_name_class(name, nlen) : LH_HNAME_BAD;
    if (class == LH_HNAME_BAD)
        return header_error(ctx, name, nlen, "is not a valid header name (RFC 9110 token)");
    bool list = lua_type(L, -1) == LUA_TTABLE;
    lua_Unsigned n = list ? lua_rawlen(L, -1) : 1;
    if (list && !is_array(L, n))
        return header_error(ctx, name, nlen, "has a table value that is not an array");
    if (class == LH_HNAME_SINGLE && nlen == 12 && lua_type(L, -1) == LUA_TBOOLEAN &&
        !lua_toboolean(L, -1)) { /* ["Content-Type"] = false: none at all */
        if (*singles & 4u)
            return header_error(ctx, name, nlen, "is given twice (names are compared "
                                                 "without regard to case)");
        *singles |= 4u;
        lh_response_unset(resp, name);
        return true;
    }
    if (class == LH_HNAME_SINGLE) {
        unsigned bit = nlen == 4 ? 1u : nlen == 6 ? 2u : 4u; /* Date, Server, Content-Type */
        if (n != 1)
            return header_error(ctx, name, nlen, "takes exactly one value");
        if (*singles & bit)
            return header_error(ctx, name, nlen, "is given twice (names are compared "
                                                 "without regard to case)");
        *singles |= bit;
        lh_response_unset(resp, name); /* the server's own */
    }
    for (lua_Unsigned i = 1; i <= n; i++) {
        if (list)
            lua_rawgeti(L, -1, (lua_Integer)i);
        else
            lua_pushvalue(L, -1);
        bool ok = add_value(lua, ctx, resp, name, nlen, class);
        lua_pop(L, 1);
        if (!ok)
            return false;
    }
    return true;
}

/* Add the headers table at idx (nil: none) to resp. Returns false on a bad header
 * (logged); the caller answers 500. */
static bool add_headers(struct lh_lua *lua, const struct lh_ctx *ctx, int idx,
                        struct lh_response *resp)
{
    lua_State *L = lua->L;
    if (lua_isnil(L, idx))
        return true;
    if (!lua_istable(L, idx)) {
        char what[160];
        lh_log_error("error", "lua: %s: headers must be a table, got %s: answering 500",
                     lh_call_describe(ctx, what, sizeof what), luaL_typename(L, idx));
        return false;
    }
    unsigned singles = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!add_field(lua, ctx, resp, &singles)) {
            lua_pop(L, 2);
            return false;
        }
        lua_pop(L, 1);
    }
    return true;
}

/* Call the encoder under registry number ref on the value at idx, protected and
 * under the memory cap: leaves its text, or the error with a traceback, on top. */
static int encode(struct lh_lua *lua, int idx, int ref)
{
    lua_State *L = lua->L;
    lua_pushcfunction(L, lh_call_add_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushvalue(L, idx);
    lua->capped = lua->mem_limit > 0;
    int rc = lua_pcall(L, 1, 1, -3);
    lua->capped = false;
    lua_remove(L, -2); /* the traceback handler */
    return rc;
}

/*
 * Turn the values a handler returned (stack from `base` to the top) into ctx->resp.
 * Returns false when it returned nothing (the request goes on); answers 500 for
 * values that make no response.
 */
/* Is the value at idx what file() returned? */
static bool is_file(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return false;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_file_meta);
    bool yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

/* Answer with the docroot's file that file() at idx names, as a GET for it would be
 * answered (ETag, 304, Range, MIME, a listing, 404), with its headers added. A
 * handler of another method gets the file too: static files answer only GET and
 * HEAD, so they are asked with GET, conditional headers kept. */
static void serve_file(struct lh_lua *lua, struct lh_ctx *ctx, int idx)
{
    lua_State *L = lua->L;
    struct lh_response *resp = ctx->resp;
    lua_getfield(L, idx, "path");
    size_t len;
    const char *p = lua_tolstring(L, -1, &len);
    /* relative to the docroot: "a.txt" is "/a.txt"; never percent-decoded */
    char *abs = lua_newuserdatauv(L, 2 * len + 4, 0), *out = abs + len + 1;
    size_t alen = len;
    if (len > 0 && p[0] == '/')
        memcpy(abs, p, len);
    else {
        abs[0] = '/';
        memcpy(abs + 1, p, len);
        alen++;
    }
    int st = lh_path_resolve(abs, alen, out, len + 3);
    if (st != 0) {
        lh_response_error(resp, st);
        return;
    }
    struct lh_request get = *ctx->req;
    if (!(get.method_len == 4 && memcmp(get.method, "HEAD", 4) == 0)) {
        get.method = "GET";
        get.method_len = 3;
    }
    if (!lh_static_serve(ctx->st, ctx->fcache, out, NULL, 0, &get, resp))
        lh_static_not_found(ctx->st, ctx->fcache, resp);
    lua_getfield(L, idx, "headers");
    if (!add_headers(lua, ctx, lua_gettop(L), resp))
        lh_response_error(resp, 500);
}

/* A route that answers JSON (a table, or a JSON Content-Type of its own; `maybe`:
 * the body was a table or the handler gave headers) is noted: its built-in errors (a
 * 500, req:json()'s 400, a 405 of its path) are JSON from then on, even for a client
 * that does not say it wants JSON (front.c). */
static void note_json_route(struct lh_lua *lua, struct lh_ctx *ctx, bool maybe)
{
    const char *type = maybe ? lh_response_get(ctx->resp, "Content-Type") : NULL;
    if (!type || !lh_front_is_json_type(type, strlen(type)) ||
        (size_t)ctx->what_route >= lua->nroute_json)
        return;
    lua->route_json[ctx->what_route] = true;
    lua->any_route_json = true;
    ctx->json_route = true;
}

static bool take_response(struct lh_lua *lua, int base, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    int n = lua_gettop(L) - base;
    if (n == 0 || (lua_isnil(L, base + 1) && n == 1))
        return false;
    struct lh_response *resp = ctx->resp;
    int status = 200, body = base + 1;
    if (lua_type(L, base + 1) == LUA_TNUMBER) {
        lua_Integer s;
        if (!lua_isinteger(L, base + 1) || (s = lua_tointeger(L, base + 1)) < 200 || s > 599) {
            lh_log_error("error", "lua: status must be an integer from 200 to 599");
            lh_response_error(resp, 500);
            return true;
        }
        status = (int)s;
        body = base + 2;
    }
    int headers = body + 1;
    lua_settop(L, base + 3 > headers ? base + 3 : headers);
    if (lua_istable(L, body) && is_file(L, body)) {
        serve_file(lua, ctx, body);
        return true;
    }
    if (lua_touserdata(L, body) == &lh_resp_builtin_error) { /* proxy()'s 502 and 504 */
        lh_response_error(resp, status);
        return true;
    }
    bool prefilled = lua_touserdata(L, headers) == &lh_resp_prefilled && resp->status == status;
    if (!prefilled)
        lh_response_init(resp, status);
    resp->known_length = ctx->head_length; /* proxy(): a HEAD's length, as the backend said */
    ctx->head_length = -1;
    const char *ctype = NULL;
    size_t len = 0;
    const char *text = NULL;
    bool table = false;
    if (lua_type(L, body) == LUA_TSTRING) {
        text = lua_tolstring(L, body, &len);
        ctype = "text/html; charset=utf-8";
    } else if (lua_istable(L, body)) {
        /* lua-cjson's text is json.encode's unless it holds an empty table, which may
         * be a marked array: only then json.encode itself, a call deeper */
        int rc = encode(lua, body, lua->cjson_encode_ref);
        if (rc == LUA_OK) {
            text = lua_tolstring(L, -1, &len);
            if (!lh_json_plain(text, len)) {
                lua_pop(L, 1);
                rc = encode(lua, body, lua->encode_ref);
            }
        }
        if (rc != LUA_OK) {
            char what[160], msg[LH_LOG_MSG_MAX];
            size_t elen;
            const char *err = lua_tolstring(L, -1, &elen); /* a Lua string: by length */
            lh_log_error("error", "lua: %s: the returned table is not JSON: %s",
                         lh_call_describe(ctx, what, sizeof what),
                         lh_log_str(msg, sizeof msg, err, elen));
            lh_response_error(resp, 500);
            return true;
        }
        lua_replace(L, body);
        text = lua_tolstring(L, body, &len);
        ctype = "application/json";
        table = true;
    } else if (lua_type(L, body) == LUA_TFUNCTION) {
        /* streamed: called after the head is out (lh_lua_stream_next), as the handler
         * that returned it, which the error log names */
        lh_response_stream(resp);
        resp->known_length = lh_http_stream_length(L, body);
        ctype = "text/html; charset=utf-8";
        lua_pushvalue(L, body);
        luaL_unref(L, LUA_REGISTRYINDEX, ctx->stream_ref);
        ctx->stream_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        ctx->stream_kind = ctx->what_kind;
        ctx->stream_method = ctx->what_method;
        ctx->stream_pattern = ctx->what_pattern;
        ctx->stream_index = ctx->what_index;
    } else if (!lua_isnil(L, body)) {
        lh_log_error("error", "lua: a body must be a string, a table, a function or nil, "
                     "got %s", luaL_typename(L, body));
        lh_response_error(resp, 500);
        return true;
    }
    if (ctype && !prefilled)
        lh_response_header(resp, "Content-Type", ctype);
    if (!prefilled && !add_headers(lua, ctx, headers, resp)) {
        lh_response_error(resp, 500);
        return true;
    }
    if (ctx->what_route && !lh_route_answers_json(lua, ctx->what_route))
        note_json_route(lua, ctx, table || !lua_isnil(L, headers));
    if (text) {
        char *copy = malloc(len ? len : 1);
        if (!copy) {
            lh_response_error(resp, 500);
            return true;
        }
        memcpy(copy, text, len);
        lh_response_body(resp, copy, len, copy);
    }
    return true;
}

void lh_resp_answer_failure(struct lh_ctx *ctx, enum lh_call_result r)
{
    /* a built-in error: lh_front_dress gives it its body (JSON, the --dev page, ...) */
    lh_response_error(ctx->resp, r == LH_CALL_TIMEOUT ? 503 : r == LH_CALL_BAD_JSON ? 400 : 500);
}

enum lh_step lh_resp_run_handler(struct lh_lua *lua, struct lh_ctx *ctx, int nargs)
{
    lua_State *L = lua->L;
    int base = lua_gettop(L) - (ctx->co_ref == LUA_NOREF ? nargs + 1 : 0);
    int nres = 0;
    enum lh_call_result r = lh_call_run_slice(lua, ctx, nargs, &nres);
    if (r == LH_CALL_YIELD)
        return LH_SUSPENDED;
    if (r != LH_CALL_OK) {
        lh_resp_answer_failure(ctx, r);
        return LH_ANSWERED;
    }
    bool answered = take_response(lua, base, ctx);
    lua_settop(L, base);
    return answered ? LH_ANSWERED : LH_DECLINED;
}

/* ---- a streamed body ------------------------------------------------------------------ */

/* The function runs as the handler that returned it did: in a coroutine of its own
 * per call (lh_call_run_slice), paused after a slice, its errors logged under that
 * handler's name, its run time added to the handler's (the after hooks' allowance is
 * theirs alone). The connection calls it only once the last piece is out (send.c). */

enum lh_stream_result lh_lua_stream_next(struct lh_lua *lua, struct lh_ctx *ctx,
                                         lh_stream_sink sink, void *arg)
{
    lua_State *L = lua->L;
    if (!ctx->stream_started) { /* from the after hooks back to the handler's account */
        ctx->stream_started = true;
        ctx->in_after = false;
        ctx->lua_ns = ctx->handler_ns;
        ctx->charge_wait = false;
        ctx->what_kind = ctx->stream_kind;
        ctx->what_method = ctx->stream_method;
        ctx->what_pattern = ctx->stream_pattern;
        ctx->what_index = ctx->stream_index;
    }
    int base = lua_gettop(L);
    if (ctx->co_ref == LUA_NOREF)
        lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->stream_ref); /* a new call */
    int nres = 0;
    enum lh_call_result r = lh_call_run_slice(lua, ctx, 0, &nres);
    if (r == LH_CALL_YIELD)
        return LH_STREAM_PAUSED;
    if (r != LH_CALL_OK)
        return LH_STREAM_FAILED; /* logged */
    enum lh_stream_result res = LH_STREAM_END;
    int t = nres > 0 ? lua_type(L, base + 1) : LUA_TNIL;
    if (t == LUA_TSTRING) {
        size_t len;
        const char *piece = lua_tolstring(L, base + 1, &len);
        sink(arg, piece, len); /* while the string is on the stack */
        res = LH_STREAM_PIECE;
    } else if (t != LUA_TNIL) {
        char what[160];
        lh_log_error("error", "lua: %s: a streamed body's function must return a string "
                     "or nil, got %s: the stream is cut",
                     lh_call_describe(ctx, what, sizeof what), lua_typename(L, t));
        res = LH_STREAM_FAILED;
    }
    lua_settop(L, base);
    return res;
}

/* ---- the after hooks' res ------------------------------------------------------------- */

static const char key_headers_meta; /* registry: the metatable of res.headers */

/* Push the key of table t that equals name without regard to case; false (nothing
 * pushed) when there is none. */
static bool find_name(lua_State *L, int t, const char *name, size_t len)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        size_t n;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -1, &n);
            if (n == len && strncasecmp(k, name, n) == 0)
                return true;
        }
    }
    return false;
}

/* res.headers[k] for a k not there as spelt: the entry whose name differs only in
 * case (res.headers["content-type"] reads "Content-Type"). */
static int headers_index(lua_State *L)
{
    size_t len;
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (name && find_name(L, 1, name, len))
        lua_rawget(L, 1);
    else
        lua_pushnil(L);
    return 1;
}

/* res.headers[k] = v for a k not there as spelt: replaces (or with nil removes) an
 * entry whose name differs only in case, instead of adding a second one. */
static int headers_newindex(lua_State *L)
{
    size_t len;
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (name && find_name(L, 1, name, len)) {
        lua_pushnil(L);
        lua_rawset(L, 1);
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

/* The first header of resp with header i's name (i itself when none before it). */
static uint32_t first_with_name(const struct lh_response *resp, uint32_t i)
{
    const struct lh_resp_header *h = lh_response_at(resp, i);
    for (uint32_t j = 0; j < i; j++)
        if (lh_response_at(resp, j)->name_len == h->name_len &&
            strcasecmp(lh_response_name(resp, j), lh_response_name(resp, i)) == 0)
            return j;
    return i;
}

/* An after hook's res: { status = ..., headers = { name = value, ... } }, a header
 * sent more than once as an array of its values (so that a hook can append one),
 * names matched without regard to case. */
void lh_resp_push_res(lua_State *L, const struct lh_response *resp)
{
    static const luaL_Reg meta[] = {
        {"__index", headers_index}, {"__newindex", headers_newindex}, {NULL, NULL}};
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, resp->status);
    lua_setfield(L, -2, "status");
    lua_createtable(L, 0, (int)resp->nheaders + 4); /* room for a hook's additions */
    int t = lua_gettop(L);
    for (uint32_t i = 0; i < resp->nheaders; i++) {
        uint32_t first = first_with_name(resp, i);
        lua_pushlstring(L, lh_response_name(resp, first), lh_response_at(resp, first)->name_len);
        lua_pushlstring(L, lh_response_value(resp, i), lh_response_at(resp, i)->value_len);
        if (first != i) { /* a repeated header: { earlier values..., this one } */
            lua_pushvalue(L, -2);
            if (lua_rawget(L, t) != LUA_TTABLE) {
                lua_createtable(L, 2, 0);
                lua_insert(L, -2);
                lua_rawseti(L, -2, 1);
            }
            lua_insert(L, -2);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
        lua_rawset(L, t);
    }
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_headers_meta) == LUA_TNIL) {
        lua_pop(L, 1);
        luaL_newlib(L, meta);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_headers_meta);
    }
    lua_setmetatable(L, t);
    lua_setfield(L, -2, "headers");
}

bool lh_resp_apply_res(struct lh_lua *lua, const struct lh_ctx *ctx, int idx,
                       struct lh_response *resp)
{
    lua_State *L = lua->L;
    lua_getfield(L, idx, "headers");
    bool ok = lua_istable(L, -1);
    if (ok) {
        lh_response_clear_headers(resp);
        ok = add_headers(lua, ctx, lua_gettop(L), resp);
    } else {
        char what[160];
        lh_log_error("error", "lua: %s: res.headers must be a table, got %s: answering 500",
                     lh_call_describe(ctx, what, sizeof what), luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return ok;
}

/* ---- helpers that build a return value ---------------------------------------------- */

/* file(path [, headers]): returned by a handler, the docroot's file at path (relative
 * to the docroot) is the answer, with every rule of static files. */
static int api_file(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "path");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "headers");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_file_meta);
    lua_setmetatable(L, -2);
    return 1;
}

/* redirect(url [, status [, headers]]) -> status (302 unless given, a 3xx), nil,
 * headers with Location: url (a copy of the table given, if any). */
static int api_redirect(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_Integer status = luaL_optinteger(L, 2, 302);
    luaL_argcheck(L, status >= 300 && status <= 399, 2, "a redirect's status is 3xx");
    bool extra = !lua_isnoneornil(L, 3);
    if (extra)
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushinteger(L, status);
    lua_pushnil(L);
    lua_newtable(L);
    if (extra)
        for (lua_pushnil(L); lua_next(L, 3);) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "Location");
    return 3;
}

void lh_resp_install_helpers(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, "file");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_file_meta);
    lua_register(L, "file", api_file);
    lua_register(L, "redirect", api_redirect);
}
