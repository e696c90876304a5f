/* Unit tests for shm_alloc.c: the allocator for one fixed arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shm_alloc.h"
#include "test_util.h"

#define KIB ((size_t)1024)

/* ---- helpers ----------------------------------------------------------------- */

static void *arena_new(size_t bytes)
{
    void *base = NULL;
    assert_int_equal(posix_memalign(&base, 64, bytes), 0);
    memset(base, 0xee, bytes); /* no zeroed memory to lean on */
    assert_int_equal(lh_shm_alloc_init(base, bytes), 0);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    return base;
}

static struct lh_shm_alloc_stats stats(void *base)
{
    struct lh_shm_alloc_stats st;
    lh_shm_alloc_stats(base, &st);
    assert_int_equal(st.total, st.used + st.free + st.overhead);
    return st;
}

static void fill(void *base, uint64_t off, size_t n, uint32_t seed)
{
    uint8_t *p = lh_shm_ptr(base, off);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(seed, i);
}

static void verify(void *base, uint64_t off, size_t n, uint32_t seed)
{
    const uint8_t *p = lh_shm_ptr(base, off);
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(seed, i))
            fail_msg("block at %llu (%zu bytes) overwritten at byte %zu",
                     (unsigned long long)off, n, i);
}

/* ---- init and sizes ------------------------------------------------------------ */

static void test_init_bounds(void **state)
{
    (void)state;
    void *buf = NULL;
    assert_int_equal(posix_memalign(&buf, 64, 256 * KIB), 0);
    assert_int_equal(lh_shm_alloc_init(NULL, 256 * KIB), -1);
    assert_int_equal(lh_shm_alloc_init((char *)buf + 8, 128 * KIB), -1);
    assert_int_equal(lh_shm_alloc_init(buf, LH_SHM_ALLOC_MIN - 1), -1);
    if (SIZE_MAX > LH_SHM_ALLOC_MAX) /* refused before a byte is written */
        assert_int_equal(lh_shm_alloc_init(buf, (size_t)LH_SHM_ALLOC_MAX + 1), -1);
    assert_int_equal(lh_shm_alloc_init(buf, LH_SHM_ALLOC_MIN), 0);
    assert_int_equal(lh_shm_alloc_check(buf), 0);
    /* an odd size: the tail that is not a whole unit is overhead */
    assert_int_equal(lh_shm_alloc_init(buf, 200 * KIB + 7), 0);
    assert_int_equal(lh_shm_alloc_check(buf), 0);
    struct lh_shm_alloc_stats st = stats(buf);
    assert_int_equal(st.total, 200 * KIB + 7);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.blocks, 0);
    assert_int_equal(st.free_blocks, 1);
    assert_true(st.overhead < 4 * KIB);
    assert_int_equal(st.largest_free, st.free - 16);
    free(buf);
}

static void test_alignment_and_usable(void **state)
{
    (void)state;
    void *base = arena_new(1024 * KIB);
    uint64_t offs[700];
    size_t total = 0;
    for (size_t n = 1; n <= 700; n++) {
        uint64_t off = lh_shm_alloc(base, n);
        assert_true(off > 0);
        assert_int_equal(off % 16, 0);
        assert_int_equal((uintptr_t)lh_shm_ptr(base, off) % 16, 0);
        size_t usable = lh_shm_alloc_usable(base, off);
        assert_true(usable >= n);
        assert_true(usable <= n + 31);
        memset(lh_shm_ptr(base, off), (int)n, usable); /* the whole of it is ours */
        offs[n - 1] = off;
        total += usable + 16;
    }
    assert_int_equal(lh_shm_alloc_check(base), 0);
    struct lh_shm_alloc_stats st = stats(base);
    assert_int_equal(st.blocks, 700);
    assert_int_equal(st.used, total);
    for (size_t i = 0; i < 700; i += 2) /* every other one: no two frees merge */
        assert_int_equal(lh_shm_free(base, offs[i]), 0);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    for (size_t i = 1; i < 700; i += 2) {
        const uint8_t *p = lh_shm_ptr(base, offs[i]);
        assert_int_equal(p[0], (uint8_t)(i + 1));
        assert_int_equal(p[lh_shm_alloc_usable(base, offs[i]) - 1], (uint8_t)(i + 1));
        assert_int_equal(lh_shm_free(base, offs[i]), 0);
    }
    assert_int_equal(lh_shm_alloc_check(base), 0);
    st = stats(base);
    assert_int_equal(st.used, 0);
    assert_int_equal(st.free_blocks, 1);
    free(base);
}

