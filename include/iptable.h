/* iptable.h - open connections counted per client IP, shared by all workers. */
#ifndef LH_IPTABLE_H
#define LH_IPTABLE_H

#include <stdbool.h>
#include <stdint.h>

/* A client address as 16 bytes: IPv4 stored as an IPv4-mapped IPv6 address. */
struct lh_ipkey {
    uint8_t b[16];
};

/* Longest text lh_ipkey_format writes, NUL included (INET6_ADDRSTRLEN). */
#define LH_IP_STRLEN 46

/* ip as text into out (LH_IP_STRLEN bytes): "127.0.0.1" for an IPv4-mapped key,
 * "::1" for IPv6. Returns out. */
char *lh_ipkey_format(const struct lh_ipkey *ip, char *out);

struct lh_iptable;

/* Create an empty table. Returns NULL when out of memory. Thread-safe operations. */
struct lh_iptable *lh_iptable_new(void);
void lh_iptable_free(struct lh_iptable *t);

/*
 * Count one more connection for ip if that keeps it at or below limit (limit <= 0:
 * no limit). Returns 0 when counted, -1 when over the limit (nothing counted).
 */
int lh_iptable_acquire(struct lh_iptable *t, const struct lh_ipkey *ip, long limit);

/* Uncount one connection of ip (previously acquired). */
void lh_iptable_release(struct lh_iptable *t, const struct lh_ipkey *ip);

/* Connections currently counted for ip (for tests and stats). */
long lh_iptable_count(struct lh_iptable *t, const struct lh_ipkey *ip);

/* Number of distinct IPs with a nonzero count. */
long lh_iptable_size(struct lh_iptable *t);

#endif
