/* store.c - the shared store: a hash table with TTLs and LRU eviction in one fixed
 * arena. See store.h.
 *
 * The arena is
 *
 *   [head][buckets][heap .................................................]
 *
 * head holds the layout, the hash key and what changes (the LRU list's ends, the
 * counters, an expiry hint); buckets is a power of two of uint32, about one per 256
 * arena bytes, each the first entry of its chain; the heap is the rest, managed by
 * shm_alloc.h. An entry is one heap block: a struct entry, the key's bytes, then a
 * string's or a table's bytes. Entries name each other by heap offset / 16, a
 * uint32 (0: none), never by address.
 *
 * The LRU list runs from the newest entry to the oldest. get moves an entry to the
 * newest end; incr only flags it (one write, see below), and when room is made a
 * flagged entry at the oldest end goes back to the newest end once instead of out.
 *
 * A process may die anywhere in a call. Linking an entry in takes these steps, in
 * this order: allocate it, fill it, put it in the LRU list, in its chain, count it;
 * unlinking: out of its chain, out of the LRU list, uncount it, free it. Between two
 * steps the heap's block count, the chains, the LRU list and the entry count do not
 * all agree, and lh_store_check says so; a compiler fence keeps the steps in order.
 * (So a set that dies after unlinking the old entry leaves the key absent.) What
 * must never fail a check, incr of a number already there and expire, is one write
 * that counts (a number, a type, an expiry time) after the ones it needs.
 */
#include "store.h"
#include "shm_alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define UNIT 16u                /* heap offsets are multiples of this */
#define HEAD_BYTES 256u         /* the head, padded; the buckets start here */
#define BYTES_PER_BUCKET 256u
#define MAX_BUCKETS (1u << 28)  /* enough for the largest heap */
#define STORE_MAGIC 0x3165726f7473686cull /* "lhstore1" */
#define NEVER INT64_MAX         /* next_expiry when no entry has a TTL */

/* The compiler keeps the writes before it before those after it, so that a process
 * that dies in between leaves the first ones only. (The CPU needs no more: whoever
 * looks next takes the lock first.) */
#define STEP() atomic_signal_fence(memory_order_seq_cst)

struct head {
    /* set by init, never changed */
    uint64_t magic;
    uint64_t bytes;      /* as given to init */
    uint64_t heap;       /* where the heap starts, bytes from the arena */
    uint64_t heap_bytes;
    uint64_t seed[2];    /* the hash's key, from getrandom */
    uint64_t largest;    /* the largest block the empty heap grants */
    uint64_t capacity;   /* bytes the empty heap has free */
    uint32_t mask;       /* buckets - 1 */
    uint32_t pad;
    uint64_t tag;        /* head_tag() of the fields above */
    /* what changes */
    uint32_t newest, oldest; /* the LRU list's ends, 0 when empty */
    uint64_t entries;
    uint64_t evictions, expired;
    int64_t next_expiry; /* no entry expires before it (a lower bound); NEVER */
    int64_t next_sweep;  /* no sweep for expired entries before it (ms) */
    uint64_t sweeps;
};

struct entry {
    uint32_t chain;          /* the next entry in this bucket */
    uint32_t newer, older;   /* the LRU neighbours */
    uint32_t hash;           /* the key's hash, low bits: its bucket and a quick test */
    uint32_t klen;
    uint16_t type;           /* enum lh_store_type */
    uint16_t touched;        /* incr used it since it last became the newest */
    int64_t expires;         /* ms, 0: never */
    union {
        uint64_t len;        /* STRING, TABLE: the bytes after the key's */
        int64_t i;           /* INT, BOOL */
    } v;
    double f;                /* FLOAT; not in v, so that incr turns an INT into a FLOAT
                                by writing f and then, the write that counts, type */
    /* the key's bytes, then the value's */
};

_Static_assert(sizeof(struct head) <= HEAD_BYTES, "the head fits its place");
_Static_assert(sizeof(struct entry) % 16 == 0, "keys start 16-aligned");
_Static_assert(LH_STORE_MIN >= LH_SHM_ALLOC_MIN + HEAD_BYTES +
                                   LH_STORE_MIN / BYTES_PER_BUCKET * sizeof(uint32_t),
               "the smallest store leaves the heap its smallest arena");

