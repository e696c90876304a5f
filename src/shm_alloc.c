/* shm_alloc.c - the allocator for one fixed arena. See shm_alloc.h.
 *
 * Two-level segregated fit (TLSF, Masmano et al. 2004) with boundary tags. In
 * 16-byte units from base, the arena is
 *
 *   [control][block][block]...[block][end marker]
 *
 * The control part holds the sizes, the counters behind the stats, and the free
 * lists with their bitmaps. Each block opens with a 16-byte header: its size, the
 * size of the block just before it (so free finds both neighbours), its state, and a
 * tag hashing these with the block's own position, which a stray offset or a stale
 * header fails. A free block keeps its free-list links in its payload. Sizes and
 * positions are uint32 counts of units: offsets, never pointers.
 *
 * Free blocks sit in one list per size class: below 16 units one list per size,
 * above that each power of two is split into 16 classes, so a class spans 1/16 of
 * its smallest size. alloc rounds the request up to the next class boundary, where
 * any block fits, and the two bitmaps find the first non-empty list from there in
 * O(1); failing that it looks at a few blocks in the request's own class. The block
 * is split and the rest goes back. free merges the block with its free neighbours,
 * so no two free blocks are ever side by side.
 */
#include "shm_alloc.h"

#include <string.h>

#define UNIT 16u
#define SL_LOG2 4
#define SL_COUNT (1u << SL_LOG2)
#define FL_COUNT 29        /* first levels for every size below 2^32 units */
#define MIN_UNITS 2u       /* a header and the two free-list links */
#define SCAN_MAX 8         /* blocks alloc looks at in the request's own class */
#define ST_FREE 0x46726565u
#define ST_USED 0x55736564u
#define CTL_MAGIC 0x6c68616c6c6f6331ull

/* At the start of every block; the end marker is one with size 0, always used. */
struct hdr {
    uint32_t size;  /* units, this header included */
    uint32_t prev;  /* size of the block just before; 0 for the first block */
    uint32_t state; /* ST_FREE or ST_USED */
    uint32_t tag;   /* hdr_tag() of the fields above and the block's position */
};

/* In a free block's payload: its neighbours in its free list, 0 for none. */
struct links {
    uint32_t next, prev;
};

/* At base: what alloc, free and stats need, so every block is after it. */
struct ctl {
    uint64_t magic;
    uint64_t bytes;   /* as given to init */
    uint64_t end;     /* where the end marker is, units */
    uint64_t tag;     /* ctl_tag() of the three above */
    uint64_t used_units, used_blocks, free_units, free_blocks;
    uint32_t fl_map;                    /* bit fl: sl_map[fl] != 0 */
    uint32_t sl_map[FL_COUNT];          /* bit sl: head[fl][sl] != 0 */
    uint32_t head[FL_COUNT][SL_COUNT];  /* first block of each free list */
};

#define CTL_UNITS ((uint32_t)((sizeof(struct ctl) + UNIT - 1) / UNIT))

_Static_assert(sizeof(struct hdr) == UNIT, "a header is one unit");
_Static_assert(sizeof(struct links) <= (MIN_UNITS - 1) * UNIT, "links fit a payload");
_Static_assert(LH_SHM_ALLOC_MIN > (CTL_UNITS + MIN_UNITS + 1) * UNIT, "room for a block");

/* ---- headers --------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 32);
}

static uint32_t hdr_tag(uint32_t at, const struct hdr *h)
{
    uint64_t a = (uint64_t)at << 32 | h->size, b = (uint64_t)h->prev << 32 | h->state;
    return (uint32_t)mix(mix(a ^ 0x5348414c4c4f4331ull) ^ b);
}

static uint64_t ctl_tag(const struct ctl *c)
{
    return mix(mix(mix(c->magic) ^ c->bytes) ^ c->end);
}

static struct ctl *ctl_of(void *base)
{
    return base;
}

static struct hdr *hdr_at(void *base, uint32_t at)
{
    return (struct hdr *)((char *)base + (uint64_t)at * UNIT);
}

static struct links *links_at(void *base, uint32_t at)
{
    return (struct links *)((char *)base + ((uint64_t)at + 1) * UNIT);
}

static void hdr_set(void *base, uint32_t at, uint32_t size, uint32_t prev, uint32_t state)
{
    struct hdr *h = hdr_at(base, at);
    h->size = size;
    h->prev = prev;
    h->state = state;
    h->tag = hdr_tag(at, h);
}

static int link_ok(const struct ctl *c, uint32_t at)
{
    return at == 0 || (at >= CTL_UNITS && at < c->end);
}

/* The header at `at` when it is one this allocator wrote and still stands by: a
 * block inside the arena, or the end marker; a free block's links inside too. NULL
 * otherwise. Only reads, and only inside the arena. */
