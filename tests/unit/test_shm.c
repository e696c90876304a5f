/* Unit tests for shm.c: the region shared by the master and the workers, its
 * connection caps, and their recovery when a worker dies, with or without the lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/shm_test.h"
#include "shm.h"

/* ---- helpers --------------------------------------------------------------------- */

/* An IPv4 address n (host order) as the IPv4-mapped IPv6 key the server builds. */
static struct lh_ipkey ip4(uint32_t n)
{
    struct lh_ipkey k = {.b = {[10] = 0xff, [11] = 0xff}};
    for (int i = 0; i < 4; i++)
        k.b[12 + i] = (uint8_t)(n >> (24 - 8 * i));
    return k;
}

static struct lh_shm *make(int workers, long max_connections, size_t arena_bytes)
{
    struct lh_shm_sizes sz = {workers, max_connections, arena_bytes};
    struct lh_shm *shm = lh_shm_create(&sz);
    assert_non_null(shm);
    return shm;
}

static uint32_t take(struct lh_shm *shm, int worker, const struct lh_ipkey *ip)
{
    uint32_t t = UINT32_MAX;
    assert_int_equal(lh_shm_conn_acquire(shm, worker, ip, 0, 0, &t), LH_SHM_OK);
    return t;
}

/* The next IPv4 key from *n on whose home slot is `slot`. */
static struct lh_ipkey with_home(struct lh_shm *shm, uint32_t slot, uint32_t *n)
{
    for (;; (*n)++) {
        struct lh_ipkey k = ip4(*n);
        if (lh_shm_test_home(shm, &k) == slot) {
            (*n)++;
            return k;
        }
    }
}

/* Whether table slot i holds k with count n. */
static void assert_slot(struct lh_shm *shm, uint32_t i, const struct lh_ipkey *k, long n)
{
    struct lh_ipkey got;
    assert_int_equal(lh_shm_test_slot(shm, i, &got), n);
    if (k)
        assert_memory_equal(&got, k, sizeof got);
}

/* Run fn(shm) in a child process and return its exit status (fn's result). */
static int in_child(struct lh_shm *shm, int (*fn)(struct lh_shm *))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(shm));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* ---- the region ------------------------------------------------------------------ */

static void test_create(void **state)
{
    (void)state;
    static const struct lh_shm_sizes bad[] = {
        {0, 10, 0}, {-1, 10, 0}, {1, 0, 0}, {1, -5, 0}, {1, (long)INT32_MAX + 1, 0},
        {1, 10, SIZE_MAX - 100},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        assert_null(lh_shm_create(&bad[i]));
        assert_true(errno == EINVAL || errno == ENOMEM);
    }
    static const long caps[][2] = {
        {1, 1024}, {512, 1024}, {513, 2048}, {10000, 32768}, {1L << 20, 1L << 21},
        {(1L << 20) + 1, 1L << 21},
    };
    for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
        struct lh_shm *shm = make(1, caps[i][0], 0);
        assert_int_equal(lh_shm_test_cap(shm), caps[i][1]);
        lh_shm_destroy(shm);
    }
    lh_shm_destroy(NULL);
}