/* n = 0, n beyond the arena, n just beyond the largest free block: 0, and the arena
 * is left byte for byte as it was */
static void test_zero_and_too_large(void **state)
{
    (void)state;
    size_t bytes = 128 * KIB;
    void *base = arena_new(bytes);
    uint64_t keep = lh_shm_alloc(base, 1000);
    assert_true(keep > 0);
    void *copy = malloc(bytes);
    memcpy(copy, base, bytes);
    struct lh_shm_alloc_stats st = stats(base);
    assert_int_equal(lh_shm_alloc(base, 0), 0);
    assert_int_equal(lh_shm_alloc(base, bytes), 0);
    assert_int_equal(lh_shm_alloc(base, bytes * 2), 0);
    assert_int_equal(lh_shm_alloc(base, SIZE_MAX), 0);
    assert_int_equal(lh_shm_alloc(base, SIZE_MAX - 15), 0);
    assert_int_equal(lh_shm_alloc(base, (size_t)UINT32_MAX * 16), 0);
    assert_int_equal(lh_shm_alloc(base, st.largest_free + 1), 0);
    assert_memory_equal(copy, base, bytes);
    uint64_t big = lh_shm_alloc(base, st.largest_free);
    assert_true(big > 0);
    assert_int_equal(stats(base).largest_free, 0); /* that was all of it */
    assert_int_equal(lh_shm_alloc(base, 1), 0);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    assert_int_equal(lh_shm_free(base, big), 0);
    assert_int_equal(lh_shm_free(base, keep), 0);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    free(copy);
    free(base);
}

/* ---- coalescing ------------------------------------------------------------------ */

/* Fill the arena with blocks of sizes from size_of until it says no, free them all in
 * a shuffled order: one free block again, and nearly the whole arena fits in one. */
static void fill_and_drain(void *base, size_t (*size_of)(size_t))
{
    struct lh_shm_alloc_stats empty = stats(base);
    static uint64_t offs[40000];
    size_t n = 0;
    for (size_t i = 0, refused = 0; refused < 64; i++) { /* until each size is refused */
        uint64_t off = lh_shm_alloc(base, size_of(i));
        refused = off ? 0 : refused + 1;
        if (off)
            offs[n++] = off;
    }
    assert_true(n > 50);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    struct lh_shm_alloc_stats full = stats(base);
    assert_int_equal(full.blocks, n);
    assert_int_equal(full.free, 0); /* even 1 byte was refused: not a byte is left */
    assert_int_equal(full.largest_free, 0);
    for (size_t i = n; i > 1; i--) {
        size_t j = rng() % i;
        uint64_t t = offs[i - 1];
        offs[i - 1] = offs[j];
        offs[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lh_shm_free(base, offs[i]), 0);
        if (i % 512 == 0)
            assert_int_equal(lh_shm_alloc_check(base), 0);
    }
    assert_int_equal(lh_shm_alloc_check(base), 0);
    struct lh_shm_alloc_stats st = stats(base);
    assert_int_equal(st.free_blocks, 1);
    assert_int_equal(st.free, empty.free);
    assert_int_equal(st.largest_free, empty.largest_free);
    assert_true(st.largest_free >= st.total - 4 * KIB);
    uint64_t all = lh_shm_alloc(base, st.largest_free);
    assert_true(all > 0);
    assert_int_equal(lh_shm_free(base, all), 0);
}

