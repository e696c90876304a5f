/* ipkey.h - a client address as a fixed-size key, and as text for the logs. The
 * connections counted per key live in the shared region (shm.h). */
#ifndef LH_IPKEY_H
#define LH_IPKEY_H

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

#endif