static void test_workers_and_arena(void **state)
{
    (void)state;
    struct lh_shm *shm = make(3, 100, 100000);
    for (int i = 0; i < 3; i++) {
        struct lh_shm_worker *w = lh_shm_worker(shm, i);
        assert_non_null(w);
        assert_int_equal(w->pid, 0);
        assert_int_equal(w->beat_ms, 0);
        assert_int_equal(w->what[0], 0);
        if (i > 0)
            assert_true((char *)w >= (char *)lh_shm_worker(shm, i - 1) + sizeof *w);
        w->pid = 100 + i;
    }
    assert_null(lh_shm_worker(shm, 3));
    assert_null(lh_shm_worker(shm, -1));
    size_t n = 0;
    unsigned char *a = lh_shm_arena(shm, &n);
    assert_int_equal(n, 100000);
    assert_int_equal((uintptr_t)a % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(a[i], 0);
    memset(a, 0x5a, n); /* all of it is ours: ASan and valgrind would say otherwise */
    for (int i = 0; i < 3; i++)
        assert_int_equal(lh_shm_worker(shm, i)->pid, 100 + i);
    lh_shm_destroy(shm);
}

/* ---- the caps -------------------------------------------------------------------- */

static void test_acquire_release(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100, 0);
    struct lh_ipkey a = ip4(0x0a000001), b = ip4(0x0a000002);
    assert_int_equal(lh_shm_conn_count(shm), 0);
    assert_int_equal(lh_shm_ip_count(shm, &a), 0);
    uint32_t ta1 = take(shm, 0, &a), ta2 = take(shm, 0, &a), tb = take(shm, 1, &b);
    assert_int_not_equal(ta1, ta2);
    assert_int_equal(lh_shm_conn_count(shm), 3);
    assert_int_equal(lh_shm_ip_count(shm, &a), 2);
    assert_int_equal(lh_shm_ip_count(shm, &b), 1);
    lh_shm_conn_release(shm, 0, ta1);
    assert_int_equal(lh_shm_ip_count(shm, &a), 1);
    assert_int_equal(lh_shm_conn_count(shm), 2);
    lh_shm_conn_release(shm, 0, ta1); /* twice: ignored */
    lh_shm_conn_release(shm, 1, ta2); /* another worker's ticket: not counted there */
    lh_shm_conn_release(shm, 0, 99);  /* never given */
    lh_shm_conn_release(shm, 7, tb);  /* no such worker */
    assert_int_equal(lh_shm_ip_count(shm, &a), 1);
    assert_int_equal(lh_shm_conn_count(shm), 2);
    uint32_t ta3 = take(shm, 0, &a); /* the freed entry is used again */
    assert_int_equal(ta3, ta1);
    lh_shm_conn_release(shm, 0, ta2);
    lh_shm_conn_release(shm, 0, ta3);
    lh_shm_conn_release(shm, 1, tb);
    assert_int_equal(lh_shm_ip_count(shm, &a), 0);
    assert_int_equal(lh_shm_ip_count(shm, &b), 0);
    assert_int_equal(lh_shm_conn_count(shm), 0);
    uint32_t t = 12345;
    assert_int_equal(lh_shm_conn_acquire(shm, 2, &a, 0, 0, &t), LH_SHM_OVER_CONNECTIONS);
    assert_int_equal(t, 12345);
    lh_shm_destroy(shm);
}

static void test_max_connections(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 4, 0);
    uint32_t t[4], x = 777;
    for (int i = 0; i < 4; i++) {
        struct lh_ipkey k = ip4((uint32_t)i);
        assert_int_equal(lh_shm_conn_acquire(shm, i % 2, &k, 4, 0, &t[i]), LH_SHM_OK);
    }
    struct lh_ipkey k = ip4(99);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &k, 4, 0, &x), LH_SHM_OVER_CONNECTIONS);
    /* above the size it was made for, or none: the size it was made for */
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &k, 1000, 0, &x), LH_SHM_OVER_CONNECTIONS);
    assert_int_equal(lh_shm_conn_acquire(shm, 1, &k, 0, 0, &x), LH_SHM_OVER_CONNECTIONS);
    assert_int_equal(x, 777);
    assert_int_equal(lh_shm_ip_count(shm, &k), 0);
    assert_int_equal(lh_shm_conn_count(shm), 4);
    lh_shm_conn_release(shm, 1, t[1]);
    /* a lower cap, per call */
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &k, 3, 0, &x), LH_SHM_OVER_CONNECTIONS);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &k, 4, 0, &x), LH_SHM_OK);
    assert_int_equal(lh_shm_ip_count(shm, &k), 1);
    assert_int_equal(lh_shm_conn_count(shm), 4);
    lh_shm_destroy(shm);
}