/* ---- the hash ------------------------------------------------------------------ */

/* The 128-bit product of a and b, folded to 64 bits: every bit of the result
 * depends on every bit of both. */
static inline uint64_t fold(uint64_t a, uint64_t b)
{
    unsigned __int128 p = (unsigned __int128)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Any bytes, keyed by the seed so that nobody outside can pick keys that collide.
 * 16 bytes per multiply; the last 1 to 16 are read as two (maybe overlapping) words,
 * which with the length mixed in first still tells apart any two keys. */
static inline uint64_t key_hash(const struct head *h, const char *key, size_t n)
{
    const unsigned char *p = (const unsigned char *)key;
    uint64_t k0 = h->seed[0], k1 = h->seed[1];
    uint64_t acc = k0 ^ (uint64_t)n * 0x9e3779b97f4a7c15ull; /* each length apart */
    size_t left = n;
    for (; left > 16; left -= 16, p += 16)
        acc = fold(load64(p) ^ k1, load64(p + 8) ^ acc);
    uint64_t a = 0, b = 0;
    if (left >= 8) {
        a = load64(p);
        b = load64(p + left - 8);
    } else if (left >= 4) {
        a = load32(p);
        b = load32(p + left - 4);
    } else if (left > 0) {
        a = (uint64_t)p[0] | (uint64_t)p[left / 2] << 8 | (uint64_t)p[left - 1] << 16;
    }
    return fold(fold(a ^ k1, b ^ acc) ^ k0, 0xd6e8feb86659fd93ull);
}

/* ---- layout and access --------------------------------------------------------- */

struct layout {
    uint64_t heap, heap_bytes;
    uint32_t mask;
};

/* Where the parts of a store of `bytes` go. 0, or -1 when it is too small. */
static int layout_of(size_t bytes, struct layout *l)
{
    if (bytes < LH_STORE_MIN)
        return -1;
    uint64_t buckets = 1;
    while (buckets < MAX_BUCKETS && buckets * 2 <= bytes / BYTES_PER_BUCKET)
        buckets *= 2;
    l->mask = (uint32_t)(buckets - 1);
    l->heap = HEAD_BYTES + buckets * sizeof(uint32_t); /* 64-aligned */
    uint64_t rest = bytes - l->heap;
    l->heap_bytes = rest < LH_SHM_ALLOC_MAX ? rest : LH_SHM_ALLOC_MAX;
    return l->heap_bytes >= LH_SHM_ALLOC_MIN ? 0 : -1;
}

static uint64_t head_tag(const struct head *h)
{
    const uint64_t f[] = {h->bytes,   h->heap,    h->heap_bytes, h->seed[0],
                          h->seed[1], h->largest, h->capacity,   h->mask};
    uint64_t t = STORE_MAGIC;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        t = fold(t ^ f[i], 0x9e3779b97f4a7c15ull);
    return t;
}

static inline uint32_t *buckets_of(struct head *h)
{
    return (uint32_t *)((char *)h + HEAD_BYTES);
}

static inline void *heap_of(struct head *h)
{
    return (char *)h + h->heap;
}

static inline struct entry *entry_at(struct head *h, uint32_t u)
{
    return (struct entry *)((char *)h + h->heap + (uint64_t)u * UNIT);
}

static inline char *key_of(struct entry *e)
{
    return (char *)(e + 1);
}

static inline int is_bytes(unsigned type)
{
    return type == LH_STORE_STRING || type == LH_STORE_TABLE;
}

static inline int is_expired(const struct entry *e, int64_t now)
{
    return e->expires != 0 && now >= e->expires;
}

/* The expiry time of a TTL given now: 0 (never) for ttl_ms <= 0. */
static int64_t deadline(int64_t ttl_ms, int64_t now)
{
    if (ttl_ms <= 0)
        return 0;
    return now > INT64_MAX - ttl_ms ? INT64_MAX : now + ttl_ms;
}

/* An entry for klen key bytes and vlen value bytes fits in the empty store. */
static int fits_empty(const struct head *h, size_t klen, size_t vlen)
{
    uint64_t need = sizeof(struct entry) + (uint64_t)klen;
    return need <= h->largest && vlen <= h->largest - need;
}

/* What v is stored as: its type, or a string when it has none of ours. */
static unsigned type_of(const struct lh_store_val *v)
{
    return v->type >= LH_STORE_STRING && v->type <= LH_STORE_TABLE ? v->type
                                                                    : LH_STORE_STRING;
}

/* The bytes after the key that v takes. */
static size_t vlen_of(const struct lh_store_val *v)
{
    return is_bytes(type_of(v)) ? v->len : 0;
}

/* ---- the LRU list and the chains ----------------------------------------------- */

static void lru_unlink(struct head *h, const struct entry *e)
{
    if (e->newer)
        entry_at(h, e->newer)->older = e->older;
    else
        h->newest = e->older;
    if (e->older)
        entry_at(h, e->older)->newer = e->newer;
    else
        h->oldest = e->newer;
}

/* Put e (at u, not in the list) at the newest end. */
static void lru_push(struct head *h, struct entry *e, uint32_t u)
{
    e->newer = 0;
    e->older = h->newest;
    e->touched = 0;
    STEP();
    if (h->newest)
        entry_at(h, h->newest)->newer = u;
    else
        h->oldest = u;
    h->newest = u;
}

static void make_newest(struct head *h, struct entry *e, uint32_t u)
{
    if (h->newest == u)
        return;
    lru_unlink(h, e);
    STEP();
    lru_push(h, e, u);
}

/* The slot that holds key's entry: its bucket or the chain field of the entry
 * before it in the bucket. NULL when the key is not there. */
static inline uint32_t *lookup(struct head *h, const char *key, size_t klen, uint64_t hash)
{
    uint32_t *slot = &buckets_of(h)[hash & h->mask];
    for (uint32_t u; (u = *slot) != 0; slot = &entry_at(h, u)->chain) {
        struct entry *e = entry_at(h, u);
        if (e->hash == (uint32_t)hash && e->klen == klen &&
            (klen == 0 || memcmp(key_of(e), key, klen) == 0))
            return slot;
    }
    return NULL;
}

/* The slot that holds the entry at u, which is in the store. */
static uint32_t *slot_of(struct head *h, uint32_t u)
{
    uint32_t *slot = &buckets_of(h)[entry_at(h, u)->hash & h->mask];
    while (*slot != u)
        slot = &entry_at(h, *slot)->chain;
    return slot;
}

/* Link in the filled entry at u. */
static void link_entry(struct head *h, struct entry *e, uint32_t u)
{
    uint32_t *bucket = &buckets_of(h)[e->hash & h->mask];
    e->chain = *bucket;
    if (e->expires && e->expires < h->next_expiry)
        h->next_expiry = e->expires;
    STEP();
    lru_push(h, e, u);
    STEP();
    *bucket = u;
    STEP();
    h->entries++;
}

/* Unlink and free the entry *slot holds. */
static void unlink_entry(struct head *h, uint32_t *slot)
{
    uint32_t u = *slot;
    struct entry *e = entry_at(h, u);
    *slot = e->chain;
    STEP();
    lru_unlink(h, e);
    STEP();
    h->entries--;
    STEP();
    lh_shm_free(heap_of(h), (uint64_t)u * UNIT);
}

/* What find() does with an expired entry of the key: leave it, so that nothing
 * changes (expire, ttl), or remove it and count it (get, delete). */
enum expired_entry { LEAVE_EXPIRED, DROP_EXPIRED };

/* The slot that holds key's live entry, or NULL with *rc = BAD_KEY (key longer than
 * LH_STORE_KEY_MAX) or NOT_FOUND (no entry, or an expired one). */
static uint32_t *find(struct head *h, const char *key, size_t klen, int64_t now,
                      enum expired_entry expired, enum lh_store_rc *rc)
{
    if (klen > LH_STORE_KEY_MAX) {
        *rc = LH_STORE_BAD_KEY;
        return NULL;
    }
    *rc = LH_STORE_NOT_FOUND; /* unless the entry is live */
    uint32_t *slot = lookup(h, key, klen, key_hash(h, key, klen));
    if (!slot || !is_expired(entry_at(h, *slot), now))
        return slot;
    if (expired == DROP_EXPIRED) {
        h->expired++;
        unlink_entry(h, slot);
    }
    return NULL;
}

/* ---- making room --------------------------------------------------------------- */

/* Remove every expired entry and learn when the next one expires. A sweep walks every
 * entry under the lock all workers share, so the next one waits 1 ms per 1,024
 * entries walked: with entries expiring all the time, sweeping takes about 2 % of the
 * time inserts hold the lock, not all of it (in between, expired entries still go
 * first when they are the least recently used, or when they are read). */
static void sweep(struct head *h, int64_t now)
{
    int64_t next = NEVER;
    h->sweeps++;
    h->next_sweep = now + (int64_t)(h->entries >> 10);
    for (uint32_t u = h->oldest, newer; u; u = newer) {
        struct entry *e = entry_at(h, u);
        newer = e->newer;
        if (is_expired(e, now)) {
            h->expired++;
            unlink_entry(h, slot_of(h, u));
        } else if (e->expires && e->expires < next) {
            next = e->expires;
        }
    }
    h->next_expiry = next;
}

/* A heap block of n bytes: what is free, else the room of expired entries (swept only
 * when the hint says one has expired), else that of the least recently used. n fits
 * in the empty store, so this ends with a block but for a broken store (0). */
static uint32_t make_room(struct head *h, size_t n, int64_t now)
{
    void *heap = heap_of(h);
    int swept = 0;
    for (;;) {
        uint64_t off = lh_shm_alloc(heap, n);
        if (off)
            return (uint32_t)(off / UNIT);
        if (!swept && now >= h->next_expiry && now >= h->next_sweep) {
            sweep(h, now);
            swept = 1;
            continue;
        }
        uint32_t u = h->oldest;
        if (!u)
            return 0;
        struct entry *e = entry_at(h, u);
        if (e->touched && !is_expired(e, now)) { /* its second chance */
            e->touched = 0;
            make_newest(h, e, u);
            continue;
        }
        if (is_expired(e, now))
            h->expired++;
        else
            h->evictions++;
        unlink_entry(h, slot_of(h, u));
    }
}

/* A new entry for key holding v (its type normalised), linked in. */
static enum lh_store_rc put(struct head *h, const char *key, size_t klen, uint64_t hash,
                            const struct lh_store_val *v, int64_t expires, int64_t now)
{
    size_t vlen = vlen_of(v);
    uint32_t u = make_room(h, sizeof(struct entry) + klen + vlen, now);
    if (!u)
        return LH_STORE_TOO_LARGE;
    struct entry *e = entry_at(h, u);
    e->hash = (uint32_t)hash;
    e->klen = (uint32_t)klen;
    e->type = (uint16_t)type_of(v);
    e->touched = 0;
    e->expires = expires;
    e->v.i = 0;
    e->f = 0;
    if (klen)
        memcpy(key_of(e), key, klen);
    switch (e->type) {
    case LH_STORE_INT:
        e->v.i = v->num.i;
        break;
    case LH_STORE_FLOAT:
        e->f = v->num.f;
        break;
    case LH_STORE_BOOL:
        e->v.i = v->num.i != 0;
        break;
    default: /* STRING, TABLE */
        e->v.len = vlen;
        if (vlen)
            memcpy(key_of(e) + klen, v->data, vlen);
    }
    STEP();
    link_entry(h, e, u);
    return LH_STORE_OK;
}

/* ---- the caller's buffer ------------------------------------------------------- */

/* Room for n bytes in b, growing it at least twofold. 0, or -1 (b unchanged). */
static int buf_reserve(struct lh_store_buf *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < n)
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* ---- the calls ----------------------------------------------------------------- */

int lh_store_init(void *arena, size_t bytes)
{
    struct layout l;
    uint64_t seed[2];
    ssize_t got;
    if (!arena || (uintptr_t)arena % UNIT || layout_of(bytes, &l) != 0)
        return -1;
    do
        got = getrandom(seed, sizeof seed, 0);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof seed)
        return -1;
    struct head *h = arena;
    void *heap = (char *)arena + l.heap;
    if (lh_shm_alloc_init(heap, l.heap_bytes) != 0)
        return -1;
    h->magic = 0; /* a store half laid out fails check */
    STEP();
    struct lh_shm_alloc_stats st;
    lh_shm_alloc_stats(heap, &st);
    memset(buckets_of(h), 0, (l.mask + (size_t)1) * sizeof(uint32_t));
    *h = (struct head){
        .bytes = bytes,
        .heap = l.heap,
        .heap_bytes = l.heap_bytes,
        .seed = {seed[0], seed[1]},
        .largest = st.largest_free,
        .capacity = st.free,
        .mask = l.mask,
        .next_expiry = NEVER,
    };
    h->tag = head_tag(h);
    STEP();
    h->magic = STORE_MAGIC;
    return 0;
}

