/* lua_shared.h - `shared` in Lua: the shared store (store.h) seen by every worker
 * (contract section 9). */
#ifndef LH_LUA_SHARED_H
#define LH_LUA_SHARED_H

#include <lua.h>

struct lh_shm;

/* The region whose arena holds the store, for this process's Lua states (a worker
 * sets it once after fork; the arena was laid out by lh_store_init in the master).
 * NULL, the start: every call raises "shared: ... not available". */
void lh_shared_attach(struct lh_shm *shm);

/* Put the table `shared` in L's globals. json_idx: the json table (lua_json.h), whose
 * array_mt a stored table keeps. Raises on a memory error: call it protected. */
void lh_shared_install(lua_State *L, int json_idx);

#endif