static void test_per_client(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100, 0);
    struct lh_ipkey ips[5];
    uint32_t t[5][3];
    for (int i = 0; i < 5; i++) {
        ips[i] = ip4(0xc0a80000u + (uint32_t)i);
        for (int j = 0; j < 3; j++)
            assert_int_equal(lh_shm_conn_acquire(shm, j % 2, &ips[i], 100, 3, &t[i][j]),
                             LH_SHM_OK);
    }
    uint32_t x;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(lh_shm_conn_acquire(shm, 0, &ips[i], 100, 3, &x),
                         LH_SHM_OVER_PER_CLIENT);
        assert_int_equal(lh_shm_ip_count(shm, &ips[i]), 3);
    }
    assert_int_equal(lh_shm_conn_count(shm), 15);
    lh_shm_conn_release(shm, 1, t[2][1]); /* room for ips[2] only */
    assert_int_equal(lh_shm_conn_acquire(shm, 1, &ips[1], 100, 3, &x), LH_SHM_OVER_PER_CLIENT);
    assert_int_equal(lh_shm_conn_acquire(shm, 1, &ips[2], 100, 3, &x), LH_SHM_OK);
    assert_int_equal(lh_shm_conn_acquire(shm, 1, &ips[2], 100, 3, &x), LH_SHM_OVER_PER_CLIENT);
    /* the cap is per call; <= 0: none */
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &ips[3], 100, 4, &x), LH_SHM_OK);
    for (int j = 0; j < 10; j++)
        assert_int_equal(lh_shm_conn_acquire(shm, 0, &ips[4], 100, j % 2 - 1, &x), LH_SHM_OK);
    assert_int_equal(lh_shm_ip_count(shm, &ips[3]), 4);
    assert_int_equal(lh_shm_ip_count(shm, &ips[4]), 13);
    assert_int_equal(lh_shm_conn_count(shm), 15 + 1 + 10);
    lh_shm_destroy(shm);
}

static void test_v4_mapped_and_v6_distinct(void **state)
{
    (void)state;
    struct lh_shm *shm = make(1, 100, 0);
    struct lh_ipkey v4 = ip4(0x7f000001), v6 = v4, other = v4;
    v6.b[10] = v6.b[11] = 0; /* ::127.0.0.1, the IPv4-compatible form */
    other.b[0] = 0x20;       /* the same last 12 bytes, another prefix */
    uint32_t t;
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &v4, 0, 1, &t), LH_SHM_OK);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &v6, 0, 1, &t), LH_SHM_OK);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &other, 0, 1, &t), LH_SHM_OK);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &v6, 0, 1, &t), LH_SHM_OVER_PER_CLIENT);
    assert_int_equal(lh_shm_ip_count(shm, &v4), 1);
    assert_int_equal(lh_shm_ip_count(shm, &v6), 1);
    assert_int_equal(lh_shm_ip_count(shm, &other), 1);
    assert_int_equal(lh_shm_conn_count(shm), 3);
    lh_shm_destroy(shm);
}

/* ---- the per-IP table ------------------------------------------------------------ */

/* max_connections 512 gives 1024 slots, so acquire alone cannot fill them: 1023
 * come in through the table-only hook, the last one through acquire. */
static void test_full_table(void **state)
{
    (void)state;
    struct lh_shm *shm = make(1, 512, 0);
    uint32_t cap = lh_shm_test_cap(shm), t, tx[2];
    assert_int_equal(cap, 1024);
    assert_int_equal(lh_shm_lock(shm), 0);
    for (uint32_t i = 0; i < cap - 1; i++) {
        struct lh_ipkey k = ip4(0x01000000u + i);
        assert_int_equal(lh_shm_test_table_add(shm, &k), 0);
    }
    lh_shm_unlock(shm);
    struct lh_ipkey x = ip4(0x02000000), y = ip4(0x02000001), old = ip4(0x01000005);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &x, 0, 0, &tx[0]), LH_SHM_OK);
    for (uint32_t i = 0; i < cap; i++) {
        struct lh_ipkey k;
        assert_int_not_equal(lh_shm_test_slot(shm, i, &k), 0); /* really full */
    }
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &y, 0, 0, &t), LH_SHM_OVER_PER_CLIENT);
    assert_int_equal(lh_shm_ip_count(shm, &y), 0);
    assert_int_equal(lh_shm_conn_count(shm), 1);
    /* IPs already in it still get counted */
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &x, 0, 0, &tx[1]), LH_SHM_OK);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &old, 0, 0, &t), LH_SHM_OK);
    assert_int_equal(lh_shm_ip_count(shm, &old), 2);
    /* x's slot empties (a backward shift in a full table), and then there is room */
    lh_shm_conn_release(shm, 0, tx[0]);
    lh_shm_conn_release(shm, 0, tx[1]);
    assert_int_equal(lh_shm_ip_count(shm, &x), 0);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &y, 0, 0, &t), LH_SHM_OK);
    assert_int_equal(lh_shm_ip_count(shm, &y), 1);
    for (uint32_t i = 0; i < cap - 1; i++) { /* all still found */
        struct lh_ipkey k = ip4(0x01000000u + i);
        assert_int_equal(lh_shm_ip_count(shm, &k), i == 5 ? 2 : 1);
    }
    lh_shm_destroy(shm);
}

