/* shm_alloc.h - a memory allocator for one fixed arena, such as the shared store's
 * part of the region all workers share. */
#ifndef LH_SHM_ALLOC_H
#define LH_SHM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/*
 * The arena holds offsets from its base, never a pointer, so it stays valid wherever
 * it is mapped (and after a copy). Nothing here locks: callers that share an arena
 * hold one lock around every call. Nothing here calls malloc.
 *
 * Blocks are 16-aligned (when base is) and cost a 16-byte header each; alloc,
 * free and usable take O(1) time whatever the arena holds. A header carries a
 * check of its fields and its position, and agrees with both neighbours', so that a
 * free of an offset that is not a live block (freed already, never allocated,
 * inside a block) fails and changes nothing.
 */

#define LH_SHM_ALLOC_MIN ((size_t)64 * 1024)         /* smallest arena */
#define LH_SHM_ALLOC_MAX ((uint64_t)UINT32_MAX * 16) /* largest arena, 64 GiB - 16 */

/* Lay out an empty allocator over [base, base + bytes), erasing whatever was there.
 * base 16-aligned, LH_SHM_ALLOC_MIN <= bytes <= LH_SHM_ALLOC_MAX. 0, or -1 when
 * these do not hold (then nothing is written). */
int lh_shm_alloc_init(void *base, size_t bytes);

/* In each of the functions below, base is an arena laid out by lh_shm_alloc_init
 * (here, or at another address before a fork or a copy). */

/* The offset from base (> 0, a multiple of 16) of a new block of at least n bytes;
 * 0 when n is 0 or no free block is large enough (the arena is left as it was). */
uint64_t lh_shm_alloc(void *base, size_t n);

/* Give back the block at off. 0 when freed, and when off is 0 (nothing to do); -1
 * when off is not a live block (nothing is changed). */
int lh_shm_free(void *base, uint64_t off);

/* Bytes the caller may use from off on: n <= usable <= n + 31 for the n it asked
 * for. 0 when off is not a live block. */
size_t lh_shm_alloc_usable(void *base, uint64_t off);

/* The address of off (NULL for 0), and the offset of an address in the arena. */
static inline void *lh_shm_ptr(void *base, uint64_t off)
{
    return off ? (char *)base + off : NULL;
}
static inline uint64_t lh_shm_off(void *base, const void *p)
{
    return p ? (uint64_t)((const char *)p - (const char *)base) : 0;
}

/* Where the arena's bytes are: total = used + free + overhead, always. */
struct lh_shm_alloc_stats {
    size_t total;        /* bytes given to lh_shm_alloc_init */
    size_t used;         /* bytes in live blocks, their headers included */
    size_t free;         /* bytes in free blocks, their headers included */
    size_t overhead;     /* the allocator's own table and end marker */
    size_t largest_free; /* the largest n lh_shm_alloc grants now (0: none) */
    size_t blocks;       /* live blocks */
    size_t free_blocks;  /* free blocks; never two side by side */
};

/* Fill *st. O(1). */
void lh_shm_alloc_stats(void *base, struct lh_shm_alloc_stats *st);

/* Walk the whole arena and check every invariant: the layout, each header, free
 * neighbours coalesced, the free lists and their bitmaps, the counts behind the
 * stats. 0 when all hold, -1 at the first that does not. It only reads, whatever
 * it finds: a caller that finds a broken arena (a process died inside a call) lays
 * it out again. O(blocks), for tests and that repair. */
int lh_shm_alloc_check(void *base);

#endif