static struct hdr *blk_get(void *base, uint64_t at)
{
    const struct ctl *c = ctl_of(base);
    if (at < CTL_UNITS || at > c->end)
        return NULL;
    struct hdr *h = hdr_at(base, (uint32_t)at);
    if (h->tag != hdr_tag((uint32_t)at, h))
        return NULL;
    if (at == c->end)
        return h->size == 0 && h->state == ST_USED ? h : NULL;
    if (h->size < MIN_UNITS || at + h->size > c->end)
        return NULL;
    if (h->state == ST_USED)
        return h;
    const struct links *l = links_at(base, (uint32_t)at);
    return h->state == ST_FREE && link_ok(c, l->next) && link_ok(c, l->prev) ? h : NULL;
}

/* The position of the live block whose payload is at off, with both neighbours
 * sound and agreeing with it; 0 when there is none. */
static uint32_t used_block(void *base, uint64_t off)
{
    uint64_t at = off / UNIT - 1;
    struct hdr *h = off % UNIT == 0 && off >= UNIT ? blk_get(base, at) : NULL;
    if (!h || h->state != ST_USED || at == ctl_of(base)->end)
        return 0;
    const struct hdr *next = blk_get(base, at + h->size);
    if (!next || next->prev != h->size)
        return 0;
    if (h->prev == 0)
        return at == CTL_UNITS ? (uint32_t)at : 0;
    const struct hdr *prev = at - h->prev >= CTL_UNITS ? blk_get(base, at - h->prev) : NULL;
    return prev && prev->size == h->prev ? (uint32_t)at : 0;
}

/* ---- free lists -------------------------------------------------------------- */

static unsigned fls32(uint32_t v)
{
    return 31u - (unsigned)__builtin_clz(v);
}

/* The size class of u units. */
static void class_of(uint32_t u, unsigned *fl, unsigned *sl)
{
    if (u < SL_COUNT) {
        *fl = 0;
        *sl = u;
        return;
    }
    unsigned f = fls32(u);
    *fl = f - SL_LOG2 + 1;
    *sl = (u >> (f - SL_LOG2)) - SL_COUNT;
}

static void list_insert(void *base, uint32_t at, uint32_t size)
{
    struct ctl *c = ctl_of(base);
    unsigned fl, sl;
    class_of(size, &fl, &sl);
    struct links *l = links_at(base, at);
    l->prev = 0;
    l->next = c->head[fl][sl];
    if (l->next)
        links_at(base, l->next)->prev = at;
    c->head[fl][sl] = at;
    c->sl_map[fl] |= 1u << sl;
    c->fl_map |= 1u << fl;
    c->free_units += size;
    c->free_blocks++;
}

static void list_remove(void *base, uint32_t at, uint32_t size)
{
    struct ctl *c = ctl_of(base);
    unsigned fl, sl;
    class_of(size, &fl, &sl);
    const struct links *l = links_at(base, at);
    if (l->prev)
        links_at(base, l->prev)->next = l->next;
    else
        c->head[fl][sl] = l->next;
    if (l->next)
        links_at(base, l->next)->prev = l->prev;
    if (!c->head[fl][sl]) {
        c->sl_map[fl] &= ~(1u << sl);
        if (!c->sl_map[fl])
            c->fl_map &= ~(1u << fl);
    }
    c->free_units -= size;
    c->free_blocks--;
}

/* The head of the first non-empty list from class (fl, sl) up; 0 when none. */
static uint32_t first_from(const struct ctl *c, unsigned fl, unsigned sl)
{
    uint32_t m = c->sl_map[fl] & (~0u << sl);
    if (!m) {
        uint32_t f = fl + 1 < FL_COUNT ? c->fl_map & (~0u << (fl + 1)) : 0;
        if (!f)
            return 0;
        fl = (unsigned)__builtin_ctz(f);
        m = c->sl_map[fl];
    }
    return m ? c->head[fl][__builtin_ctz(m)] : 0; /* m is 0 only in a broken arena */
}

/* A block of the largest size among the first SCAN_MAX of class (fl, sl) when it has
 * at least u units; 0 when none has. */
