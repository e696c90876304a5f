/* lua_json.c - the json module: lua-cjson does the encoding and decoding; this file
 * only keeps track of which tables are arrays, so that [] survives a round trip.
 *
 * cjson encodes an empty table as {} and decodes [] and {} alike. So:
 * - encode: if the value holds an empty table marked as an array, encode a copy in
 *   which each such table is a placeholder string, then put [] where the quoted
 *   placeholder stands in the output;
 * - decode: replace each empty array in the text (outside strings) by the quoted
 *   placeholder, decode, then turn placeholders into fresh marked tables and mark
 *   every table cjson made from a non-empty array (those have integer keys only).
 * The placeholder carries a random token made once per process, so user data cannot
 * produce it by accident. */
#include "lua_json.h"

#include <lauxlib.h>

#include <stdlib.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int luaopen_cjson(lua_State *L);

#define UP_ENCODE lua_upvalueindex(1)
#define UP_DECODE lua_upvalueindex(2)
#define UP_ARRAY_MT lua_upvalueindex(3)
#define UP_TOKEN lua_upvalueindex(4)   /* the raw placeholder string */
#define UP_ENCODED lua_upvalueindex(5) /* how cjson writes it inside quotes */
#define MAX_DEPTH 1000

/* ---- encode ------------------------------------------------------------------------- */

static bool is_empty_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
        return false;
    bool marked = lua_rawequal(L, -1, UP_ARRAY_MT);
    lua_pop(L, 1);
    if (!marked)
        return false;
    lua_pushnil(L);
    if (lua_next(L, idx)) {
        lua_pop(L, 2);
        return false;
    }
    return true;
}

/* Does the table at idx hold an empty marked array anywhere (itself included)? */
static bool needs_copy(lua_State *L, int idx, int depth)
{
    if (!lua_istable(L, idx) || depth > MAX_DEPTH)
        return false;
    if (is_empty_array(L, idx))
        return true;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (needs_copy(L, -1, depth + 1)) {
            lua_pop(L, 2);
            return true;
        }
        lua_pop(L, 1);
    }
    return false;
}

/* Push a copy of the value at idx with empty marked arrays as the placeholder. */
static void copy_marked(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx) || depth > MAX_DEPTH) {
        lua_pushvalue(L, idx); /* cjson reports depth and type errors itself */
        return;
    }
    if (is_empty_array(L, idx)) {
        lua_pushvalue(L, UP_TOKEN);
        return;
    }
    luaL_checkstack(L, 6, "json.encode: nested too deeply");
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        copy_marked(L, -2, depth + 1);
        lua_rawset(L, -5);
        lua_pop(L, 1);
    }
}

bool lh_json_plain(const char *text, size_t len)
{
    return !memmem(text, len, "{}", 2);
}

void lh_json_push_cjson_encode(lua_State *L, int idx)
{
    lua_getfield(L, idx, "encode");
    lua_getupvalue(L, -1, 1); /* UP_ENCODE of json_encode */
    lua_remove(L, -2);
}

static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    /* cjson writes every empty table as {}: an output without one holds no empty
     * marked array, and the value need not be walked (the common case) */
    lua_pushvalue(L, UP_ENCODE);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    size_t olen, elen;
    const char *out = lua_tolstring(L, -1, &olen);
    if (lh_json_plain(out, olen) || !needs_copy(L, 1, 0))
        return 1;
    lua_settop(L, 1);
    lua_pushvalue(L, UP_ENCODE);
    copy_marked(L, 1, 0);
    lua_call(L, 1, 1);
    /* the placeholder stands in the output as "ENCODED": put [] there */
    out = lua_tolstring(L, -1, &olen);
    const char *enc = lua_tolstring(L, UP_ENCODED, &elen);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *p = out, *end = out + olen;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), enc, elen);
        if (!hit || hit == out || hit + elen >= end) {
            luaL_addlstring(&b, p, (size_t)(end - p));
            break;
        }
        luaL_addlstring(&b, p, (size_t)(hit - 1 - p)); /* up to the opening quote */
        luaL_addlstring(&b, "[]", 2);
        p = hit + elen + 1; /* past the closing quote */
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- decode ------------------------------------------------------------------------- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Push s with every empty array outside strings replaced by the quoted placeholder;
 * returns false (nothing pushed) when s has none. */
