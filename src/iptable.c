/* iptable.c - connections per client IP, shared by the workers. See iptable.h.
 * An open-addressing hash table under one mutex; taken once per connection, never
 * per request. Entries whose count drops to zero are removed (backward-shift
 * deletion), so the table holds only the IPs connected now; its slot array keeps the
 * largest size it grew to, which the peak number of connected IPs bounds. */
#include "iptable.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(LH_IP_STRLEN >= INET6_ADDRSTRLEN, "LH_IP_STRLEN too small");

/* IPv4 is formatted here: inet_ntop goes through sprintf, which cost more than the
 * rest of answering a small request. */
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

struct slot {
    struct lh_ipkey key;
    long count; /* 0: empty slot */
};

struct lh_iptable {
    pthread_mutex_t lock;
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
};

static size_t hash(const struct lh_ipkey *k)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ k->b[i]) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

struct lh_iptable *lh_iptable_new(void)
{
    struct lh_iptable *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = 64;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (!t->slots || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->slots);
        free(t);
        return NULL;
    }
    return t;
}

void lh_iptable_free(struct lh_iptable *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->slots);
    free(t);
}

/* The slot holding k, or the empty slot where it would go. */
static struct slot *find(struct slot *slots, size_t cap, const struct lh_ipkey *k)
{
    size_t i = hash(k) & (cap - 1);
    while (slots[i].count && memcmp(&slots[i].key, k, sizeof *k) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(struct lh_iptable *t)
{
    size_t cap = t->cap * 2;
    struct slot *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].count)
            *find(s, cap, &t->slots[i].key) = t->slots[i];
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return 0;
}

int lh_iptable_acquire(struct lh_iptable *t, const struct lh_ipkey *ip, long limit)
{
    int rc = -1;
    pthread_mutex_lock(&t->lock);
    if ((t->used + 1) * 4 > t->cap * 3 && grow(t) < 0)
        goto out;
    struct slot *s = find(t->slots, t->cap, ip);
    if (limit > 0 && s->count >= limit)
        goto out;
    if (s->count == 0) {
        s->key = *ip;
        t->used++;
    }
    s->count++;
    rc = 0;
out:
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void lh_iptable_release(struct lh_iptable *t, const struct lh_ipkey *ip)
{
    pthread_mutex_lock(&t->lock);
    struct slot *s = find(t->slots, t->cap, ip);
    if (s->count > 0 && --s->count == 0) {
        /* backward-shift deletion keeps every probe chain unbroken */
        size_t i = (size_t)(s - t->slots), j = i;
        t->used--;
        for (;;) {
            j = (j + 1) & (t->cap - 1);
            if (!t->slots[j].count)
                break;
            size_t home = hash(&t->slots[j].key) & (t->cap - 1);
            /* move j back to i unless its home lies cyclically in (i, j] */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
                t->slots[i] = t->slots[j];
                t->slots[j].count = 0;
                i = j;
            }
        }
    }
    pthread_mutex_unlock(&t->lock);
}

long lh_iptable_count(struct lh_iptable *t, const struct lh_ipkey *ip)
{
    pthread_mutex_lock(&t->lock);
    long n = find(t->slots, t->cap, ip)->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

long lh_iptable_size(struct lh_iptable *t)
{
    pthread_mutex_lock(&t->lock);
    long n = (long)t->used;
    pthread_mutex_unlock(&t->lock);
    return n;
}