enum lh_store_rc lh_store_get(void *arena, const char *key, size_t klen, int64_t now_ms,
                              struct lh_store_val *out, struct lh_store_buf *buf)
{
    struct head *h = arena;
    enum lh_store_rc rc;
    uint32_t *slot = find(h, key, klen, now_ms, DROP_EXPIRED, &rc);
    if (!slot)
        return rc;
    uint32_t u = *slot;
    struct entry *e = entry_at(h, u);
    *out = (struct lh_store_val){.type = e->type};
    if (is_bytes(e->type)) {
        if (buf_reserve(buf, e->v.len) != 0)
            return LH_STORE_NO_MEMORY;
        if (e->v.len)
            memcpy(buf->data, key_of(e) + klen, e->v.len);
        buf->len = e->v.len;
        out->data = buf->data ? buf->data : "";
        out->len = e->v.len;
    } else if (e->type == LH_STORE_FLOAT) {
        out->num.f = e->f;
    } else {
        out->num.i = e->v.i;
    }
    make_newest(h, e, u);
    return LH_STORE_OK;
}

enum lh_store_rc lh_store_set(void *arena, const char *key, size_t klen,
                              const struct lh_store_val *v, int64_t ttl_ms, int64_t now_ms,
                              int only_if_absent)
{
    struct head *h = arena;
    if (klen > LH_STORE_KEY_MAX)
        return LH_STORE_BAD_KEY;
    if (!fits_empty(h, klen, vlen_of(v)))
        return LH_STORE_TOO_LARGE;
    uint64_t hash = key_hash(h, key, klen);
    uint32_t *slot = lookup(h, key, klen, hash);
    if (slot) {
        const struct entry *e = entry_at(h, *slot);
        int expired = is_expired(e, now_ms);
        if (only_if_absent && !expired)
            return LH_STORE_EXISTS;
        h->expired += (uint64_t)expired;
        unlink_entry(h, slot); /* before make_room: its room counts */
    }
    return put(h, key, klen, hash, v, deadline(ttl_ms, now_ms), now_ms);
}

