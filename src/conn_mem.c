/* conn_mem.c - where connections and their request buffers live. See server_int.h.
 *
 * Connections come from per-worker slabs of 64 KiB, mapped when needed and unmapped
 * when their last connection closes, so that the memory of 10,000 idle connections
 * goes back to the system once they are closed. From malloc it would not: libevent's
 * per-descriptor records, allocated between the connections and kept for reuse, pin
 * the pages (worker RSS after 10,000 connections closed: 3.2 MiB with slabs, 6.4 MiB
 * with calloc; the slabs save no measurable time). One empty slab is kept for the
 * next connection, so that connections coming one at a time cost no mmap and munmap.
 * And a worker keeps one request buffer for the next request, so a request that
 * arrives whole costs no malloc (250 to 370 instructions a request, 2 to 5 %,
 * tests/bench/callgrind.py). With LH_NO_POOLS (and under ASan) every connection and
 * buffer comes from calloc/malloc and goes back to free, so that the checkers see
 * each one. */
#include "server_int.h"
#include "sanitizer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- connection memory ---------------------------------------------------------- */
#define OWN_POOLS LH_POOLS

#define SLAB_BYTES (64 * 1024)

union slot {
    union slot *next_free;
    struct conn c;
};

struct slab {
    struct slab *prev, *next;     /* in the worker's list of slabs with room */
    union slot *free;             /* free slots */
    unsigned used;
    bool listed;
    _Alignas(max_align_t) union slot slots[];
};

#define SLAB_SLOTS ((SLAB_BYTES - sizeof(struct slab)) / sizeof(union slot))

static void slab_list(struct worker *w, struct slab *s)
{
    s->prev = NULL;
    s->next = w->slabs;
    if (w->slabs)
        w->slabs->prev = s;
    w->slabs = s;
    s->listed = true;
}

static void slab_unlist(struct worker *w, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        w->slabs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->listed = false;
}

struct conn *lh_conn_alloc(struct worker *w)
{
    if (!OWN_POOLS)
        return calloc(1, sizeof(struct conn));
    struct slab *s = w->slabs;
    if (!s) {
        s = w->spare;
        w->spare = NULL;
        if (!s) {
            s = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
            if (s == MAP_FAILED)
                return NULL;
            s->used = 0;
            s->free = NULL;
            for (size_t i = SLAB_SLOTS; i-- > 0;) {
                s->slots[i].next_free = s->free;
                s->free = &s->slots[i];
            }
        }
        slab_list(w, s);
    }
    union slot *slot = s->free;
    s->free = slot->next_free;
    s->used++;
    if (!s->free)
        slab_unlist(w, s);
    memset(&slot->c, 0, sizeof slot->c);
    slot->c.slab = s;
    return &slot->c;
}

void lh_conn_release(struct worker *w, struct conn *c)
{
    struct slab *s = c->slab;
    if (!s) {
        free(c);
        return;
    }
    union slot *slot = (union slot *)c;
    slot->next_free = s->free;
    s->free = slot;
    s->used--;
    if (!s->listed)
        slab_list(w, s);
    if (s->used > 0)
        return;
    slab_unlist(w, s);
    if (w->spare)
        munmap(s, SLAB_BYTES);
    else
        w->spare = s;
}

/* The connection is done with its request buffer (see above). */
void lh_conn_release_input(struct conn *c)
{
    struct worker *w = c->w;
    if (OWN_POOLS && c->in && c->in_cap == IN_INITIAL && !w->spare_in)
        w->spare_in = c->in;
    else
        free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
}

/* Make room for `need` bytes in total in c->in. 0 or -1. */
int lh_conn_reserve_input(struct conn *c, size_t need)
{
    if (need <= c->in_cap)
        return 0;
    if (!c->in && c->w->spare_in && need <= IN_INITIAL) {
        c->in = c->w->spare_in;
        c->w->spare_in = NULL;
        c->in_cap = IN_INITIAL;
        return 0;
    }
    size_t cap = c->in_cap ? c->in_cap : IN_INITIAL;
    while (cap < need)
        cap *= 2;
    if (cap > UINT32_MAX)
        return -1;
    char *p = realloc(c->in, cap);
    if (!p)
        return -1;
    c->in = p;
    c->in_cap = (uint32_t)cap;
    return 0;
}

void lh_conn_mem_worker_free(struct worker *w)
{
    if (w->spare)
        munmap(w->spare, SLAB_BYTES);
    free(w->spare_in);
    w->spare = NULL;
    w->spare_in = NULL;
}