static uint32_t scan_class(void *base, unsigned fl, unsigned sl, uint32_t u)
{
    uint32_t at = ctl_of(base)->head[fl][sl], best = 0, best_size = 0;
    for (int i = 0; at && i < SCAN_MAX; i++) {
        const struct hdr *h = blk_get(base, at);
        if (!h || h->state != ST_FREE)
            return 0;
        if (h->size > best_size) {
            best = at;
            best_size = h->size;
        }
        at = links_at(base, at)->next;
    }
    return best_size >= u ? best : 0;
}

/* A free block of at least u units, or 0. */
static uint32_t find_free(void *base, uint32_t u)
{
    const struct ctl *c = ctl_of(base);
    unsigned fl, sl;
    uint64_t up = u < SL_COUNT ? u : u + (1ull << (fls32(u) - SL_LOG2)) - 1;
    uint32_t at = 0;
    if (up <= UINT32_MAX) {
        class_of((uint32_t)up, &fl, &sl);
        at = first_from(c, fl, sl);
    }
    if (!at) {
        class_of(u, &fl, &sl);
        at = scan_class(base, fl, sl, u);
    }
    const struct hdr *h = at ? blk_get(base, at) : NULL;
    return h && h->state == ST_FREE && h->size >= u ? at : 0;
}

/* ---- alloc and free ------------------------------------------------------------ */

int lh_shm_alloc_init(void *base, size_t bytes)
{
    if (!base || (uintptr_t)base % UNIT || bytes < LH_SHM_ALLOC_MIN ||
        (uint64_t)bytes > LH_SHM_ALLOC_MAX)
        return -1;
    struct ctl *c = ctl_of(base);
    memset(c, 0, sizeof *c);
    c->magic = CTL_MAGIC;
    c->bytes = bytes;
    c->end = bytes / UNIT - 1;
    c->tag = ctl_tag(c);
    uint32_t size = (uint32_t)c->end - CTL_UNITS;
    hdr_set(base, CTL_UNITS, size, 0, ST_FREE);
    hdr_set(base, (uint32_t)c->end, 0, size, ST_USED);
    list_insert(base, CTL_UNITS, size);
    return 0;
}

/* Tell the block at next that the one before it now has prev units. */
static void set_prev(void *base, uint32_t next, uint32_t prev)
{
    const struct hdr *h = hdr_at(base, next);
    hdr_set(base, next, h->size, prev, h->state);
}

uint64_t lh_shm_alloc(void *base, size_t n)
{
    struct ctl *c = ctl_of(base);
    if (n == 0 || (uint64_t)n >= c->end * UNIT) /* and no sum below overflows */
        return 0;
    uint64_t want = ((uint64_t)n + UNIT - 1) / UNIT + 1;
    uint32_t u = want < MIN_UNITS ? MIN_UNITS : (uint32_t)want;
    uint32_t at = find_free(base, u);
    if (!at)
        return 0;
    const struct hdr *h = hdr_at(base, at);
    uint32_t size = h->size, prev = h->prev;
    list_remove(base, at, size);
    if (size - u >= MIN_UNITS) {
        hdr_set(base, at + u, size - u, u, ST_FREE);
        set_prev(base, at + size, size - u);
        list_insert(base, at + u, size - u);
        size = u;
    }
    hdr_set(base, at, size, prev, ST_USED);
    c->used_units += size;
    c->used_blocks++;
    return ((uint64_t)at + 1) * UNIT;
}

int lh_shm_free(void *base, uint64_t off)
{
    if (off == 0)
        return 0;
    uint32_t at = used_block(base, off);
    if (!at)
        return -1;
    struct ctl *c = ctl_of(base);
    struct hdr *h = hdr_at(base, at), *next = hdr_at(base, at + h->size);
    uint32_t size = h->size, prev = h->prev;
    c->used_units -= size;
    c->used_blocks--;
    if (next->state == ST_FREE) {
        list_remove(base, at + size, next->size);
        size += next->size;
        memset(next, 0, sizeof *next); /* stale headers never pass blk_get */
    }
    if (prev && hdr_at(base, at - prev)->state == ST_FREE) {
        list_remove(base, at - prev, prev);
        memset(h, 0, sizeof *h);
        at -= prev;
        size += prev;
        prev = hdr_at(base, at)->prev;
    }
    hdr_set(base, at, size, prev, ST_FREE);
    set_prev(base, at + size, size);
    list_insert(base, at, size);
    return 0;
}