/* Keys whose home is the last slot probe on into slot 0; deleting the first one
 * shifts the others back across the wrap. */
static void test_wrap_around(void **state)
{
    (void)state;
    struct lh_shm *shm = make(1, 100, 0);
    uint32_t last = lh_shm_test_cap(shm) - 1, n = 0;
    struct lh_ipkey k1 = with_home(shm, last, &n), k2 = with_home(shm, last, &n),
                    k3 = with_home(shm, last, &n), k4 = with_home(shm, 0, &n),
                    k5 = with_home(shm, 2, &n), k6 = with_home(shm, 4, &n);
    uint32_t t1 = take(shm, 0, &k1), t2 = take(shm, 0, &k2);
    take(shm, 0, &k3);
    take(shm, 0, &k4);
    take(shm, 0, &k5);
    take(shm, 0, &k6);
    take(shm, 0, &k6);
    assert_slot(shm, last, &k1, 1);
    assert_slot(shm, 0, &k2, 1);
    assert_slot(shm, 1, &k3, 1);
    assert_slot(shm, 2, &k4, 1);
    assert_slot(shm, 3, &k5, 1);
    assert_slot(shm, 4, &k6, 2);
    lh_shm_conn_release(shm, 0, t1);
    assert_slot(shm, last, &k2, 1); /* moved back across the wrap */
    assert_slot(shm, 0, &k3, 1);
    assert_slot(shm, 1, &k4, 1);
    assert_slot(shm, 2, &k5, 1);
    assert_slot(shm, 3, NULL, 0);
    assert_slot(shm, 4, &k6, 2); /* at home: stays */
    assert_int_equal(lh_shm_ip_count(shm, &k1), 0);
    assert_int_equal(lh_shm_ip_count(shm, &k2), 1);
    assert_int_equal(lh_shm_ip_count(shm, &k3), 1);
    assert_int_equal(lh_shm_ip_count(shm, &k4), 1);
    assert_int_equal(lh_shm_ip_count(shm, &k5), 1);
    assert_int_equal(lh_shm_ip_count(shm, &k6), 2);
    /* now the hole is the last slot itself */
    lh_shm_conn_release(shm, 0, t2);
    assert_slot(shm, last, &k3, 1);
    assert_slot(shm, 0, &k4, 1);
    assert_slot(shm, 1, NULL, 0);
    assert_slot(shm, 2, &k5, 1); /* at home since the first shift */
    assert_int_equal(lh_shm_ip_count(shm, &k5), 1);
    assert_int_equal(lh_shm_conn_count(shm), 5);
    lh_shm_destroy(shm);
}

/* An entry between the hole and the wrap that sits at home stays; one past the wrap
 * whose home is before the hole moves back over it. */
static void test_wrap_keeps_home(void **state)
{
    (void)state;
    struct lh_shm *shm = make(1, 100, 0);
    uint32_t last = lh_shm_test_cap(shm) - 1, n = 0;
    struct lh_ipkey a = with_home(shm, last - 1, &n), b = with_home(shm, last, &n),
                    c = with_home(shm, last - 1, &n), d = with_home(shm, 0, &n);
    uint32_t ta = take(shm, 0, &a);
    take(shm, 0, &b);
    uint32_t tc = take(shm, 0, &c);
    take(shm, 0, &d);
    assert_slot(shm, last - 1, &a, 1);
    assert_slot(shm, last, &b, 1);
    assert_slot(shm, 0, &c, 1);
    assert_slot(shm, 1, &d, 1);
    lh_shm_conn_release(shm, 0, ta);
    assert_slot(shm, last - 1, &c, 1);
    assert_slot(shm, last, &b, 1);
    assert_slot(shm, 0, &d, 1);
    assert_slot(shm, 1, NULL, 0);
    lh_shm_conn_release(shm, 0, tc); /* the hole at last - 1: b and d stay home */
    assert_slot(shm, last - 1, NULL, 0);
    assert_slot(shm, last, &b, 1);
    assert_slot(shm, 0, &d, 1);
    assert_int_equal(lh_shm_ip_count(shm, &b), 1);
    assert_int_equal(lh_shm_ip_count(shm, &d), 1);
    assert_int_equal(lh_shm_ip_count(shm, &c), 0);
    lh_shm_destroy(shm);
}

