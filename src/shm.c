/* shm.c - the region the master and all workers share. See shm.h.
 *
 * One anonymous shared mapping, made by the master before it forks, so that it has
 * the same address in every process and the header can hold plain pointers into it:
 *
 *   header      the lock (robust, process-shared), the total count, the sizes
 *   workers     struct lh_shm_worker[workers], for the master/worker code
 *   journals    per worker slot: its high-water mark and free-list head
 *   table       the per-IP counts, open addressing with linear probing
 *   entries     per worker slot, max_connections journal entries (ip, link)
 *   arena       arena_bytes for the shared store, page-aligned, at the end
 *
 * The journals are the truth: every connection counted is one used entry in the
 * journal of the worker that holds it, and the table and the total are a cache of
 * them. So when a worker dies the master uncounts its journal (reclaim), and when a
 * process dies holding the lock the next one to take it rebuilds the table and the
 * total from all journals. All of it changes only under the lock. */
#include "shm.h"
#include "shm_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TABLE_MIN 1024u      /* per-IP table slots, at least ... */
#define TABLE_MAX (1u << 21) /* ... and at most */
#define LINE 64              /* each part starts on a cache line of its own */

/* A slot of the per-IP table; count 0: empty (key then means nothing). */
struct slot {
    struct lh_ipkey key;
    uint32_t count;
};

/* A journal entry. A zeroed one (as mmap gives it) is free and ends the free list. */
struct jentry {
    struct lh_ipkey ip;
    uint32_t link; /* J_USED, or 1 + the index of the next free entry, or 0 */
};
#define J_USED UINT32_MAX

/* A worker slot's journal. Entries from `high` on were never used since the last
 * reclaim: they are all zero, and their pages untouched unless an earlier life of
 * the slot used them. Entries below `high` are used or on the free list. */
struct journal {
    uint32_t high;
    uint32_t free; /* 1 + the index of the first free entry below high, or 0 */
};

struct lh_shm {
    pthread_mutex_t lock;
    long conns;      /* connections counted, all workers */
    bool recovered;  /* a holder died; lh_shm_lock has not said so yet */
    struct lh_shm_sizes sz;
    uint32_t cap;    /* table slots, a power of two */
    size_t bytes;    /* the whole mapping */
    struct lh_shm_worker *workers;
    struct journal *journals;
    struct slot *table;
    struct jentry *entries; /* worker w's are entries[w * sz.max_connections ...] */
    void *arena;
    _Atomic uint32_t dev_seq;        /* odd while dev_error is written */
    _Atomic uint32_t dev_sets;
    char dev_error[LH_SHM_DEV_LEN];
};

/* ---- layout ---------------------------------------------------------------------- */

struct plan {
    uint32_t cap;
    size_t workers, journals, table, entries, arena, bytes; /* offsets; total */
};

/* Reserve n items of size bytes at the next multiple of align from *end; their
 * offset. *end becomes SIZE_MAX (and stays so) when the sizes overflow. */
static size_t place(size_t *end, size_t n, size_t size, size_t align)
{
    size_t at, bytes;
    if (*end > SIZE_MAX - align || __builtin_mul_overflow(n, size, &bytes)) {
        *end = SIZE_MAX;
        return 0;
    }
    at = (*end + align - 1) / align * align;
    if (__builtin_add_overflow(at, bytes, end))
        *end = SIZE_MAX;
    return at;
}

static uint32_t table_cap(long max_connections)
{
    uint32_t cap = TABLE_MIN;
    while (cap < TABLE_MAX && (long)cap < 2 * max_connections)
        cap <<= 1;
    return cap;
}

/* Where each part goes for sz. 0, or -1 with errno (EINVAL, ENOMEM). */
static int plan_layout(const struct lh_shm_sizes *sz, struct plan *p)
{
    /* a ticket and a count are 32 bits, J_USED excluded */
    if (sz->workers < 1 || sz->max_connections < 1 || sz->max_connections > INT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    size_t end = sizeof(struct lh_shm), page = (size_t)sysconf(_SC_PAGESIZE);
    size_t w = (size_t)sz->workers, maxc = (size_t)sz->max_connections;
    p->cap = table_cap(sz->max_connections);
    p->workers = place(&end, w, sizeof(struct lh_shm_worker), LINE);
    p->journals = place(&end, w, sizeof(struct journal), LINE);
    p->table = place(&end, p->cap, sizeof(struct slot), LINE);
    p->entries = place(&end, w, maxc * sizeof(struct jentry), LINE); /* maxc < 2^31 */
    p->arena = place(&end, 1, sz->arena_bytes, page);
    p->bytes = place(&end, 0, 0, page);
    if (end == SIZE_MAX) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* A robust, process-shared mutex. 0, or -1 with errno. */
static int lock_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc == 0) {
        rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        if (rc == 0)
            rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        if (rc == 0)
            rc = pthread_mutex_init(m, &a);
        pthread_mutexattr_destroy(&a);
    }
    errno = rc;
    return rc == 0 ? 0 : -1;
}

