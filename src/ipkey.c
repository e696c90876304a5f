/* ipkey.c - client addresses as text. See ipkey.h. */
#include "ipkey.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

_Static_assert(LH_IP_STRLEN >= INET6_ADDRSTRLEN, "LH_IP_STRLEN too small");

/* IPv4 is formatted here: inet_ntop goes through sprintf, which costs 1,670 more
 * instructions a request (the address is formatted for every request), a quarter of
 * a small static file's (tests/bench/callgrind.py). */
char *lh_ipkey_format(const struct lh_ipkey *ip, char *out)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(ip->b, v4mapped, 12) != 0)
        return (char *)inet_ntop(AF_INET6, ip->b, out, LH_IP_STRLEN) ? out : strcpy(out, "?");
    char *p = out;
    for (int i = 12; i < 16; i++) {
        unsigned v = ip->b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 15 ? '.' : '\0';
    }
    return out;
}