static bool mark_empty_arrays(lua_State *L, const char *s, size_t len)
{
    size_t tlen;
    const char *token = lua_tolstring(L, UP_ENCODED, &tlen);
    luaL_Buffer b;
    bool found = false, in_string = false;
    size_t copied = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (c != '[')
            continue;
        size_t j = i + 1;
        while (j < len && is_ws(s[j]))
            j++;
        if (j >= len || s[j] != ']')
            continue;
        if (!found) {
            luaL_buffinit(L, &b);
            found = true;
        }
        luaL_addlstring(&b, s + copied, i - copied);
        luaL_addchar(&b, '"');
        luaL_addlstring(&b, token, tlen);
        luaL_addchar(&b, '"');
        copied = j + 1;
        i = j;
    }
    if (!found)
        return false;
    luaL_addlstring(&b, s + copied, len - copied);
    luaL_pushresult(&b);
    return true;
}

/* Mark arrays in the decoded value at idx; returns the value to use in its place
 * pushed on the stack (a fresh marked table for a placeholder). */
static void mark_arrays(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING && lua_rawequal(L, idx, UP_TOKEN)) {
        lua_newtable(L);
        lua_pushvalue(L, UP_ARRAY_MT);
        lua_setmetatable(L, -2);
        return;
    }
    if (!lua_istable(L, idx) || depth > MAX_DEPTH) {
        lua_pushvalue(L, idx);
        return;
    }
    luaL_checkstack(L, 6, "json.decode: nested too deeply");
    bool array = true, any = false;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        any = true;
        if (!lua_isinteger(L, -2))
            array = false;
        mark_arrays(L, -1, depth + 1);
        if (!lua_rawequal(L, -1, -2)) {
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, idx); /* replacing an existing key's value is allowed in next */
        } else {
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    if (array && any) {
        lua_pushvalue(L, UP_ARRAY_MT);
        lua_setmetatable(L, idx);
    }
    lua_pushvalue(L, idx);
}

static int json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    lua_pushvalue(L, UP_DECODE);
    if (!mark_empty_arrays(L, s, len))
        lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        return luaL_error(L, "json.decode: %s", msg ? msg : "invalid JSON");
    }
    mark_arrays(L, -1, 0);
    return 1;
}

static int json_array(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushvalue(L, UP_ARRAY_MT);
    lua_setmetatable(L, 1);
    return 1;
}

/* A per-process random token: 16 hex digits between control characters, which cjson
 * escapes, so ordinary text never looks like it. */
static void push_token(lua_State *L)
{
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        unsigned long x = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16) ^
                          (unsigned long)(size_t)&r;
        memcpy(r, &x, sizeof r < sizeof x ? sizeof r : sizeof x);
    }
    char tok[40];
    snprintf(tok, sizeof tok, "\x01lh-empty-array-%02x%02x%02x%02x%02x%02x%02x%02x\x01", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    lua_pushstring(L, tok);
}

int lh_luaopen_json(lua_State *L)
{
    luaL_requiref(L, "cjson", luaopen_cjson, 0);
    int cjson = lua_gettop(L);
    lua_getfield(L, cjson, "new"); /* a private instance: settings stay ours */
    if (lua_isfunction(L, -1)) {
        lua_call(L, 0, 1);
        lua_replace(L, cjson);
    } else {
        lua_pop(L, 1);
    }
    lua_newtable(L); /* json */
    int json = lua_gettop(L);
    lua_newtable(L); /* array_mt */
    int mt = lua_gettop(L);
    lua_pushliteral(L, "json.array");
    lua_setfield(L, mt, "__name");

    push_token(L);
    int raw = lua_gettop(L);
    lua_getfield(L, cjson, "encode");
    lua_pushvalue(L, raw);
    lua_call(L, 1, 1); /* cjson escapes the control bytes: "\u0001lh-...\u0001" */
    size_t qlen;
    const char *quoted = lua_tolstring(L, -1, &qlen);
    lua_pushlstring(L, quoted + 1, qlen - 2);
    lua_remove(L, -2);
    int encoded = lua_gettop(L);

    static const struct {
        const char *name;
        lua_CFunction fn;
    } fns[] = {{"encode", json_encode}, {"decode", json_decode}, {"array", json_array}};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        lua_getfield(L, cjson, "encode");
        lua_getfield(L, cjson, "decode");
        lua_pushvalue(L, mt);
        lua_pushvalue(L, raw);
        lua_pushvalue(L, encoded);
        lua_pushcclosure(L, fns[i].fn, 5);
        lua_setfield(L, json, fns[i].name);
    }
    lua_settop(L, mt);

    lua_getfield(L, cjson, "null");
    lua_setfield(L, json, "null");
    lua_pushvalue(L, mt);
    lua_setfield(L, json, "array_mt");
    lua_newtable(L); /* empty_array: shared, so handlers should not add to it */
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);
    lua_setfield(L, json, "empty_array");
    lua_remove(L, mt);
    lua_remove(L, cjson);
    return 1;
}