/* Lua's a + b for INT and FLOAT values. */
static inline struct lh_store_val num_add(const struct lh_store_val *a,
                                          const struct lh_store_val *b)
{
    struct lh_store_val r = {.type = LH_STORE_FLOAT};
    if (a->type != LH_STORE_FLOAT && b->type != LH_STORE_FLOAT) {
        r.type = LH_STORE_INT;
        r.num.i = (int64_t)((uint64_t)a->num.i + (uint64_t)b->num.i); /* wraps */
    } else {
        r.num.f = (a->type == LH_STORE_FLOAT ? a->num.f : (double)a->num.i) +
                  (b->type == LH_STORE_FLOAT ? b->num.f : (double)b->num.i);
    }
    return r;
}

/* incr of the live entry e: one write of the number, and for an INT that becomes a
 * FLOAT the write of f before that of the type. Then the flag, for make_room. */
static enum lh_store_rc incr_in_place(struct entry *e, const struct lh_store_val *by,
                                      struct lh_store_val *out)
{
    struct lh_store_val old = {.type = e->type};
    if (e->type == LH_STORE_INT)
        old.num.i = e->v.i;
    else if (e->type == LH_STORE_FLOAT)
        old.num.f = e->f;
    else
        return LH_STORE_NOT_NUMBER;
    *out = num_add(&old, by);
    if (out->type == LH_STORE_INT) {
        e->v.i = out->num.i;
    } else {
        e->f = out->num.f;
        if (e->type != LH_STORE_FLOAT) {
            STEP();
            e->type = LH_STORE_FLOAT;
        }
    }
    e->touched = 1;
    return LH_STORE_OK;
}

