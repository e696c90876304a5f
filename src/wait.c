/* wait.c - the waits of paused Lua calls, and the worker's event loop and resolver.
 * See wait.h. */
#include "wait.h"

#include <event2/dns.h>
#include <event2/event.h>

#include <stddef.h>

static struct event_base *loop;
static struct evdns_base *dns;

void lh_wait_set_base(struct event_base *base)
{
    if (base != loop)
        lh_wait_free_dns();
    loop = base;
}

struct event_base *lh_wait_base(void) { return loop; }

struct evdns_base *lh_wait_dns(void)
{
    /* resolv.conf with every option it may set, /etc/hosts included (evdns's
     * DNS_OPTIONS_ALL); without a usable resolv.conf, evdns still answers localhost
     * and the hosts file, and asks 127.0.0.1 */
    if (!dns && loop)
        dns = evdns_base_new(loop, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                       EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    return dns;
}

void lh_wait_free_dns(void)
{
    if (dns)
        evdns_base_free(dns, 1); /* 1: pending lookups fail (their callbacks run) */
    dns = NULL;
}

bool lh_wait_hold(struct lh_wait *w, void (*wake)(void *arg), void *arg)
{
    if (w->done)
        return false;
    w->wake = wake;
    w->wake_arg = arg;
    return true;
}

void lh_wait_done(struct lh_wait *w)
{
    if (w->done)
        return;
    w->done = true;
    if (w->wake)
        w->wake(w->wake_arg);
}
