/* client.h - outbound HTTP/1.1 requests, for http.request and proxy() (lua_http.c):
 * one exchange at a time on a connection, DNS through evdns (resolv.conf and
 * /etc/hosts, never a blocking lookup), TLS through OpenSSL (the system's CAs and the
 * host name checked unless told otherwise, SNI), responses read with http.h's strict
 * parser, and per-worker keep-alive pools, one per scheme, host, port and TLS
 * settings. Everything runs on the worker's event loop (wait.h); a Lua call waits for
 * an exchange through lh_fetch_wait. */
#ifndef LH_CLIENT_H
#define LH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct lh_wait;

/* An absolute http:// or https:// URL, split. */
struct lh_url {
    bool tls;
    uint16_t port;          /* 80 or 443 unless given */
    char host[256];         /* the name or address, without an IPv6 address's brackets */
    char authority[270];    /* for Host: as written ("[::1]:8080"), the default port left out */
    const char *target;     /* path and query as written, "/" when the URL has none; points
                             * into the parsed string */
    size_t target_len;
    bool slash;             /* the target is only a query ("?x"): "/" goes before it */
};

/* Split url[0..len) into u. 0, or -1 with a message in *err: another scheme, userinfo
 * ("user@host"), an empty host or bad port, a fragment, bytes that are not visible
 * ASCII. */
int lh_url_parse(const char *url, size_t len, struct lh_url *u, const char **err);

struct lh_fetch_opts {
    double timeout;         /* seconds for the whole exchange; with stream, until the
                             * head is in and then between two pieces of the body */
    size_t max_body;        /* 0: no cap; more is a failure (the connection is closed) */
    bool verify;            /* https: check the certificate and the host name */
    const char *ca_file;    /* https: trust these CAs (PEM) instead of the system's */
    bool head_request;      /* the method is HEAD: no body follows the response head */
    bool idempotent;        /* may be sent again on a new connection when a kept-alive
                             * one turns out to be closed before any answer */
    bool stream;            /* the body is taken piece by piece (lh_fetch_next); one
                             * whose Content-Length is 64 KiB or less comes whole */
};

struct lh_fetch;

/* Start an exchange with u's server: head (the whole request head, blank line
 * included) and body are copied. The wait (lh_fetch_wait) is done when the response
 * is whole (with stream: its head is in), or the exchange failed. NULL when out of
 * memory or outside a worker (no event loop). The caller frees it with
 * lh_fetch_free. */
struct lh_fetch *lh_fetch_start(const struct lh_url *u, const char *head, size_t head_len,
                                const char *body, size_t body_len,
                                const struct lh_fetch_opts *o);

/* Stop the exchange (its connection is closed, never pooled) and free it. Safe on
 * NULL. */
void lh_fetch_free(struct lh_fetch *f);

/* What a Lua call waits on. Its cancel stops the exchange and frees its buffers but not
 * f (the caller still frees f). */
struct lh_wait *lh_fetch_wait(struct lh_fetch *f);

/* Once the wait is done: the response head (valid until lh_fetch_free), or NULL when
 * the exchange failed: then *err says why and *status is 504 for a timeout, 502
 * otherwise (what a proxy answers). */
const struct lh_response_head *lh_fetch_head(const struct lh_fetch *f, const char **err,
                                             int *status);

/* Why the exchange failed ("" while it has not). */
const char *lh_fetch_error(const struct lh_fetch *f);

/* Not stream: the whole body, once the wait is done (len 0 when none). Valid until
 * lh_fetch_free. */
const char *lh_fetch_body(struct lh_fetch *f, size_t *len);

/* Stream: the next piece of the body. 1: *data and *len hold it (valid until the next
 * call); 0: the body ended (the connection went back to its pool if it may); -1: it
 * failed (lh_fetch_head's *err says why); 2: nothing yet, wait on lh_fetch_wait
 * again (this call made it not done). */
int lh_fetch_next(struct lh_fetch *f, const char **data, size_t *len);

/* Stream: the body bytes lh_fetch_next has still to hand out when the head gave the
 * length (Content-Length), -1 when the body is chunked or ends with the connection. */
int64_t lh_fetch_left(const struct lh_fetch *f);

/* Is the whole body in already (stream: nothing more will arrive)? */
bool lh_fetch_complete(const struct lh_fetch *f);

/* Close every idle pooled connection and free the pools and TLS contexts (a worker's
 * exit, tests). No exchange may be running. */
void lh_client_free_all(void);

/* Connections this worker has opened so far (tests: pooled reuse opens none). */
uint64_t lh_client_opened(void);

#endif