static size_t small_sizes(size_t i)
{
    return 1 + i % 64;
}

static size_t mixed_sizes(size_t i)
{
    static const size_t sz[] = {24, 300, 8, 5000, 100, 70000, 1, 2048, 4096, 17};
    return sz[i % 10];
}

static void test_fill_then_coalesce(void **state)
{
    (void)state;
    void *base = arena_new(512 * KIB);
    fill_and_drain(base, small_sizes);
    fill_and_drain(base, mixed_sizes);
    fill_and_drain(base, small_sizes);
    free(base);
}

/* ---- blocks larger than a page ----------------------------------------------------- */

static void test_large_blocks(void **state)
{
    (void)state;
    void *base = arena_new(1536 * KIB);
    static const size_t sz[] = {4096, 4097, 8191, 65536, 65537, 300000, 1000000};
    uint64_t offs[7];
    for (int i = 0; i < 7; i++) {
        offs[i] = lh_shm_alloc(base, sz[i]);
        assert_true(offs[i] > 0);
        assert_true(lh_shm_alloc_usable(base, offs[i]) >= sz[i]);
        fill(base, offs[i], sz[i], (uint32_t)i);
    }
    for (int i = 0; i < 7; i++)
        verify(base, offs[i], sz[i], (uint32_t)i);
    assert_int_equal(lh_shm_alloc(base, 1000000), 0); /* 1.45 MB taken: no room */
    assert_int_equal(lh_shm_free(base, offs[5]), 0);  /* 300000 + 65537 + 65536 ... */
    assert_int_equal(lh_shm_free(base, offs[3]), 0);
    assert_int_equal(lh_shm_free(base, offs[4]), 0); /* ... merge into one run */
    assert_int_equal(stats(base).free_blocks, 2);
    uint64_t again = lh_shm_alloc(base, 300000 + 65536 + 65536); /* the merged run */
    assert_int_equal(again, offs[3]);
    fill(base, again, 300000 + 65536 + 65536, 99);
    for (int i = 0; i < 7; i++)
        if (i < 3 || i == 6)
            verify(base, offs[i], sz[i], (uint32_t)i);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    free(base);
}

/* ---- random alloc/free against a model -------------------------------------------- */

struct live {
    uint64_t off;
    size_t n;
    uint32_t seed;
};

static size_t random_size(void)
{
    uint64_t r = rng();
    switch (r % 50) {
    case 0:
        return 16 * KIB + r / 64 % (48 * KIB); /* rare: up to 64 KiB */
    case 1: case 2: case 3: case 4:
        return 2 * KIB + r / 64 % (14 * KIB);
    case 5: case 6: case 7: case 8: case 9: case 10: case 11: case 12: case 13: case 14:
        return 129 + r / 64 % 1920;
    default:
        return 1 + r / 64 % 128;
    }
}

/* The model's idea of the stats: live blocks and the bytes they take. */
static void check_model(void *base, const struct live *slot, size_t nslots)
{
    size_t blocks = 0, used = 0;
    for (size_t i = 0; i < nslots; i++) {
        if (!slot[i].off)
            continue;
        size_t usable = lh_shm_alloc_usable(base, slot[i].off);
        assert_true(usable >= slot[i].n && usable <= slot[i].n + 31);
        blocks++;
        used += usable + 16;
    }
    struct lh_shm_alloc_stats st = stats(base);
    assert_int_equal(st.blocks, blocks);
    assert_int_equal(st.used, used);
}

/* One step: free a live slot (its bytes intact first) or fill an empty one. alloc
 * says no exactly when the stats said that n would not fit. */
static void step(void *base, struct live *s, uint32_t seed)
{
    if (s->off) {
        verify(base, s->off, s->n, s->seed);
        assert_int_equal(lh_shm_free(base, s->off), 0);
        assert_int_equal(lh_shm_free(base, s->off), -1);
        s->off = 0;
        return;
    }
    size_t n = random_size();
    size_t largest = stats(base).largest_free;
    uint64_t off = lh_shm_alloc(base, n);
    assert_int_equal(off == 0, n > largest);
    if (!off)
        return;
    *s = (struct live){off, n, seed};
    fill(base, off, n, seed);
}

