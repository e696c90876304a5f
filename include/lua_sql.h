/* lua_sql.h - `sql` in Lua: SQLite databases for handlers (contract section 10). */
#ifndef LH_LUA_SQL_H
#define LH_LUA_SQL_H

#include <lua.h>

/*
 * Put the table `sql` in L's globals. base_dir is the folder a relative path given to
 * sql.open is resolved against (the config file's folder; copied). over_time(L) is
 * asked while a statement runs: nonzero when the Lua code running in L has used up
 * its time, and the statement is then interrupted with a Lua error (NULL: never).
 * Raises on a memory error: call it protected.
 */
void lh_sql_install(lua_State *L, const char *base_dir, int (*over_time)(lua_State *L));

#endif
