/* lua_json.h - the `json` module handlers see: lua-cjson, with arrays that stay arrays. */
#ifndef LH_LUA_JSON_H
#define LH_LUA_JSON_H

#include <lua.h>

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

#endif
