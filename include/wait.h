/* wait.h - something a paused Lua call waits for (an outbound request, a backend's
 * next piece): made by the C function that waits, held by whoever drives the call
 * (the run queue for a request, the timer runner for a timer), cancelled when that
 * call is given up. One waiter at a time; the event loop is the worker's. */
#ifndef LH_WAIT_H
#define LH_WAIT_H

#include <stdbool.h>

struct event_base;
struct evdns_base;

struct lh_wait {
    /* Stop whatever is under way and let go of what the wait holds: its call was
     * given up (the client left, a reload dropped a timer). wake is never called
     * after this. Whether the wait's own memory goes too is its maker's to say (an
     * exchange of client.h stays until lh_fetch_free). */
    void (*cancel)(struct lh_wait *w);
    void (*wake)(void *arg); /* set by lh_wait_hold */
    void *wake_arg;
    bool done;
};

/* The worker's event loop (and its resolver, made on first use from resolv.conf and
 * /etc/hosts), for the modules whose waits need events. Set once per process before
 * any request; NULL in the master while config.lua loads. */
void lh_wait_set_base(struct event_base *base);
struct event_base *lh_wait_base(void);
struct evdns_base *lh_wait_dns(void);
/* Free the resolver (a worker's exit; unit tests). */
void lh_wait_free_dns(void);

/* The driver of a paused call takes w: true, and wake(arg) will be called once when
 * w is done; false when w is done already (go on at once). */
bool lh_wait_hold(struct lh_wait *w, void (*wake)(void *arg), void *arg);

/* What w waited for has happened (or failed): mark it done and wake its holder. */
void lh_wait_done(struct lh_wait *w);

#endif
