/* lua_sandbox.c - the standard libraries as handlers get them: guarded. See lua_int.h.
 *
 * What could block the worker, end the process or undo the time limit is replaced by
 * a guard: a closure with upvalues (the original, its name, why it is guarded) that
 * raises an error naming both and unsafe_libs. With unsafe_libs = true the guards
 * are swapped back for the originals once config.lua has loaded; while it loads, a
 * guard asks the global unsafe_libs, so that the file can use what it allowed.
 *
 * Binary chunks and native code are kept out everywhere Lua loads them: load,
 * loadfile, dofile, require (the Lua searcher is replaced by one that loads text
 * only; the C searchers refuse a library they find) and package.loadlib. */
#include "lua_int.h"

#include <lauxlib.h>
#include <lua.h>

#include <string.h>

static const char key_stdin; /* registry: io.stdin, kept for unsafe_libs */
/* registry: package.searchpath as Lua made it, which our searchers use whatever a
 * handler does to the field */
static const char key_searchpath;

/* Why: the last part of the refusal. */
static const char BLOCKS[] = "it blocks every client of the worker while the command runs",
                  ENDS[] = "it would end the server",
                  STDIN[] = "it reads the server's standard input",
                  BINARY[] = "binary chunks are not checked by Lua and can crash the server",
                  NATIVE[] = "native code runs outside every limit the server sets and can "
                             "crash it",
                  HOOKS[] = "it can switch off the handler time limit and reach into "
                            "other code's variables";

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

static int refuse_as(lua_State *L, const char *what, const char *why)
{
    return luaL_error(L, "%s is not available to luahttpd handlers: %s "
                         "(unsafe_libs = true in config.lua allows it)",
                      what, why);
}

/* A guard's refusal: its name and reason are upvalues 2 and 3. */
static int refuse(lua_State *L)
{
    return refuse_as(L, lua_tostring(L, lua_upvalueindex(2)),
                     lua_tostring(L, lua_upvalueindex(3)));
}

/* Is msg what lua_load says when mode "t" meets a binary chunk? */
static bool is_binary_refusal(const char *msg)
{
    static const char said[] = "attempt to load a binary chunk";
    return msg && strncmp(msg, said, sizeof said - 1) == 0;
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
    if (lua_isnil(L, 1) && is_binary_refusal(lua_tostring(L, 2)))
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
    int n = call_original(L);
    if (lua_isnil(L, 1) && is_binary_refusal(lua_tostring(L, 2)))
        return refuse(L); /* Lua's own message would not say how to allow it */
    return n;
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
        return is_binary_refusal(lua_tostring(L, -1)) ? refuse_as(L, "dofile", BINARY)
                                                       : lua_error(L);
    lua_callk(L, 0, LUA_MULTRET, 0, dofile_cont);
    return dofile_cont(L, LUA_OK, 0);
}

/* ---- require ---- */

/* The searchers below stand in for Lua's package.searchers[2..4]; the original is
 * each one's upvalue 1, called with unsafe_libs. */

/* Push the file package.searchpath finds for name on package[field] ("path" or
 * "cpath", read from the table Lua's own searchers read: the original's upvalue 1)
 * and return it; or push Lua's "no file ..." list, which require adds to its "module
 * not found", and return NULL. */
static const char *find_module(lua_State *L, const char *name, const char *field)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_searchpath);
    lua_pushstring(L, name);
    lua_getupvalue(L, lua_upvalueindex(1), 1);
    if (lua_getfield(L, -1, field) != LUA_TSTRING)
        luaL_error(L, "'package.%s' must be a string", field);
    lua_remove(L, -2);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) {
        lua_remove(L, -2);
        return NULL;
    }
    lua_pop(L, 1);
    return lua_tostring(L, -1);
}

/* package.searchers[2]: Lua's own, but a module file holding a binary chunk is
 * refused (Lua's loads one without asking). */
static int text_searcher(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    const char *name = luaL_checkstring(L, 1);
    const char *file = find_module(L, name, "path");
    if (!file)
        return 1;
    if (luaL_loadfilex(L, file, "t") == LUA_OK) {
        lua_pushstring(L, file); /* the module's second argument, as with Lua's */
        return 2;
    }
    if (is_binary_refusal(lua_tostring(L, -1)))
        return refuse_as(L, lua_pushfstring(L, "require(\"%s\")", name),
                         lua_pushfstring(L, "%s is a binary chunk, and %s", file, BINARY));
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                      lua_tostring(L, -1));
}

/* Refuse require(name) if lib is on package.cpath; else push Lua's "no file" list. */
static int refuse_c_library(lua_State *L, const char *name, const char *lib)
{
    const char *file = find_module(L, lib, "cpath");
    if (!file)
        return 1;
    return refuse_as(L, lua_pushfstring(L, "require(\"%s\")", name),
                     lua_pushfstring(L, "%s is a C library, and %s", file, NATIVE));
}

