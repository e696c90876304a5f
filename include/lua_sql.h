/* lua_sql.h - `sql` in Lua: SQLite databases for handlers (contract section 10). */
#ifndef LH_LUA_SQL_H
#define LH_LUA_SQL_H

#include <lua.h>

#include <stdbool.h>

/* What the host tells the module; either function may be NULL. */
struct lh_sql_host {
    /* Nonzero when the Lua code running in L has used up its time: the statement that
     * runs then stops with a Lua error. NULL: never. */
    int (*over_time)(lua_State *L);
    /* Who runs in L now (the request), to tell transactions apart: a db:tx belongs to
     * whoever began it, and anyone else using that handle while it is open gets a Lua
     * error rather than a place inside it. NULL: one owner for all. */
    const void *(*owner)(lua_State *L);
};

/*
 * Put the table `sql` in L's globals. base_dir is the folder a relative path given to
 * sql.open is resolved against (the config file's folder; copied); host is copied
 * (NULL: no functions). Raises on a memory error: call it protected.
 */
void lh_sql_install(lua_State *L, const char *base_dir, const struct lh_sql_host *host);

/* Does owner (non-NULL, as host->owner gives it) have a db:tx open on a handle of this
 * process? The host does not pause such a handler between its time slices, so that no
 * other request meets the transaction. */
bool lh_sql_in_tx(const void *owner);

#endif
