/* lua_sandbox.c - the standard libraries as handlers get them: guarded. See lua_int.h.
 *
 * What could block the worker, end the process or undo the time limit is replaced by
 * a guard: a closure with upvalues (the original, its name, why it is guarded) that
 * raises an error naming both and unsafe_libs. With unsafe_libs = true the guards
 * are swapped back for the originals once config.lua has loaded; while it loads, a
 * guard asks the global unsafe_libs, so that the file can use what it allowed. */
#include "lua_int.h"

#include <lauxlib.h>
#include <lua.h>

#include <string.h>

static const char key_stdin; /* registry: io.stdin, kept for unsafe_libs */

/* Does the state let handlers have the guarded functions now? */
static bool unsafe_now(lua_State *L)
{
    struct lh_lua *lua = lh_host_of(L);
    if (lua->unsafe || !lua->loading)
        return lua->unsafe;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushliteral(L, "unsafe_libs");
    bool yes = lua_rawget(L, -2) == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 2);
    return yes;
}

static int refuse(lua_State *L)
{
    return luaL_error(L, "%s is not available to luahttpd handlers: %s "
                         "(unsafe_libs = true in config.lua allows it)",
                      lua_tostring(L, lua_upvalueindex(2)), lua_tostring(L, lua_upvalueindex(3)));
}

/* Call the original with this call's arguments (only while config.lua loads). */
static int call_original(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int guard(lua_State *L)
{
    return unsafe_now(L) ? call_original(L) : refuse(L);
}

/* io.lines() and io.input() without a file name read stdin; with one they are safe. */
static int guard_stdin(lua_State *L)
{
    return lua_isnoneornil(L, 1) && !unsafe_now(L) ? refuse(L) : call_original(L);
}

/* load, loadfile, dofile: text chunks only. A binary chunk is not checked by the Lua
 * VM: a crafted one can crash the process. */
static int text_load(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    if (lua_type(L, 1) == LUA_TSTRING && lua_tostring(L, 1)[0] == LUA_SIGNATURE[0])
        return refuse(L);
    lua_settop(L, 4);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    int n = call_original(L);
    if (lua_isnil(L, 1) && lua_type(L, 2) == LUA_TSTRING &&
        strstr(lua_tostring(L, 2), "binary chunk"))
        return refuse(L); /* a reader function gave a binary chunk */
    return n;
}

static int text_loadfile(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 2);
    return call_original(L);
}

static int dofile_cont(lua_State *L, int status, lua_KContext k)
{
    return lua_gettop(L) - 1;
}

/* dofile(name) as Lua's own, but text only, and yieldable like it. */
static int text_dofile(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    const char *name = luaL_optstring(L, 1, NULL);
    if (!name)
        return refuse(L); /* dofile() reads stdin */
    lua_settop(L, 1);
    if (luaL_loadfilex(L, name, "t") != LUA_OK)
        return lua_error(L);
    lua_callk(L, 0, LUA_MULTRET, 0, dofile_cont);
    return dofile_cont(L, LUA_OK, 0);
}

static const lua_CFunction guards[] = {guard, guard_stdin, text_load, text_loadfile,
                                       text_dofile};

static bool is_guard(lua_CFunction f)
{
    for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++)
        if (f == guards[i])
            return true;
    return false;
}

/* Replace field `name` of the table at index t with fn guarding it. */
static void guard_field(lua_State *L, int t, const char *lib, const char *name,
                        lua_CFunction fn, const char *why)
{
    if (lua_getfield(L, t, name) == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (lib)
        lua_pushfstring(L, "%s.%s", lib, name);
    else
        lua_pushstring(L, name);
    lua_pushstring(L, why);
    lua_pushcclosure(L, fn, 3);
    lua_setfield(L, t, name);
}

/* Push library lib of the globals at g; its absolute index. */
static int push_lib(lua_State *L, int g, const char *lib)
{
    lua_getfield(L, g, lib);
    return lua_gettop(L);
}

void lh_sandbox_guard_libs(lua_State *L)
{
    static const char blocks[] = "it blocks every client of the worker while the command runs",
                      ends[] = "it would end the server",
                      stdin_[] = "it reads the server's standard input",
                      binary[] = "binary chunks are not checked by Lua and can crash the server",
                      hooks[] = "it can switch off the handler time limit and reach into "
                                "other code's variables";
    lua_pushglobaltable(L);
    int g = lua_gettop(L), t;
    guard_field(L, g, NULL, "load", text_load, binary);
    guard_field(L, g, NULL, "loadfile", text_loadfile, binary);
    guard_field(L, g, NULL, "dofile", text_dofile, stdin_);
    t = push_lib(L, g, "os");
    guard_field(L, t, "os", "exit", guard, ends);
    guard_field(L, t, "os", "execute", guard, blocks);
    t = push_lib(L, g, "io");
    guard_field(L, t, "io", "popen", guard, blocks);
    guard_field(L, t, "io", "read", guard, stdin_);
    guard_field(L, t, "io", "lines", guard_stdin, stdin_);
    guard_field(L, t, "io", "input", guard_stdin, stdin_);
    lua_getfield(L, t, "stdin"); /* kept for unsafe_libs */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_stdin);
    lua_pushnil(L);
    lua_setfield(L, t, "stdin");
    t = push_lib(L, g, "string");
    guard_field(L, t, "string", "dump", guard, binary);
    t = push_lib(L, g, "debug");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "traceback") != 0)
            guard_field(L, t, "debug", lua_tostring(L, -1), guard, hooks);
    }
    lua_settop(L, g - 1);
}

/* unsafe_libs: every guard in the table on top gives way to its original. */
static void unguard_table(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && is_guard(lua_tocfunction(L, -1))) {
            lua_getupvalue(L, -1, 1);
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, -5); /* replacing an existing key keeps lua_next valid */
        }
        lua_pop(L, 1);
    }
}

void lh_sandbox_unguard_libs(lua_State *L)
{
    static const char *const libs[] = {"os", "io", "string", "debug"};
    lua_pushglobaltable(L);
    unguard_table(L);
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        if (lua_getfield(L, -1, libs[i]) == LUA_TTABLE)
            unguard_table(L);
        lua_pop(L, 1);
    }
    if (lua_getfield(L, -1, "io") == LUA_TTABLE) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_stdin);
        lua_setfield(L, -2, "stdin");
    }
    lua_pop(L, 2);
}