enum lh_store_rc lh_store_incr(void *arena, const char *key, size_t klen,
                               const struct lh_store_val *by, const struct lh_store_val *init,
                               int64_t ttl_ms, int64_t now_ms, struct lh_store_val *out)
{
    struct head *h = arena;
    if (klen > LH_STORE_KEY_MAX)
        return LH_STORE_BAD_KEY;
    uint64_t hash = key_hash(h, key, klen);
    uint32_t *slot = lookup(h, key, klen, hash);
    if (slot) {
        struct entry *e = entry_at(h, *slot);
        if (!is_expired(e, now_ms))
            return incr_in_place(e, by, out);
        h->expired++; /* an entry for this key fitted: so will the new one */
        unlink_entry(h, slot);
    } else if (!fits_empty(h, klen, 0)) {
        return LH_STORE_TOO_LARGE;
    }
    struct lh_store_val sum = num_add(init, by);
    enum lh_store_rc rc = put(h, key, klen, hash, &sum, deadline(ttl_ms, now_ms), now_ms);
    if (rc == LH_STORE_OK)
        *out = sum;
    return rc;
}

enum lh_store_rc lh_store_delete(void *arena, const char *key, size_t klen, int64_t now_ms)
{
    struct head *h = arena;
    enum lh_store_rc rc;
    uint32_t *slot = find(h, key, klen, now_ms, DROP_EXPIRED, &rc);
    if (!slot)
        return rc;
    unlink_entry(h, slot);
    return LH_STORE_OK;
}