/* package.searchers[3]: a C library named after the module. Nothing is opened: even
 * dlopen runs the library's own code. */
static int c_searcher(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    const char *name = luaL_checkstring(L, 1);
    return refuse_c_library(L, name, name);
}

/* package.searchers[4]: for "a.b", a C library named after the root, "a". */
static int c_root_searcher(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    const char *name = luaL_checkstring(L, 1);
    const char *dot = strchr(name, '.');
    if (!dot)
        return 0; /* as Lua's: a root is searcher 3's */
    lua_pushlstring(L, name, (size_t)(dot - name));
    return refuse_c_library(L, name, lua_tostring(L, -1));
}

/* ---- installing ---- */

static const lua_CFunction guards[] = {guard,       guard_stdin,   text_load,
                                       text_loadfile, text_dofile, text_searcher,
                                       c_searcher,  c_root_searcher};

static bool is_guard(lua_CFunction f)
{
    for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++)
        if (f == guards[i])
            return true;
    return false;
}

/* Replace the original and its name on top with fn guarding it. */
static void guard_top(lua_State *L, lua_CFunction fn, const char *why)
{
    lua_pushstring(L, why);
    lua_pushcclosure(L, fn, 3);
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
    guard_top(L, fn, why);
    lua_setfield(L, t, name);
}

/* Replace package.searchers[i] (the table at index s) with fn guarding it. */
static void guard_searcher(lua_State *L, int s, lua_Integer i, lua_CFunction fn,
                           const char *why)
{
    if (lua_rawgeti(L, s, i) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return;
    }
    lua_pushfstring(L, "package.searchers[%d]", (int)i);
    guard_top(L, fn, why);
    lua_rawseti(L, s, i);
}

/* Push library lib of the globals at g; its absolute index. */
static int push_lib(lua_State *L, int g, const char *lib)
{
    lua_getfield(L, g, lib);
    return lua_gettop(L);
}

void lh_sandbox_guard_libs(lua_State *L)
{
    lua_pushglobaltable(L);
    int g = lua_gettop(L), t;
    guard_field(L, g, NULL, "load", text_load, BINARY);
    guard_field(L, g, NULL, "loadfile", text_loadfile, BINARY);
    guard_field(L, g, NULL, "dofile", text_dofile, STDIN);
    t = push_lib(L, g, "os");
    guard_field(L, t, "os", "exit", guard, ENDS);
    guard_field(L, t, "os", "execute", guard, BLOCKS);
    t = push_lib(L, g, "io");
    guard_field(L, t, "io", "popen", guard, BLOCKS);
    guard_field(L, t, "io", "read", guard, STDIN);
    guard_field(L, t, "io", "lines", guard_stdin, STDIN);
    guard_field(L, t, "io", "input", guard_stdin, STDIN);
    lua_getfield(L, t, "stdin"); /* kept for unsafe_libs */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_stdin);
    lua_pushnil(L);
    lua_setfield(L, t, "stdin");
    t = push_lib(L, g, "string");
    guard_field(L, t, "string", "dump", guard, BINARY);
    t = push_lib(L, g, "package");
    guard_field(L, t, "package", "loadlib", guard, NATIVE);
    lua_getfield(L, t, "searchpath");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_searchpath);
    if (lua_getfield(L, t, "searchers") == LUA_TTABLE) {
        int s = lua_gettop(L);
        guard_searcher(L, s, 2, text_searcher, BINARY);
        guard_searcher(L, s, 3, c_searcher, NATIVE);
        guard_searcher(L, s, 4, c_root_searcher, NATIVE);
    }
    t = push_lib(L, g, "debug");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "traceback") != 0)
            guard_field(L, t, "debug", lua_tostring(L, -1), guard, HOOKS);
    }
    lua_settop(L, g - 1);
}

/* unsafe_libs: every guard in the table on top gives way to its original. */
static void unguard_table(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (is_guard(lua_tocfunction(L, -1))) {
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
    static const char *const libs[] = {"os", "io", "string", "package", "debug"};
    lua_pushglobaltable(L);
    unguard_table(L);
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        if (lua_getfield(L, -1, libs[i]) == LUA_TTABLE)
            unguard_table(L);
        lua_pop(L, 1);
    }
    int g = lua_gettop(L);
    if (lua_getfield(L, g, "package") == LUA_TTABLE &&
        lua_getfield(L, -1, "searchers") == LUA_TTABLE)
        unguard_table(L);
    lua_settop(L, g);
    if (lua_getfield(L, -1, "io") == LUA_TTABLE) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_stdin);
        lua_setfield(L, -2, "stdin");
    }
    lua_pop(L, 2);
}