static void run_steps(void *base, struct live *slot, size_t nslots, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        step(base, &slot[rng() % nslots], i);
        if (i % 64 == 0) {
            assert_int_equal(lh_shm_alloc_check(base), 0);
            check_model(base, slot, nslots);
        }
    }
}

static void drain(void *base, struct live *slot, size_t nslots)
{
    for (size_t i = 0; i < nslots; i++)
        if (slot[i].off)
            step(base, &slot[i], 0);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    assert_int_equal(stats(base).free_blocks, 1);
}

static void test_random_against_model(void **state)
{
    (void)state;
    enum { NSLOTS = 300 };
    static struct live slot[NSLOTS];
    memset(slot, 0, sizeof slot);
    void *base = arena_new(256 * KIB); /* full now and then */
    size_t refused = 0;
    for (uint32_t i = 1; i <= 40000; i++) {
        struct live *s = &slot[rng() % NSLOTS];
        int was_empty = !s->off;
        step(base, s, i);
        refused += was_empty && !s->off;
        if (i % 64 == 0) {
            assert_int_equal(lh_shm_alloc_check(base), 0);
            check_model(base, slot, NSLOTS);
        }
    }
    assert_true(refused > 200); /* the full arena was exercised */
    drain(base, slot, NSLOTS);
    free(base);
}

/* ---- no pointers in the arena ------------------------------------------------------- */

/* Half the run at one address, the other half on a copy at another: the original is
 * scribbled over and freed, so that a pointer kept into it would show. */
static void test_two_addresses(void **state)
{
    (void)state;
    enum { NSLOTS = 200 };
    static struct live slot[NSLOTS];
    memset(slot, 0, sizeof slot);
    size_t bytes = 256 * KIB;
    void *a = arena_new(bytes);
    run_steps(a, slot, NSLOTS, 1, 6000);
    void *b = NULL;
    assert_int_equal(posix_memalign(&b, 16, bytes), 0);
    assert_true(b != a);
    memcpy(b, a, bytes);
    memset(a, 0xa5, bytes);
    free(a);
    assert_int_equal(lh_shm_alloc_check(b), 0);
    check_model(b, slot, NSLOTS);
    run_steps(b, slot, NSLOTS, 6000, 12000);
    drain(b, slot, NSLOTS);
    free(b);
}

/* ---- bad frees and a broken arena ------------------------------------------------------ */