size_t lh_shm_alloc_usable(void *base, uint64_t off)
{
    uint32_t at = off ? used_block(base, off) : 0;
    return at ? (size_t)(hdr_at(base, at)->size - 1) * UNIT : 0;
}

/* ---- stats and check ----------------------------------------------------------- */

/* What lh_shm_alloc grants at most: any request whose class is below the top free
 * class (it rounds up into it at worst), else what scan_class finds there. */
static size_t largest_free(void *base)
{
    const struct ctl *c = ctl_of(base);
    if (!c->fl_map || c->fl_map >> FL_COUNT || !c->sl_map[fls32(c->fl_map)])
        return 0;
    unsigned fl = fls32(c->fl_map), sl = fls32(c->sl_map[fl]);
    uint32_t at = scan_class(base, fl, sl, 0);
    const struct hdr *h = at ? blk_get(base, at) : NULL;
    return h ? (size_t)(h->size - 1) * UNIT : 0;
}

void lh_shm_alloc_stats(void *base, struct lh_shm_alloc_stats *st)
{
    const struct ctl *c = ctl_of(base);
    st->total = c->bytes;
    st->used = c->used_units * UNIT;
    st->free = c->free_units * UNIT;
    st->overhead = st->total - st->used - st->free;
    st->largest_free = largest_free(base);
    st->blocks = c->used_blocks;
    st->free_blocks = c->free_blocks;
}

/* Every block from the first to the end marker: sound, linked to the one before,
 * no two free ones side by side, and the counters agree. */
static int check_blocks(void *base)
{
    const struct ctl *c = ctl_of(base);
    uint64_t at = CTL_UNITS, prev = 0, units[2] = {0, 0}, count[2] = {0, 0};
    int was_free = 0;
    while (at < c->end) {
        const struct hdr *h = blk_get(base, at);
        if (!h || h->prev != prev || (was_free && h->state == ST_FREE))
            return -1;
        was_free = h->state == ST_FREE;
        units[was_free] += h->size;
        count[was_free]++;
        prev = h->size;
        at += h->size;
    }
    const struct hdr *end = blk_get(base, at);
    if (!end || at != c->end || end->prev != prev)
        return -1;
    return units[0] == c->used_units && count[0] == c->used_blocks &&
                   units[1] == c->free_units && count[1] == c->free_blocks
               ? 0
               : -1;
}

/* One free list: free blocks of its class, linked both ways; their number, or -1.
 * At most `left` entries, so that a loop in the links ends. */
static long check_list(void *base, unsigned fl, unsigned sl, uint64_t left)
{
    uint32_t at = ctl_of(base)->head[fl][sl], prev = 0;
    long n = 0;
    for (; at; n++, prev = at, at = links_at(base, at)->next) {
        const struct hdr *h = blk_get(base, at);
        unsigned hfl, hsl;
        if (!h || h->state != ST_FREE || (uint64_t)n >= left)
            return -1;
        class_of(h->size, &hfl, &hsl);
        if (hfl != fl || hsl != sl || links_at(base, at)->prev != prev)
            return -1;
    }
    return n;
}

/* Every free list, and the bitmaps: each free block is in its class's list. */
static int check_lists(void *base)
{
    const struct ctl *c = ctl_of(base);
    uint64_t seen = 0;
    if (c->fl_map >> FL_COUNT)
        return -1;
    for (unsigned fl = 0; fl < FL_COUNT; fl++) {
        if (!!(c->fl_map & 1u << fl) != !!c->sl_map[fl])
            return -1;
        for (unsigned sl = 0; sl < SL_COUNT; sl++) {
            long n = check_list(base, fl, sl, c->free_blocks - seen);
            if (n < 0 || !!(c->sl_map[fl] & 1u << sl) != !!n)
                return -1;
            seen += (uint64_t)n;
        }
    }
    return seen == c->free_blocks ? 0 : -1;
}

int lh_shm_alloc_check(void *base)
{
    const struct ctl *c = ctl_of(base);
    if (!c || (uintptr_t)c % UNIT || c->magic != CTL_MAGIC || c->tag != ctl_tag(c) ||
        c->bytes < LH_SHM_ALLOC_MIN || c->bytes > LH_SHM_ALLOC_MAX ||
        c->end != c->bytes / UNIT - 1)
        return -1;
    return check_blocks(base) == 0 && check_lists(base) == 0 ? 0 : -1;
}
