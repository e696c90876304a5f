/* shm.h - the memory region the master and all workers share: one slot per worker
 * (heartbeat, what it runs), the connection caps (max_connections and the per-client
 * IP table) and an arena for the shared store. The master makes it before it forks;
 * it is never resized. */
#ifndef LH_SHM_H
#define LH_SHM_H

#include "ipkey.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LH_SHM_WHAT_LEN 160 /* what a worker runs, as text, NUL included */

/* One worker slot. The worker writes it; the master reads it (and resets it when it
 * forks the slot's next worker). */
struct lh_shm_worker {
    _Atomic int32_t pid;        /* 0: no worker in this slot */
    _Atomic int64_t beat_ms;    /* CLOCK_MONOTONIC ms of its last event-loop pass */
    _Atomic uint32_t running;   /* nonzero while `what` names Lua code it runs now */
    _Atomic int32_t inflight;   /* requests it has started and not finished */
    char what[LH_SHM_WHAT_LEN]; /* e.g. "route GET /search", "before hook" */
};

/* How big each part is: fixed for the life of the region. */
struct lh_shm_sizes {
    int workers;          /* worker slots */
    long max_connections; /* most connections counted at once, all workers */
    size_t arena_bytes;   /* bytes for the shared store (limits.shared_mb) */
};

struct lh_shm;

/* Map a shared anonymous region for sz (before fork: children inherit it). NULL and
 * errno on failure: EINVAL unless 1 <= workers and 1 <= max_connections <= INT32_MAX,
 * ENOMEM. The per-IP table has a fixed 2 * max_connections slots (rounded up to a
 * power of two, at least 1024, at most 2^21); each worker slot has room to record
 * max_connections connections, so the region takes about
 * workers * max_connections * 20 bytes of address space besides the arena, of which
 * only what is used is ever touched. */
struct lh_shm *lh_shm_create(const struct lh_shm_sizes *sz);
/* Unmap it (in each process that is done with it). Safe on NULL. */
void lh_shm_destroy(struct lh_shm *shm);

/* Worker slot i, 0 <= i < sz.workers (else NULL). Zeroed when created. */
struct lh_shm_worker *lh_shm_worker(struct lh_shm *shm, int i);

/* What lh_shm_conn_acquire says. */
enum lh_shm_cap { LH_SHM_OK = 0, LH_SHM_OVER_CONNECTIONS, LH_SHM_OVER_PER_CLIENT };

/*
 * Count one connection from ip for worker slot `worker`, if it keeps the total at or
 * below max_connections and ip's count at or below max_per_client (<= 0: no cap for
 * that one). On LH_SHM_OK *ticket identifies the count for lh_shm_conn_release; on a
 * refusal nothing is counted. max_connections <= 0 or above sz.max_connections counts
 * as sz.max_connections. A new IP when the per-IP table is full (possible only with
 * sz.max_connections above 2^20) is LH_SHM_OVER_PER_CLIENT; a worker out of range or
 * an unusable lock (see lh_shm_lock) is LH_SHM_OVER_CONNECTIONS.
 */
enum lh_shm_cap lh_shm_conn_acquire(struct lh_shm *shm, int worker, const struct lh_ipkey *ip,
                                    long max_connections, long max_per_client,
                                    uint32_t *ticket);
/* Uncount what a successful acquire of this worker slot counted. A ticket that is
 * not counted now (released already, reclaimed) is ignored. */
void lh_shm_conn_release(struct lh_shm *shm, int worker, uint32_t ticket);
/* The worker in slot `worker` is gone: uncount everything it held (the master calls
 * this when it reaps the worker, before the slot's next worker starts). */
void lh_shm_conn_reclaim(struct lh_shm *shm, int worker);

/* Connections counted now, all workers; and from ip. For tests and logs. -1 when the
 * lock is unusable. */
long lh_shm_conn_count(struct lh_shm *shm);
long lh_shm_ip_count(struct lh_shm *shm, const struct lh_ipkey *ip);

/* The shared store's arena: arena_bytes bytes at a fixed address in every process,
 * page-aligned, zeroed when created. *bytes (if bytes is not NULL) = arena_bytes. */
void *lh_shm_arena(struct lh_shm *shm, size_t *bytes);

/* Take / drop the region's lock (a robust, process-shared mutex). Not recursive: the
 * functions above take it themselves, never call them while holding it. When a holder
 * died with it, whoever takes it next (here or in a function above) first recounts
 * the caps from what each worker holds. lh_shm_lock returns 1 when a holder died
 * since lh_shm_lock last returned 1, so that the store can repair its own part, else
 * 0; -1 when the lock can never be taken again (ENOTRECOVERABLE: someone unlocked it
 * after a death without this recovery); then do not unlock it. */
int lh_shm_lock(struct lh_shm *shm);
void lh_shm_unlock(struct lh_shm *shm);

/* --dev: why the last reload failed, for the page overlay (live.c); "" once a reload
 * succeeds. One writer (the master) and any readers, without the lock (a sequence
 * count: a reader copies again if a write overlapped). lh_shm_dev_set copies msg,
 * cut to LH_SHM_DEV_LEN - 1 bytes (NULL clears it); lh_shm_dev_get copies it into out
 * (n bytes, NUL-terminated) and returns how many times it was set, so that a reader
 * can tell news from what it saw. */
#define LH_SHM_DEV_LEN 2048
void lh_shm_dev_set(struct lh_shm *shm, const char *msg);
uint32_t lh_shm_dev_get(struct lh_shm *shm, char *out, size_t n);

#endif