struct lh_shm *lh_shm_create(const struct lh_shm_sizes *sz)
{
    struct plan p;
    if (plan_layout(sz, &p) < 0)
        return NULL;
    /* NORESERVE: most journal pages are never touched; don't charge them up front */
    char *base = mmap(NULL, p.bytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    struct lh_shm *shm = (struct lh_shm *)base;
    if (lock_init(&shm->lock) < 0) {
        int e = errno;
        munmap(base, p.bytes);
        errno = e;
        return NULL;
    }
    shm->sz = *sz;
    shm->cap = p.cap;
    shm->bytes = p.bytes;
    shm->workers = (struct lh_shm_worker *)(base + p.workers);
    shm->journals = (struct journal *)(base + p.journals);
    shm->table = (struct slot *)(base + p.table);
    shm->entries = (struct jentry *)(base + p.entries);
    shm->arena = base + p.arena;
    return shm;
}

/* The mutex is not destroyed: the other processes may still use it. */
void lh_shm_destroy(struct lh_shm *shm)
{
    if (shm)
        munmap(shm, shm->bytes);
}

struct lh_shm_worker *lh_shm_worker(struct lh_shm *shm, int i)
{
    return i >= 0 && i < shm->sz.workers ? &shm->workers[i] : NULL;
}

void *lh_shm_arena(struct lh_shm *shm, size_t *bytes)
{
    if (bytes)
        *bytes = shm->sz.arena_bytes;
    return shm->arena;
}

/* ---- the per-IP table ---------------------------------------------------------------
 * Linear probing that wraps at the end; a slot whose count drops to 0 is emptied by
 * backward-shift deletion, so every probe sequence ends at the first empty slot and
 * there are no tombstones. */

static uint32_t home(const struct lh_shm *shm, const struct lh_ipkey *ip)
{
    uint64_t a, b;
    memcpy(&a, ip->b, 8);
    memcpy(&b, ip->b + 8, 8);
    /* two multiplies mix each half upwards, the shifts bring the high bits down */
    uint64_t h = a * 0x9e3779b97f4a7c15u ^ b * 0xc2b2ae3d27d4eb4fu;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93u;
    h ^= h >> 32;
    return (uint32_t)h & (shm->cap - 1);
}

/* The slot holding ip, else the empty slot where it would go; NULL when the table
 * is full and ip is not in it. */
static struct slot *table_find(struct lh_shm *shm, const struct lh_ipkey *ip)
{
    uint32_t mask = shm->cap - 1, i = home(shm, ip);
    for (uint32_t n = 0; n < shm->cap; n++, i = (i + 1) & mask) {
        struct slot *s = &shm->table[i];
        if (s->count == 0 || memcmp(&s->key, ip, sizeof *ip) == 0)
            return s;
    }
    return NULL;
}

/* Empty slot i, then move later entries of its cluster back into the hole so that
 * each stays reachable from its home. */
static void table_remove(struct lh_shm *shm, uint32_t i)
{
    uint32_t mask = shm->cap - 1;
    shm->table[i].count = 0;
    for (uint32_t j = (i + 1) & mask; shm->table[j].count; j = (j + 1) & mask) {
        /* distances going forward, wrapping: the entry at j may move to i unless
         * its home lies in (i, j] */
        uint32_t from_home = (j - home(shm, &shm->table[j].key)) & mask;
        if (from_home >= ((j - i) & mask)) {
            shm->table[i] = shm->table[j];
            shm->table[j].count = 0;
            i = j;
        }
    }
}

/* Count one more connection from ip in s = table_find(ip) and in the total. */
static void count_add(struct lh_shm *shm, struct slot *s, const struct lh_ipkey *ip)
{
    if (s->count++ == 0)
        s->key = *ip;
    shm->conns++;
}

/* Uncount one connection from ip (one that count_add counted). */
static void count_sub(struct lh_shm *shm, const struct lh_ipkey *ip)
{
    struct slot *s = table_find(shm, ip);
    if (!s || s->count == 0)
        return; /* not counted: cannot be while each used journal entry is */
    if (--s->count == 0)
        table_remove(shm, (uint32_t)(s - shm->table));
    shm->conns--;
}

/* ---- journals -----------------------------------------------------------------------
 * Each write that a rebuild reads is ordered so that a process killed between any two
 * of them leaves every journal saying which entries hold a connection: an entry
 * becomes used (link = J_USED) in one store, after its ip is written and after high
 * covers it; the free list is rebuilt from the used marks, so it may be left half
 * updated. The table and the total are rebuilt whole, so their updates need no order. */

/* The compiler may not move stores across this point. That is all a kill needs: a
 * process killed anywhere has run a prefix of its instructions, and the kernel's
 * atomic marking of the robust lock as owner-dead, on the dying thread, publishes
 * all of their stores to the next owner, who takes the lock with acquire order. */
static void store_order(void)
{
    atomic_signal_fence(memory_order_seq_cst);
}

static struct jentry *jentries(struct lh_shm *shm, int worker)
{
    return shm->entries + (size_t)worker * (size_t)shm->sz.max_connections;
}

/* Record ip in a free entry of worker's journal: its index, or -1 when it is full. */
static long journal_put(struct lh_shm *shm, int worker, const struct lh_ipkey *ip)
{
    struct journal *j = &shm->journals[worker];
    struct jentry *e = jentries(shm, worker);
    uint32_t i;
    if (j->free) {
        i = j->free - 1;
        j->free = e[i].link;
    } else if (j->high < shm->sz.max_connections) {
        i = j->high++;
    } else {
        return -1;
    }
    e[i].ip = *ip;
    store_order();
    e[i].link = J_USED;
    return i;
}

/* Free entry t of worker's journal into *ip. 0, or -1 when t is not in use. */
static int journal_take(struct lh_shm *shm, int worker, uint32_t t, struct lh_ipkey *ip)
{
    struct journal *j = &shm->journals[worker];
    struct jentry *e = jentries(shm, worker);
    if (t >= j->high || e[t].link != J_USED)
        return -1;
    *ip = e[t].ip;
    e[t].link = j->free;
    j->free = t + 1;
    return 0;
}

/* Count every used entry of worker's journal again and rebuild its free list. Only
 * entries below high are read or written. */
static void journal_recount(struct lh_shm *shm, int worker)
{
    struct journal *j = &shm->journals[worker];
    struct jentry *e = jentries(shm, worker);
    if (j->high > shm->sz.max_connections)
        j->high = (uint32_t)shm->sz.max_connections;
    j->free = 0;
    for (uint32_t i = j->high; i-- > 0;) {
        struct slot *s = e[i].link == J_USED ? table_find(shm, &e[i].ip) : NULL;
        if (s) {
            count_add(shm, s, &e[i].ip);
        } else { /* free (or no room in the table: then dropped, never counted) */
            e[i].link = j->free;
            j->free = i + 1;
        }
    }
}

/* ---- the lock -------------------------------------------------------------------- */

/* The table and the total again from the journals, which are the truth. */
static void rebuild(struct lh_shm *shm)
{
    memset(shm->table, 0, (size_t)shm->cap * sizeof *shm->table);
    shm->conns = 0;
    for (int w = 0; w < shm->sz.workers; w++)
        journal_recount(shm, w);
}

/* Take the lock with the caps consistent: 0, or -1 when the lock is unusable. A
 * holder killed during the rebuild leaves the mutex owner-dead again, so the next
 * one rebuilds again from the start. */
static int lock(struct lh_shm *shm)
{
    int rc = pthread_mutex_lock(&shm->lock);
    if (rc == EOWNERDEAD) {
        rebuild(shm);
        shm->recovered = true;
        rc = pthread_mutex_consistent(&shm->lock);
        if (rc != 0) /* not for an owner-dead mutex we hold */
            pthread_mutex_unlock(&shm->lock);
    }
    /* ENOTRECOVERABLE: someone unlocked an owner-dead mutex without making it
     * consistent; nothing can lock it again. */
    return rc == 0 ? 0 : -1;
}

int lh_shm_lock(struct lh_shm *shm)
{
    if (lock(shm) < 0)
        return -1;
    bool died = shm->recovered;
    shm->recovered = false;
    return died;
}

void lh_shm_unlock(struct lh_shm *shm)
{
    pthread_mutex_unlock(&shm->lock);
}

/* ---- the --dev reload error ------------------------------------------------------ */

void lh_shm_dev_set(struct lh_shm *shm, const char *msg)
{
    atomic_fetch_add_explicit(&shm->dev_seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    snprintf(shm->dev_error, sizeof shm->dev_error, "%s", msg ? msg : "");
    atomic_fetch_add_explicit(&shm->dev_sets, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&shm->dev_seq, 1, memory_order_release);
}

uint32_t lh_shm_dev_get(struct lh_shm *shm, char *out, size_t n)
{
    if (n == 0)
        return 0;
    for (;;) {
        uint32_t seq = atomic_load_explicit(&shm->dev_seq, memory_order_acquire);
        if (seq & 1)
            continue; /* the master is writing: a few microseconds */
        uint32_t sets = atomic_load_explicit(&shm->dev_sets, memory_order_relaxed);
        size_t len = strnlen(shm->dev_error, sizeof shm->dev_error - 1);
        if (len >= n)
            len = n - 1;
        memcpy(out, shm->dev_error, len);
        out[len] = '\0';
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&shm->dev_seq, memory_order_relaxed) == seq)
            return sets;
    }
}