enum lh_store_rc lh_store_expire(void *arena, const char *key, size_t klen, int64_t ttl_ms,
                                 int64_t now_ms)
{
    struct head *h = arena;
    enum lh_store_rc rc;
    uint32_t *slot = find(h, key, klen, now_ms, LEAVE_EXPIRED, &rc);
    if (!slot)
        return rc;
    struct entry *e = entry_at(h, *slot);
    int64_t expires = deadline(ttl_ms, now_ms);
    if (expires && expires < h->next_expiry)
        h->next_expiry = expires;
    STEP();
    e->expires = expires;
    return LH_STORE_OK;
}

enum lh_store_rc lh_store_ttl(void *arena, const char *key, size_t klen, int64_t now_ms,
                              int64_t *left_ms)
{
    struct head *h = arena;
    enum lh_store_rc rc;
    uint32_t *slot = find(h, key, klen, now_ms, LEAVE_EXPIRED, &rc);
    if (!slot)
        return rc;
    const struct entry *e = entry_at(h, *slot);
    *left_ms = e->expires ? e->expires - now_ms : -1; /* live: expires > now */
    return LH_STORE_OK;
}

enum lh_store_rc lh_store_keys(void *arena, const char *prefix, size_t plen, int64_t now_ms,
                               struct lh_store_buf *buf, size_t *count)
{
    struct head *h = arena;
    size_t n = 0;
    buf->len = 0;
    *count = 0;
    for (uint32_t u = h->newest; u; u = entry_at(h, u)->older) {
        struct entry *e = entry_at(h, u);
        if (is_expired(e, now_ms) || e->klen < plen ||
            (plen && memcmp(key_of(e), prefix, plen) != 0))
            continue;
        uint32_t klen = e->klen;
        if (buf_reserve(buf, buf->len + sizeof klen + klen) != 0) {
            buf->len = 0;
            return LH_STORE_NO_MEMORY;
        }
        memcpy(buf->data + buf->len, &klen, sizeof klen);
        if (klen)
            memcpy(buf->data + buf->len + sizeof klen, key_of(e), klen);
        buf->len += sizeof klen + klen;
        n++;
    }
    *count = n;
    return LH_STORE_OK;
}

