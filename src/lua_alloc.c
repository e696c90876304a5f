/* lua_alloc.c - the Lua state's allocator: pools for small blocks, and the memory
 * limit (limits.lua_memory_mb) while Lua code runs. See lua_int.h.
 *
 * Lua's small blocks (up to LH_SMALL_MAX bytes, in 16-byte size classes) come from
 * free lists of their state, carved out of CHUNK_BYTES chunks: a request makes and
 * frees a few dozen of them, and a free list does each in a few instructions where
 * malloc and free take about a hundred (800 instructions, 4.7 %, of a small JSON
 * request, tests/bench/callgrind.py). The chunks are freed with the state; what
 * they hold counts against limits.lua_memory_mb like any block. Built with
 * -DLH_NO_POOLS or ASan, every block comes from malloc, so that valgrind or ASan
 * checks each one. */
#include "lua_int.h"

#include "sanitizer.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (64 * 1024)
#define LUA_POOLS LH_POOLS

struct lh_chunk {
    struct lh_chunk *next;
    _Alignas(max_align_t) char mem[];
};

/* A block of n (1..LH_SMALL_MAX) bytes from the pools, or NULL. */
static void *small_get(struct lh_lua *lua, size_t n)
{
    size_t cls = LH_SMALL_CLASS(n), size = (cls + 1) * 16;
    void *p = lua->free_small[cls];
    if (p) {
        lua->free_small[cls] = *(void **)p;
        return p;
    }
    if (lua->carve_left < size) { /* the old chunk's tail (< LH_SMALL_MAX bytes) is left */
        struct lh_chunk *c = malloc(CHUNK_BYTES);
        if (!c)
            return NULL;
        c->next = lua->chunks;
        lua->chunks = c;
        lua->carve = c->mem;
        lua->carve_left = CHUNK_BYTES - offsetof(struct lh_chunk, mem);
    }
    p = lua->carve;
    lua->carve += size;
    lua->carve_left -= size;
    return p;
}

static void small_put(struct lh_lua *lua, void *p, size_t n)
{
    size_t cls = LH_SMALL_CLASS(n);
    *(void **)p = lua->free_small[cls];
    lua->free_small[cls] = p;
}

/* Free a block of the given size, wherever it came from. */
static void block_free(struct lh_lua *lua, void *p, size_t n)
{
    if (LUA_POOLS && n <= LH_SMALL_MAX)
        small_put(lua, p, n);
    else
        free(p);
}

/* Lua's allocator: the pools above, malloc for the rest, and the state's memory cap
 * while Lua code runs (lua->capped). The host's own calls between runs (making the
 * request object, formatting an error and its traceback) are not capped: they are
 * small, and they run unprotected, where a failed allocation would abort the process.
 * A handler that used up the cap with small objects left no room even for the error
 * message. */
static void *alloc_slow(struct lh_lua *lua, void *ptr, size_t old, size_t nsize);

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lh_lua *lua = ud;
    size_t old = ptr ? osize : 0;
    /* the common cases, without a call (which would cost every case the saving of
     * registers): a small block back to its free list, a new one off it */
    if (LUA_POOLS && nsize == 0 && old <= LH_SMALL_MAX) {
        if (ptr)
            small_put(lua, ptr, old);
        lua->mem_used -= old;
        return NULL;
    }
    if (LUA_POOLS && !ptr && nsize <= LH_SMALL_MAX) {
        void **list = &lua->free_small[LH_SMALL_CLASS(nsize)];
        if (*list && !(lua->capped && lua->mem_used + nsize > lua->mem_limit)) {
            void *p = *list;
            *list = *(void **)p;
            lua->mem_used += nsize;
            return p;
        }
    }
    return alloc_slow(lua, ptr, old, nsize);
}

/* limited_alloc's other cases (old: ptr's size, 0 for none). */
__attribute__((noinline)) static void *alloc_slow(struct lh_lua *lua, void *ptr, size_t old,
                                                  size_t nsize)
{
    if (nsize == 0) {
        if (ptr)
            block_free(lua, ptr, old);
        lua->mem_used -= old;
        return NULL;
    }
    if (lua->capped && nsize > old && lua->mem_used + (nsize - old) > lua->mem_limit)
        return NULL; /* Lua raises "not enough memory"; the state stays usable */
    void *p;
    if (!LUA_POOLS || (old > LH_SMALL_MAX && nsize > LH_SMALL_MAX)) {
        p = realloc(ptr, nsize);
    } else if (ptr && old <= LH_SMALL_MAX && nsize <= LH_SMALL_MAX &&
               LH_SMALL_CLASS(old) == LH_SMALL_CLASS(nsize)) {
        p = ptr;
    } else {
        p = nsize <= LH_SMALL_MAX ? small_get(lua, nsize) : malloc(nsize);
        if (p && ptr) {
            memcpy(p, ptr, old < nsize ? old : nsize);
            block_free(lua, ptr, old);
        }
    }
    if (p)
        lua->mem_used = lua->mem_used - old + nsize;
    return p;
}

lua_State *lh_alloc_new_state(struct lh_lua *lua)
{
    return lua_newstate(limited_alloc, lua);
}

void lh_alloc_free_chunks(struct lh_lua *lua)
{
    while (lua->chunks) {
        struct lh_chunk *c = lua->chunks;
        lua->chunks = c->next;
        free(c);
    }
}