/* ---- connection caps ------------------------------------------------------------- */

static bool worker_ok(const struct lh_shm *shm, int worker)
{
    return worker >= 0 && worker < shm->sz.workers;
}

/* Whether one more connection from ip fits; *s: where ip is counted. Locked. */
static enum lh_shm_cap admit(struct lh_shm *shm, const struct lh_ipkey *ip, long max_connections,
                             long max_per_client, struct slot **s)
{
    if (max_connections <= 0 || max_connections > shm->sz.max_connections)
        max_connections = shm->sz.max_connections;
    if (shm->conns >= max_connections)
        return LH_SHM_OVER_CONNECTIONS;
    *s = table_find(shm, ip);
    if (!*s || (max_per_client > 0 && (*s)->count >= max_per_client))
        return LH_SHM_OVER_PER_CLIENT;
    return LH_SHM_OK;
}

/* The journal entry is written first: a kill after it leaves a connection that the
 * rebuild counts, never a count that nothing in a journal explains. */
enum lh_shm_cap lh_shm_conn_acquire(struct lh_shm *shm, int worker, const struct lh_ipkey *ip,
                                    long max_connections, long max_per_client,
                                    uint32_t *ticket)
{
    if (!worker_ok(shm, worker) || lock(shm) < 0)
        return LH_SHM_OVER_CONNECTIONS;
    struct slot *s = NULL;
    enum lh_shm_cap rc = admit(shm, ip, max_connections, max_per_client, &s);
    if (rc == LH_SHM_OK) {
        long t = journal_put(shm, worker, ip);
        if (t < 0) {
            rc = LH_SHM_OVER_CONNECTIONS; /* only with max_connections' worth in it */
        } else {
            count_add(shm, s, ip);
            *ticket = (uint32_t)t;
        }
    }
    lh_shm_unlock(shm);
    return rc;
}