/* IPs in and out of a table up to half full (clusters, many shifts): the counts
 * stay those of a plain array. */
static void check_churn(struct lh_shm *shm, const int *held, int ips)
{
    long total = 0;
    for (int i = 0; i < ips; i++) {
        struct lh_ipkey k = ip4(0x0b000000u + (uint32_t)i * 7919u);
        assert_int_equal(lh_shm_ip_count(shm, &k), held[i]);
        total += held[i];
    }
    assert_int_equal(lh_shm_conn_count(shm), total);
}

static void test_churn(void **state)
{
    (void)state;
    enum { IPS = 512, ROUNDS = 40000 };
    struct lh_shm *shm = make(2, IPS, 0); /* 1024 slots */
    static uint32_t tickets[IPS];
    static int held[IPS];
    uint32_t seed = 12345;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % IPS), w = i % 2;
        struct lh_ipkey k = ip4(0x0b000000u + (uint32_t)i * 7919u);
        if (held[i])
            lh_shm_conn_release(shm, w, tickets[i]);
        else
            tickets[i] = take(shm, w, &k);
        held[i] = !held[i];
        if (r % 10000 == 0)
            check_churn(shm, held, IPS);
    }
    check_churn(shm, held, IPS);
    lh_shm_destroy(shm);
}

/* ---- dead workers ---------------------------------------------------------------- */

static void test_reclaim(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100, 0);
    struct lh_ipkey a = ip4(1), b = ip4(2), c = ip4(3);
    take(shm, 0, &a);
    uint32_t t = take(shm, 0, &a);
    take(shm, 0, &b);
    take(shm, 0, &c);
    lh_shm_conn_release(shm, 0, t); /* a free entry in the journal, too */
    uint32_t tb_a = take(shm, 1, &a), tb_c = take(shm, 1, &c);
    assert_int_equal(lh_shm_conn_count(shm), 5);
    lh_shm_conn_reclaim(shm, 0);
    assert_int_equal(lh_shm_conn_count(shm), 2);
    assert_int_equal(lh_shm_ip_count(shm, &a), 1);
    assert_int_equal(lh_shm_ip_count(shm, &b), 0);
    assert_int_equal(lh_shm_ip_count(shm, &c), 1);
    lh_shm_conn_release(shm, 0, t); /* a ticket of the dead worker: ignored */
    lh_shm_conn_reclaim(shm, 0);    /* twice: nothing more */
    assert_int_equal(lh_shm_conn_count(shm), 2);
    /* the slot's next worker starts with an empty journal */
    assert_int_equal(take(shm, 0, &b), 0);
    assert_int_equal(take(shm, 0, &b), 1);
    assert_int_equal(lh_shm_ip_count(shm, &b), 2);
    lh_shm_conn_release(shm, 1, tb_a);
    lh_shm_conn_release(shm, 1, tb_c);
    lh_shm_conn_reclaim(shm, 0);
    assert_int_equal(lh_shm_conn_count(shm), 0);
    assert_int_equal(lh_shm_ip_count(shm, &a), 0);
    assert_int_equal(lh_shm_ip_count(shm, &b), 0);
    lh_shm_conn_reclaim(shm, -1); /* out of range: nothing */
    lh_shm_conn_reclaim(shm, 2);
    lh_shm_destroy(shm);
}

static const struct lh_ipkey ip_c = {.b = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 3}};
static const struct lh_ipkey ip_d = {.b = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 4}};

/* Take the lock and leave the caps as a holder killed between two steps would: c
 * counted twice with no journal entry behind it, d in worker 1's journal but not
 * counted (the total one short). 0 when done, with the lock still held. */
static int corrupt_holding_lock(struct lh_shm *shm)
{
    if (lh_shm_lock(shm) != 0)
        return 1;
    if (lh_shm_test_table_add(shm, &ip_c) != 0 || lh_shm_test_table_add(shm, &ip_c) != 0)
        return 2;
    if (lh_shm_test_journal_put(shm, 1, &ip_d) < 0)
        return 3;
    return 0;
}

/* corrupt_holding_lock in a child, which the parent then SIGKILLs holding the lock
 * (from outside: valgrind would search a child that kills itself, or exits, for
 * leaks, reading every page of the region). */
