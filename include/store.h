/* store.h - the shared store (`shared` in Lua): a key-value table with TTLs and
 * least-recently-used eviction, laid out in one fixed arena such as the shared
 * region's (shm.h). It holds offsets, never pointers, so every process that maps the
 * arena at any address sees the same store.
 *
 * Nothing here locks: callers that share the arena hold one lock (lh_shm_lock) around
 * every call. Nothing here calls malloc, except to grow a caller's lh_store_buf.
 * Times are CLOCK_MONOTONIC milliseconds, given by the caller (the same clock in
 * every process of the machine). */
#ifndef LH_STORE_H
#define LH_STORE_H

#include <stddef.h>
#include <stdint.h>

#define LH_STORE_KEY_MAX ((size_t)64 * 1024) /* longest key, in bytes */
#define LH_STORE_MIN ((size_t)68 * 1024)     /* smallest arena: the allocator's 64 KiB
                                                (shm_alloc.h) and the store's table */

/* What a value is. The store only reads numbers (for incr); a table is bytes that
 * the caller serialised. */
enum lh_store_type {
    LH_STORE_STRING = 1,
    LH_STORE_INT,   /* num.i */
    LH_STORE_FLOAT, /* num.f */
    LH_STORE_BOOL,  /* num.i: 0 or 1 */
    LH_STORE_TABLE, /* bytes, as the caller wrote them */
};

struct lh_store_val {
    enum lh_store_type type;
    union {
        int64_t i;
        double f;
    } num;            /* INT, FLOAT, BOOL */
    const char *data; /* STRING, TABLE: len bytes (not NUL-terminated) */
    size_t len;
};

/* A growable buffer owned by the caller, for what is copied out of the arena (which
 * may change as soon as the lock is dropped). Start it zeroed; free(buf.data) when
 * done; reuse it across calls. */
struct lh_store_buf {
    char *data;
    size_t len, cap;
};

enum lh_store_rc {
    LH_STORE_OK = 0,
    LH_STORE_NOT_FOUND,  /* no such key (or it has expired) */
    LH_STORE_EXISTS,     /* add: the key is there */
    LH_STORE_TOO_LARGE,  /* the entry would not fit even in the empty store */
    LH_STORE_NOT_NUMBER, /* incr: the value there is not a number */
    LH_STORE_NO_MEMORY,  /* growing the caller's lh_store_buf failed; nothing changed */
    LH_STORE_BAD_KEY,    /* key longer than LH_STORE_KEY_MAX */
};

/* Lay out an empty store over [arena, arena + bytes), erasing what was there.
 * arena page-aligned, bytes >= LH_STORE_MIN. 0, or -1 (nothing written). */
int lh_store_init(void *arena, size_t bytes);

/* Walk every structure of the store (its table, its LRU list, the allocator under
 * it) and check that they agree. 0 when they do, -1 at the first that does not: a
 * process died inside a call; the caller then lays the store out again with
 * lh_store_init. Only reads. O(entries). */
int lh_store_check(void *arena);

/* Keys are any bytes (every byte value, NUL included), 0 to LH_STORE_KEY_MAX long. */

/* Copy key's value out: *out, with out->data pointing into buf for STRING and TABLE.
 * Marks the key most recently used. OK, NOT_FOUND, NO_MEMORY, BAD_KEY. */
enum lh_store_rc lh_store_get(void *arena, const char *key, size_t klen, int64_t now_ms,
                              struct lh_store_val *out, struct lh_store_buf *buf);

/* Store v under key, replacing what is there (its TTL too); ttl_ms > 0: it expires
 * ttl_ms from now, 0: never. When the arena is full, expired entries go first, then
 * the least recently used, until the new entry fits. only_if_absent (add): EXISTS
 * when a live entry is there, and nothing changes. OK, EXISTS, TOO_LARGE (nothing
 * changed, the old value stays), BAD_KEY. A walk of the whole store for expired
 * entries waits 1 ms per 1,024 entries after the last one; meanwhile expired entries
 * go when they are the least recently used. */
enum lh_store_rc lh_store_set(void *arena, const char *key, size_t klen,
                              const struct lh_store_val *v, int64_t ttl_ms, int64_t now_ms,
                              int only_if_absent);

/* Add by (INT or FLOAT) to key's number, in place; a missing key is created as
 * init + by (init INT or FLOAT) with ttl_ms as in lh_store_set (an existing key keeps
 * its TTL). INT + INT stays INT (wrapping around as Lua's integers do); anything
 * with a FLOAT gives a FLOAT. *out = the new number. OK, NOT_NUMBER (a string,
 * boolean or table is there), TOO_LARGE, BAD_KEY. */
enum lh_store_rc lh_store_incr(void *arena, const char *key, size_t klen,
                               const struct lh_store_val *by, const struct lh_store_val *init,
                               int64_t ttl_ms, int64_t now_ms, struct lh_store_val *out);

/* Remove key. OK, NOT_FOUND, BAD_KEY. */
enum lh_store_rc lh_store_delete(void *arena, const char *key, size_t klen, int64_t now_ms);

/* Set key's TTL: ttl_ms > 0 from now, 0: never expires. OK, NOT_FOUND, BAD_KEY. */
enum lh_store_rc lh_store_expire(void *arena, const char *key, size_t klen, int64_t ttl_ms,
                                 int64_t now_ms);

/* *left_ms = the ms left before key expires (>= 1), or -1 when it never does. OK,
 * NOT_FOUND, BAD_KEY. Does not count as a use. */
enum lh_store_rc lh_store_ttl(void *arena, const char *key, size_t klen, int64_t now_ms,
                              int64_t *left_ms);

/* Copy the live keys that start with prefix (plen 0: all) into buf, each as a
 * uint32_t length (native byte order, unaligned) followed by its bytes; *count = how
 * many. Order unspecified. OK, NO_MEMORY. */
enum lh_store_rc lh_store_keys(void *arena, const char *prefix, size_t plen, int64_t now_ms,
                               struct lh_store_buf *buf, size_t *count);

struct lh_store_stats {
    size_t entries;     /* keys held (expired ones not yet removed included) */
    size_t bytes;       /* arena bytes in use by entries, their headers included */
    size_t capacity;    /* arena bytes entries can use in all */
    uint64_t evictions; /* live entries removed to make room, since init */
    uint64_t expired;   /* expired entries removed, since init */
    uint64_t sweeps;    /* walks of the whole store for expired entries, since init */
};
void lh_store_stats(void *arena, struct lh_store_stats *st);

#endif
