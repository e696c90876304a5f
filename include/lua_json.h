/* lua_json.h - the `json` module handlers see: lua-cjson, with arrays that stay arrays. */
#ifndef LH_LUA_JSON_H
#define LH_LUA_JSON_H

#include <lua.h>

#include <stdbool.h>
#include <stddef.h>

/*
 * Push a new `json` table onto L's stack and return 1 (usable with luaL_requiref):
 *   json.encode(value) -> string        raises a Lua error for what JSON cannot hold
 *   json.decode(string) -> value        raises "json.decode: <reason>" on bad JSON
 *   json.null                           the value JSON null decodes to (cjson.null)
 *   json.empty_array                    a value that encodes as []
 *   json.array(t) -> t                  marks t as an array: encodes as [] when empty
 *   json.array_mt                       the metatable of marked arrays
 * Arrays that json.decode returns are marked, so a decoded [] re-encodes as [], not {}
 * (the well-known lua-cjson complaint, openresty/lua-cjson#34 and #70).
 * Encoding and decoding are done by lua-cjson; this module only adds the markers.
 */
int lh_luaopen_json(lua_State *L);

/*
 * For the host, which encodes every table a handler returns: push lua-cjson's encoder,
 * which the `json` table at idx (made by lh_luaopen_json) is built on. Its text for a
 * value is json.encode's too when lh_json_plain says so; otherwise call json.encode.
 */
void lh_json_push_cjson_encode(lua_State *L, int idx);

/* Is this text from lua-cjson's encoder (len bytes) what json.encode gives for the same
 * value? It is unless it holds "{}", an empty table, which may be a marked array. */
bool lh_json_plain(const char *text, size_t len);

#endif