static void die_holding_lock(struct lh_shm *shm)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char rc = (char)corrupt_holding_lock(shm);
        (void)!write(p[1], &rc, 1);
        for (;;)
            pause();
    }
    char rc = -1;
    close(p[1]);
    assert_int_equal(read(p[0], &rc, 1), 1);
    close(p[0]);
    assert_int_equal(rc, 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
}

/* A child exits holding the lock, having left the caps wrong: the next lock
 * recounts them from the journals and says so, once. */
static void test_dead_holder(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100, 0);
    struct lh_ipkey a = ip4(0x0a000001), b = ip4(0x0a000002), z = ip4(0x0a000009);
    take(shm, 0, &a);
    take(shm, 0, &b);
    assert_int_equal(take(shm, 0, &z), 2);
    take(shm, 0, &z);
    lh_shm_conn_release(shm, 0, 2); /* worker 0: 0 1 _ 3 */
    assert_int_equal(take(shm, 1, &a), 0);
    assert_int_equal(in_child(shm, corrupt_holding_lock), 0); /* exits holding it */
    assert_int_equal(lh_shm_lock(shm), 1);
    lh_shm_unlock(shm);
    assert_int_equal(lh_shm_lock(shm), 0); /* said once */
    lh_shm_unlock(shm);
    assert_int_equal(lh_shm_ip_count(shm, &ip_c), 0);
    assert_int_equal(lh_shm_ip_count(shm, &ip_d), 1);
    assert_int_equal(lh_shm_ip_count(shm, &a), 2);
    assert_int_equal(lh_shm_ip_count(shm, &b), 1);
    assert_int_equal(lh_shm_ip_count(shm, &z), 1);
    assert_int_equal(lh_shm_conn_count(shm), 5);
    /* d's entry is worker 1's ticket 1; its journal goes on from there */
    assert_int_equal(take(shm, 1, &b), 2);
    lh_shm_conn_release(shm, 1, 1);
    assert_int_equal(lh_shm_ip_count(shm, &ip_d), 0);
    assert_int_equal(take(shm, 1, &ip_c), 1);
    /* worker 0's free list, rebuilt: the hole first, then on from the top */
    assert_int_equal(take(shm, 0, &b), 2);
    assert_int_equal(take(shm, 0, &b), 4);
    lh_shm_conn_reclaim(shm, 1);
    assert_int_equal(lh_shm_ip_count(shm, &a), 1);
    assert_int_equal(lh_shm_ip_count(shm, &b), 3);
    assert_int_equal(lh_shm_ip_count(shm, &ip_c), 0);
    assert_int_equal(lh_shm_ip_count(shm, &z), 1);
    assert_int_equal(lh_shm_conn_count(shm), 5);
    lh_shm_destroy(shm);
}

/* The same with SIGKILL, and the first to take the lock afterwards is not
 * lh_shm_lock but a cap function: it recounts, and lh_shm_lock still says so. */
static void test_killed_holder(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100, 0);
    struct lh_ipkey a = ip4(0x0a000001);
    take(shm, 0, &a);
    take(shm, 1, &a);
    die_holding_lock(shm);
    assert_int_equal(lh_shm_ip_count(shm, &ip_c), 0);
    assert_int_equal(lh_shm_ip_count(shm, &ip_d), 1);
    assert_int_equal(lh_shm_ip_count(shm, &a), 2);
    assert_int_equal(lh_shm_conn_count(shm), 3);
    assert_int_equal(lh_shm_lock(shm), 1);
    lh_shm_unlock(shm);
    assert_int_equal(lh_shm_lock(shm), 0);
    lh_shm_unlock(shm);
    lh_shm_destroy(shm);
}

/* Unlocking an owner-dead mutex without pthread_mutex_consistent makes it useless:
 * everything refuses or does nothing rather than run unlocked. */
static void test_unrecoverable(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100, 0);
    struct lh_ipkey a = ip4(1);
    uint32_t t = take(shm, 0, &a);
    die_holding_lock(shm);
    assert_int_equal(pthread_mutex_lock(lh_shm_test_mutex(shm)), EOWNERDEAD);
    assert_int_equal(pthread_mutex_unlock(lh_shm_test_mutex(shm)), 0);
    assert_int_equal(lh_shm_lock(shm), -1);
    assert_int_equal(lh_shm_conn_acquire(shm, 0, &a, 0, 0, &t), LH_SHM_OVER_CONNECTIONS);
    lh_shm_conn_release(shm, 0, t);
    lh_shm_conn_reclaim(shm, 0);
    assert_int_equal(lh_shm_conn_count(shm), -1);
    assert_int_equal(lh_shm_ip_count(shm, &a), -1);
    lh_shm_destroy(shm);
}