/* The journal entry goes first here too, then the count. */
void lh_shm_conn_release(struct lh_shm *shm, int worker, uint32_t ticket)
{
    struct lh_ipkey ip;
    if (!worker_ok(shm, worker) || lock(shm) < 0)
        return;
    if (journal_take(shm, worker, ticket, &ip) == 0)
        count_sub(shm, &ip);
    lh_shm_unlock(shm);
}

/* Entries go back to zero before high does, so that entries from high on stay zero. */
void lh_shm_conn_reclaim(struct lh_shm *shm, int worker)
{
    if (!worker_ok(shm, worker) || lock(shm) < 0)
        return;
    struct journal *j = &shm->journals[worker];
    struct jentry *e = jentries(shm, worker);
    for (uint32_t i = 0; i < j->high; i++) {
        if (e[i].link == J_USED)
            count_sub(shm, &e[i].ip);
        e[i].link = 0;
    }
    store_order();
    j->high = 0;
    j->free = 0;
    lh_shm_unlock(shm);
}

long lh_shm_conn_count(struct lh_shm *shm)
{
    if (lock(shm) < 0)
        return -1;
    long n = shm->conns;
    lh_shm_unlock(shm);
    return n;
}

long lh_shm_ip_count(struct lh_shm *shm, const struct lh_ipkey *ip)
{
    if (lock(shm) < 0)
        return -1;
    struct slot *s = table_find(shm, ip);
    long n = s ? s->count : 0;
    lh_shm_unlock(shm);
    return n;
}

/* ---- test hooks (shm_test.h) ----------------------------------------------------- */

uint32_t lh_shm_test_cap(const struct lh_shm *shm)
{
    return shm->cap;
}

uint32_t lh_shm_test_home(const struct lh_shm *shm, const struct lh_ipkey *ip)
{
    return home(shm, ip);
}

long lh_shm_test_slot(const struct lh_shm *shm, uint32_t i, struct lh_ipkey *key)
{
    *key = shm->table[i].key;
    return shm->table[i].count;
}

int lh_shm_test_table_add(struct lh_shm *shm, const struct lh_ipkey *ip)
{
    struct slot *s = table_find(shm, ip);
    if (!s)
        return -1;
    if (s->count++ == 0)
        s->key = *ip;
    return 0;
}

long lh_shm_test_journal_put(struct lh_shm *shm, int worker, const struct lh_ipkey *ip)
{
    return journal_put(shm, worker, ip);
}

void *lh_shm_test_journal(struct lh_shm *shm, int worker, size_t *bytes)
{
    *bytes = (size_t)shm->sz.max_connections * sizeof(struct jentry);
    return jentries(shm, worker);
}

pthread_mutex_t *lh_shm_test_mutex(struct lh_shm *shm)
{
    return &shm->lock;
}