static void test_bad_free(void **state)
{
    (void)state;
    void *base = arena_new(128 * KIB);
    uint64_t a = lh_shm_alloc(base, 100), b = lh_shm_alloc(base, 100);
    uint64_t c = lh_shm_alloc(base, 100), d = lh_shm_alloc(base, 100);
    assert_true(a && b && c && d);
    assert_int_equal(lh_shm_free(base, 0), 0); /* like free(NULL) */
    assert_int_equal(lh_shm_free(base, b + 1), -1);
    assert_int_equal(lh_shm_free(base, b + 16), -1); /* inside a block */
    assert_int_equal(lh_shm_free(base, b - 16), -1);
    assert_int_equal(lh_shm_free(base, 8), -1);
    assert_int_equal(lh_shm_free(base, 16), -1); /* the allocator's own table */
    assert_int_equal(lh_shm_free(base, 128 * KIB), -1);
    assert_int_equal(lh_shm_free(base, UINT64_MAX - 15), -1);
    assert_int_equal(lh_shm_alloc_usable(base, b + 16), 0);
    /* a copy of a real header inside another block's data is not a block */
    uint8_t *pc = lh_shm_ptr(base, c);
    memcpy(pc + 16, pc - 16, 16);
    assert_int_equal(lh_shm_free(base, c + 32), -1);
    /* nor is a copy of three neighbours, each header agreeing with the next */
    uint64_t p1 = lh_shm_alloc(base, 16), p2 = lh_shm_alloc(base, 16);
    uint64_t p3 = lh_shm_alloc(base, 16), x = lh_shm_alloc(base, 1000);
    assert_true(p2 == p1 + 32 && p3 == p2 + 32 && x);
    memcpy((char *)lh_shm_ptr(base, x) + 160, (char *)lh_shm_ptr(base, p1) - 16, 96);
    assert_int_equal(lh_shm_free(base, x + 160 + 48), -1);
    assert_int_equal(lh_shm_alloc_usable(base, x + 160 + 48), 0);
    /* double frees, also once the block has merged with a neighbour */
    assert_int_equal(lh_shm_free(base, b), 0);
    assert_int_equal(lh_shm_free(base, b), -1);
    assert_int_equal(lh_shm_alloc_usable(base, b), 0);
    assert_int_equal(lh_shm_free(base, a), 0); /* a and b merge */
    assert_int_equal(lh_shm_free(base, b), -1);
    assert_int_equal(lh_shm_free(base, a), -1);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    /* ... and once a new block covers where it was */
    uint64_t e = lh_shm_alloc(base, 200);
    assert_int_equal(e, a);
    assert_int_equal(lh_shm_free(base, b), -1);
    assert_int_equal(lh_shm_alloc_check(base), 0);
    struct lh_shm_alloc_stats st = stats(base);
    assert_int_equal(st.blocks, 7);
    free(base);
}

/* check finds a broken header, a broken free block, a broken table; alloc and free on
 * a broken arena refuse rather than write outside it */
static void test_check_finds_damage(void **state)
{
    (void)state;
    size_t bytes = 128 * KIB;
    void *base = arena_new(bytes);
    uint64_t a = lh_shm_alloc(base, 64), b = lh_shm_alloc(base, 64);
    uint64_t c = lh_shm_alloc(base, 64);
    assert_true(a && b && c);
    assert_int_equal(lh_shm_free(base, b), 0); /* b stays a free block on its own */
    void *good = malloc(bytes);
    memcpy(good, base, bytes);

    uint8_t *hc = (uint8_t *)lh_shm_ptr(base, c) - 16;
    hc[0] ^= 1; /* c's size */
    assert_int_equal(lh_shm_alloc_check(base), -1);
    assert_int_equal(lh_shm_free(base, c), -1);
    memcpy(base, good, bytes);

    uint32_t *links = lh_shm_ptr(base, b); /* a write after free into b */
    links[0] = links[1] = 0xffffffffu;
    assert_int_equal(lh_shm_alloc_check(base), -1);
    assert_int_equal(lh_shm_free(base, a), -1); /* would merge with b */
    assert_int_equal(lh_shm_free(base, c), -1);
    assert_int_equal(lh_shm_alloc(base, 64), 0); /* b's class */
    memcpy(base, good, bytes);

    memset(base, 0, 8); /* the table */
    assert_int_equal(lh_shm_alloc_check(base), -1);
    memcpy(base, good, bytes);
    ((uint8_t *)base)[100] ^= 0x40; /* somewhere in the counters, bitmaps or lists */
    assert_int_equal(lh_shm_alloc_check(base), -1);
    memcpy(base, good, bytes);

    assert_int_equal(lh_shm_alloc_check(base), 0);
    assert_int_equal(lh_shm_free(base, c), 0);
    assert_int_equal(lh_shm_free(base, a), 0);
    assert_int_equal(stats(base).free_blocks, 1);
    free(good);
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_bounds),
        cmocka_unit_test(test_alignment_and_usable),
        cmocka_unit_test(test_zero_and_too_large),
        cmocka_unit_test(test_fill_then_coalesce),
        cmocka_unit_test(test_large_blocks),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_two_addresses),
        cmocka_unit_test(test_bad_free),
        cmocka_unit_test(test_check_finds_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