/* ---- across processes ------------------------------------------------------------ */

static const struct lh_ipkey ip_e = {.b = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 5}};

/* Worker 1 sees the parent's connection to e and counts one more. */
static int child_acquires(struct lh_shm *shm)
{
    uint32_t t;
    if (lh_shm_ip_count(shm, &ip_e) != 1 || lh_shm_worker(shm, 0)->pid != 4242)
        return 1;
    if (lh_shm_conn_acquire(shm, 1, &ip_e, 0, 2, &t) != LH_SHM_OK)
        return 2;
    if (lh_shm_conn_acquire(shm, 1, &ip_e, 0, 2, &t) != LH_SHM_OVER_PER_CLIENT)
        return 3;
    lh_shm_worker(shm, 1)->pid = (int32_t)getpid();
    memcpy(lh_shm_arena(shm, NULL), "from the child", 15);
    return 0;
}

static void test_shared_across_fork(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100, 4096);
    lh_shm_worker(shm, 0)->pid = 4242;
    take(shm, 0, &ip_e);
    assert_int_equal(in_child(shm, child_acquires), 0);
    assert_int_equal(lh_shm_ip_count(shm, &ip_e), 2);
    assert_int_equal(lh_shm_conn_count(shm), 2);
    assert_int_not_equal(lh_shm_worker(shm, 1)->pid, 0);
    assert_string_equal(lh_shm_arena(shm, NULL), "from the child");
    lh_shm_conn_reclaim(shm, 1); /* the child is gone: its count goes */
    assert_int_equal(lh_shm_ip_count(shm, &ip_e), 1);
    assert_int_equal(lh_shm_conn_count(shm), 1);
    lh_shm_destroy(shm);
}

/* Journal pages beyond what a worker used are never touched: not by acquire and
 * release, reclaim, nor a rebuild. */
static void assert_untouched(struct lh_shm *shm, int worker, size_t skip)
{
    size_t bytes, page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t p = (uintptr_t)lh_shm_test_journal(shm, worker, &bytes);
    uintptr_t from = (p + skip + page - 1) / page * page, to = (p + bytes) / page * page;
    assert_true(to > from + 4 * page);
    unsigned char vec[1024];
    size_t pages = (to - from) / page;
    assert_true(pages <= sizeof vec);
    assert_int_equal(mincore((void *)from, to - from, vec), 0);
    for (size_t i = 0; i < pages; i++)
        assert_int_equal(vec[i] & 1, 0);
}

static void test_journal_pages_untouched(void **state)
{
    (void)state;
    struct lh_shm *shm = make(2, 100000, 0); /* journals of 2 MB each */
    uint32_t t[50];
    for (uint32_t i = 0; i < 50; i++) {
        struct lh_ipkey k = ip4(i);
        t[i] = take(shm, 0, &k);
    }
    for (int i = 0; i < 50; i += 2)
        lh_shm_conn_release(shm, 0, t[i]);
    die_holding_lock(shm);
    assert_int_equal(lh_shm_conn_count(shm), 26);
    lh_shm_conn_reclaim(shm, 0);
    lh_shm_conn_reclaim(shm, 1);
    assert_int_equal(lh_shm_conn_count(shm), 0);
    assert_untouched(shm, 0, 50 * 20);
    assert_untouched(shm, 1, 2 * 20);
    lh_shm_destroy(shm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_workers_and_arena),
        cmocka_unit_test(test_acquire_release),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_per_client),
        cmocka_unit_test(test_v4_mapped_and_v6_distinct),
        cmocka_unit_test(test_full_table),
        cmocka_unit_test(test_wrap_around),
        cmocka_unit_test(test_wrap_keeps_home),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_reclaim),
        cmocka_unit_test(test_dead_holder),
        cmocka_unit_test(test_killed_holder),
        cmocka_unit_test(test_unrecoverable),
        cmocka_unit_test(test_shared_across_fork),
        cmocka_unit_test(test_journal_pages_untouched),
    };
    return cmocka_run_group_tests_name("shm", tests, NULL, NULL);
}
