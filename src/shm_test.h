/* shm_test.h - what tests/unit/test_shm.c needs to see inside shm.c: the per-IP
 * table's shape, and single steps of an acquire, so that a test can leave the region
 * as a process killed between two of them would. The server never calls these. */
#ifndef LH_SHM_TEST_H
#define LH_SHM_TEST_H

#include "shm.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Slots in the per-IP table (a power of two), and ip's home slot there. */
uint32_t lh_shm_test_cap(const struct lh_shm *shm);
uint32_t lh_shm_test_home(const struct lh_shm *shm, const struct lh_ipkey *ip);

/* The count in slot i (0: empty) and, into *key, the key there. */
long lh_shm_test_slot(const struct lh_shm *shm, uint32_t i, struct lh_ipkey *key);

/* Under the lock: count one more connection from ip in the table only (no journal
 * entry, no total). 0, or -1 when the table is full. */
int lh_shm_test_table_add(struct lh_shm *shm, const struct lh_ipkey *ip);

/* Under the lock: record ip in worker's journal only (no count), as acquire's first
 * step does. The entry's index (its ticket), or -1 when the journal is full. */
long lh_shm_test_journal_put(struct lh_shm *shm, int worker, const struct lh_ipkey *ip);

/* Worker's journal entries: where they are, and *bytes of them. */
void *lh_shm_test_journal(struct lh_shm *shm, int worker, size_t *bytes);

/* The region's mutex itself. */
pthread_mutex_t *lh_shm_test_mutex(struct lh_shm *shm);

#endif
