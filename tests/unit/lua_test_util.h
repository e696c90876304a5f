/* Helpers for unit tests that run Lua chunks: assert a chunk's result or its error. */
#ifndef LH_LUA_TEST_UTIL_H
#define LH_LUA_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <string.h>

/* Run chunk in L; it must return true. Leaves L's stack empty. */
static inline void check(lua_State *L, const char *chunk)
{
    if (luaL_dostring(L, chunk) != LUA_OK)
        fail_msg("%s\n-> error: %s", chunk, lua_tostring(L, -1));
    if (!lua_toboolean(L, -1))
        fail_msg("%s\n-> returned false", chunk);
    lua_settop(L, 0);
}

/* Run chunk in L; it must raise an error whose message contains want. Leaves L's
 * stack empty. */
static inline void check_error(lua_State *L, const char *chunk, const char *want)
{
    if (luaL_dostring(L, chunk) == LUA_OK)
        fail_msg("%s\n-> no error", chunk);
    const char *msg = lua_tostring(L, -1);
    if (!msg || !strstr(msg, want))
        fail_msg("%s\n-> error '%s' does not mention '%s'", chunk, msg ? msg : "?", want);
    lua_settop(L, 0);
}

#endif