void lh_store_stats(void *arena, struct lh_store_stats *st)
{
    struct head *h = arena;
    struct lh_shm_alloc_stats a;
    lh_shm_alloc_stats(heap_of(h), &a);
    *st = (struct lh_store_stats){
        .entries = h->entries,
        .bytes = a.used,
        .capacity = h->capacity,
        .evictions = h->evictions,
        .expired = h->expired,
        .sweeps = h->sweeps,
    };
}

/* ---- check --------------------------------------------------------------------- */

/* The entry at u when u is a live heap block that holds a sound entry: its sizes
 * inside the block, its type known, its hash that of its key. NULL otherwise. */
static struct entry *entry_ok(struct head *h, uint32_t u)
{
    size_t usable = lh_shm_alloc_usable(heap_of(h), (uint64_t)u * UNIT);
    if (usable < sizeof(struct entry))
        return NULL;
    struct entry *e = entry_at(h, u);
    size_t room = usable - sizeof(struct entry);
    if (e->klen > LH_STORE_KEY_MAX || e->klen > room || e->type < LH_STORE_STRING ||
        e->type > LH_STORE_TABLE || (e->type == LH_STORE_BOOL && (uint64_t)e->v.i > 1) ||
        (is_bytes(e->type) && e->v.len > room - e->klen) || e->touched > 1)
        return NULL;
    return (uint32_t)key_hash(h, key_of(e), e->klen) == e->hash ? e : NULL;
}

/* Every chain: sound entries of that bucket, at most `blocks` in all (so a loop
 * ends), none expiring before the hint. How many, or -1. */
static int64_t check_chains(struct head *h, uint64_t blocks)
{
    const uint32_t *buckets = buckets_of(h);
    uint64_t n = 0;
    for (uint64_t b = 0; b <= h->mask; b++) {
        for (uint32_t u = buckets[b]; u; u = entry_at(h, u)->chain) {
            const struct entry *e = entry_ok(h, u);
            if (++n > blocks || !e || (e->hash & h->mask) != b ||
                (e->expires && e->expires < h->next_expiry))
                return -1;
        }
    }
    return (int64_t)n;
}

/* The LRU list from the newest: n heap blocks, each linked both ways. A list linked
 * both ways holds no block twice, and the chains hold all n blocks of the heap: so
 * the list and the chains hold the same entries. */
static int check_lru(struct head *h, uint64_t n)
{
    uint64_t seen = 0;
    uint32_t prev = 0;
    for (uint32_t u = h->newest; u; prev = u, u = entry_at(h, u)->older) {
        if (++seen > n || lh_shm_alloc_usable(heap_of(h), (uint64_t)u * UNIT) == 0 ||
            entry_at(h, u)->newer != prev)
            return -1;
    }
    return seen == n && prev == h->oldest ? 0 : -1;
}

int lh_store_check(void *arena)
{
    struct head *h = arena;
    struct layout l;
    if (!h || (uintptr_t)h % UNIT || h->magic != STORE_MAGIC || layout_of(h->bytes, &l) != 0 ||
        h->heap != l.heap || h->heap_bytes != l.heap_bytes || h->mask != l.mask ||
        h->tag != head_tag(h) || h->largest > h->heap_bytes || h->capacity > h->heap_bytes)
        return -1;
    if (lh_shm_alloc_check(heap_of(h)) != 0)
        return -1;
    struct lh_shm_alloc_stats st;
    lh_shm_alloc_stats(heap_of(h), &st);
    if (st.total != h->heap_bytes)
        return -1;
    int64_t n = check_chains(h, st.blocks);
    if (n < 0 || (uint64_t)n != st.blocks || (uint64_t)n != h->entries)
        return -1;
    return check_lru(h, (uint64_t)n);
}
