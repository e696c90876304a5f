/* client.c - outbound HTTP/1.1 exchanges on the worker's event loop. See client.h.
 *
 * An exchange (struct lh_fetch) takes a connection from its pool or opens one: the
 * name through evdns (an address literal skips it), each address it gave in turn
 * until one accepts, TLS on top for https. It writes the request, reads the
 * response head with http.h's parser (1xx interim heads are skipped) and the body as
 * the head frames it, then gives the connection back to the pool only when the
 * framing ended exactly where the bytes did and the server keeps it open; anything
 * else closes it. A kept-alive connection that the server closed just before it was
 * reused fails before any byte of the answer: an idempotent request is then sent once
 * more on a new connection.
 *
 * Pools are per worker, keyed by scheme, host, port and TLS settings. At most
 * POOL_IDLE idle connections are kept (closed by the server: dropped at once; idle
 * for IDLE_SECS: closed), at most POOL_OPEN open; exchanges over that wait in line
 * for a connection to come back or close. */
#include "client.h"

#include "http.h"
#include "sanitizer.h"
#include "wait.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define POOL_IDLE 32
#define POOL_OPEN 512
#define IDLE_SECS 30
#define HEAD_MAX 65536           /* a response head longer than this is refused */
#define PIECE_MAX 65536          /* stream: the largest piece handed out at once */
#define STREAM_AHEAD (256 * 1024) /* stream: read no further ahead of the reader */
#define STREAM_WHOLE (64 * 1024)  /* stream: a body of a known length up to this is
                                   * handed over whole, with the head */
#define TRAILER_MAX 16384

/* ---- pools ------------------------------------------------------------------------------- */

struct upstream {
    struct bufferevent *bev;
    /* plain TCP reads with its own event rather than the bufferevent's, whose every
     * read asks the socket FIONREAD first: a system call a read (up_read) */
    struct event *rd;           /* NULL: TLS, which the bufferevent reads */
    struct timeval rd_tv;       /* with rd_timed: at most this long between two reads */
    bool rd_timed, reading;
    bool wr_timed;              /* the bufferevent has a write timeout */
    void (*on_data)(struct bufferevent *bev, void *arg); /* as the bufferevent's */
    void (*on_news)(struct bufferevent *bev, short what, void *arg);
    void *arg;
    struct pool *pool;
    struct upstream *next;      /* in the pool's idle list */
    unsigned uses;              /* exchanges done on it */
};

struct pool {
    struct pool *next;
    /* the key */
    bool tls, verify;           /* verify: only with tls */
    uint16_t port;
    char *host;
    char *ca_file;              /* only with tls; NULL: the system's CAs */
    struct upstream *idle;
    unsigned nidle, nopen;
    struct lh_fetch *queue, *queue_tail; /* exchanges waiting for a connection */
};

static struct pool *pools;
static uint64_t opened;

/* Exchanges freed, kept for the next ones with their buffer and timer: 3 KB is past
 * malloc's fast caches. Without LH_POOLS, none. */
#define SPARE_FETCHES (LH_POOLS ? 64 : 0)
static struct lh_fetch *spare[LH_POOLS ? SPARE_FETCHES : 1];
static int nspare;
static struct lh_fetch *live;   /* every exchange not yet freed */
static bool closing;            /* lh_client_free_all runs: start nothing */

struct tls_ctx {
    struct tls_ctx *next;
    char *ca_file;              /* NULL: the system's CAs */
    SSL_CTX *ctx;
};
static struct tls_ctx *tls_ctxs;

uint64_t lh_client_opened(void) { return opened; }

/* ---- an exchange ---------------------------------------------------------------------- */

enum phase { RESOLVING, QUEUED, CONNECTING, EXCHANGING, BODY, DONE, FAILED };

struct lh_fetch {
    struct lh_wait wait;        /* first: the wait's cancel finds the exchange */
    struct lh_fetch_opts o;
    struct lh_url u;
    char *ca_file;
    struct pool *pool;
    enum phase phase;
    struct upstream *up;
    bool reused;                /* up came from the pool */
    bool retried;
    bool got_bytes;             /* some of the answer arrived */
    struct evutil_addrinfo *addrs, *addr; /* what DNS gave, the one being tried */
    struct evdns_getaddrinfo_request *dns_req;
    struct lookup *lookup;      /* RESOLVING: the lookup under way */
    struct event *deadline;
    struct lh_fetch *next_queued;
    struct lh_fetch *live_prev, *live_next;
    char *out;                  /* the request: head and body */
    size_t out_len;
    /* the response */
    size_t scanned;
    char *head_buf;
    bool have_head;
    enum lh_body_framing framing;
    int64_t remaining;          /* LH_FRAMING_LENGTH: body bytes still to come */
    struct lh_chunked chunked;
    struct evbuffer *body;
    size_t body_total;
    char *piece;                /* stream: the last piece handed out */
    bool reading_paused;        /* stream: the reader is STREAM_AHEAD behind */
    int err_status;
    /* from here on not cleared when made (lh_fetch_start): 3 KB, mostly room for
     * headers, each written before it is read */
    char err[256];
    struct lh_response_head head; /* once have_head */
};

static void fail(struct lh_fetch *f, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void connect_next(struct lh_fetch *f);
static void begin(struct lh_fetch *f);

static void wake(struct lh_fetch *f)
{
    lh_wait_done(&f->wait);
}

/* ---- TLS ------------------------------------------------------------------------------ */

static SSL_CTX *tls_context(const char *ca_file, char *err, size_t errlen)
{
    for (struct tls_ctx *t = tls_ctxs; t; t = t->next)
        if ((!t->ca_file && !ca_file) || (t->ca_file && ca_file && !strcmp(t->ca_file, ca_file)))
            return t->ctx;
    struct tls_ctx *t = calloc(1, sizeof *t);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!t || !ctx || (ca_file && !(t->ca_file = strdup(ca_file)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        char e[160];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        snprintf(err, errlen, "cannot load the CA certificates of %s: %s",
                 ca_file ? ca_file : "the system", e);
        ERR_clear_error();
        goto fail;
    }
    t->ctx = ctx;
    t->next = tls_ctxs;
    tls_ctxs = t;
    return ctx;
fail:
    if (t)
        free(t->ca_file);
    free(t);
    SSL_CTX_free(ctx);
    return NULL;
}

/* A TLS session for f's server: SNI and the name (or address) to check. */
static SSL *tls_session(struct lh_fetch *f)
{
    SSL_CTX *ctx = tls_context(f->ca_file, f->err, sizeof f->err);
    if (!ctx)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        snprintf(f->err, sizeof f->err, "out of memory");
        return NULL;
    }
    struct in6_addr a6;
    struct in_addr a4;
    bool literal = evutil_inet_pton(AF_INET, f->u.host, &a4) == 1 ||
                   evutil_inet_pton(AF_INET6, f->u.host, &a6) == 1;
    if (!literal)
        SSL_set_tlsext_host_name(ssl, f->u.host);
    if (f->o.verify) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, f->u.host)
                         : X509_VERIFY_PARAM_set1_host(param, f->u.host, 0);
        if (!ok) {
            SSL_free(ssl);
            snprintf(f->err, sizeof f->err, "cannot check the name %.200s", f->u.host);
            return NULL;
        }
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    }
    return ssl;
}

/* Why a TLS connection failed, in words. */
static void tls_reason(struct bufferevent *bev, char *buf, size_t len)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (v != X509_V_OK)
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    else if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    while (bufferevent_get_openssl_error(bev))
        ;
    ERR_clear_error();
}

/* ---- connections -------------------------------------------------------------------- */

#define READ_MAX 16384           /* plain TCP: the most one read takes */

/* Plain TCP, readable (or silent for rd_tv): one read into the bufferevent's input,
 * then its callbacks, as the bufferevent would call them. */
static void plain_read(evutil_socket_t fd, short what, void *arg)
{
    struct upstream *up = arg;
    if (what & EV_TIMEOUT) {
        up->on_news(up->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, up->arg);
        return;
    }
    /* read here and copied: the input gets a chain of the size read (a small answer's
     * comes from malloc's fast caches), not one of READ_MAX for every read */
    static char buf[READ_MAX];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0 && evbuffer_add(bufferevent_get_input(up->bev), buf, (size_t)n) < 0) {
        errno = ENOMEM;
        n = -1;
    }
    if (n <= 0) {
        up->on_news(up->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR),
                    up->arg);
        return;
    }
    up->on_data(up->bev, up->arg); /* may free up: nothing of it is touched after */
}

/* The callbacks of up: on_data when its answer's bytes come in, on_news for the
 * bufferevent's events (connected, EOF, error, timeout). */
static void up_setcb(struct upstream *up, void (*on_data)(struct bufferevent *, void *),
                     void (*on_news)(struct bufferevent *, short, void *), void *arg)
{
    up->on_data = on_data;
    up->on_news = on_news;
    up->arg = arg;
    bufferevent_setcb(up->bev, up->rd ? NULL : on_data, NULL, on_news, arg);
}

/* Read (on) or stop; as bufferevent_enable, starting to read restarts the timeout. */
static void up_read(struct upstream *up, bool on)
{
    if (!up->rd) {
        if (on)
            bufferevent_enable(up->bev, EV_READ);
        else
            bufferevent_disable(up->bev, EV_READ);
        return;
    }
    up->reading = on;
    if (on)
        event_add(up->rd, up->rd_timed ? &up->rd_tv : NULL);
    else
        event_del(up->rd);
}

/* The longest silence while reading (rd) and writing (wr); NULL: none. */
static void up_timeouts(struct upstream *up, const struct timeval *rd, const struct timeval *wr)
{
    if (!up->rd) {
        bufferevent_set_timeouts(up->bev, rd, wr);
        return;
    }
    if (wr || up->wr_timed) /* mostly neither: no call on every exchange */
        bufferevent_set_timeouts(up->bev, NULL, wr);
    up->wr_timed = wr != NULL;
    up->rd_timed = rd != NULL;
    if (rd)
        up->rd_tv = *rd;
    if (up->reading)
        event_add(up->rd, rd);
}

static void upstream_free(struct upstream *up)
{
    if (up->rd)
        event_free(up->rd); /* before the bufferevent closes its socket */
    bufferevent_free(up->bev);
    free(up);
}

static void upstream_close(struct upstream *up)
{
    struct pool *p = up->pool;
    upstream_free(up);
    p->nopen--;
    if (p->queue && !closing) { /* room for one that waits in line */
        struct lh_fetch *f = p->queue;
        p->queue = f->next_queued;
        if (!p->queue)
            p->queue_tail = NULL;
        begin(f);
    }
}

static void idle_drop(struct upstream *up)
{
    struct pool *p = up->pool;
    for (struct upstream **q = &p->idle; *q; q = &(*q)->next)
        if (*q == up) {
            *q = up->next;
            p->nidle--;
            break;
        }
    upstream_close(up);
}

/* An idle connection spoke: the server closed it (or sent what nobody asked for), or
 * its idle time is over. */
static void on_idle_read(struct bufferevent *bev, void *arg) { idle_drop(arg); }
static void on_idle_event(struct bufferevent *bev, short what, void *arg) { idle_drop(arg); }

static void send_request(struct lh_fetch *f);

/* f's exchange is over and its connection may serve another. */
static void upstream_release(struct upstream *up)
{
    struct pool *p = up->pool;
    up->uses++;
    if (p->queue) {
        struct lh_fetch *f = p->queue;
        p->queue = f->next_queued;
        if (!p->queue)
            p->queue_tail = NULL;
        f->up = up;
        f->reused = true;
        send_request(f);
        return;
    }
    if (p->nidle >= POOL_IDLE) {
        upstream_close(up);
        return;
    }
    static const struct timeval idle = {IDLE_SECS, 0};
    up_setcb(up, on_idle_read, on_idle_event, up);
    up_timeouts(up, &idle, NULL);
    up_read(up, true);
    up->next = p->idle;
    p->idle = up;
    p->nidle++;
}

static void pool_free(struct pool *p)
{
    free(p->host);
    free(p->ca_file);
    free(p);
}

/* The pool of f's server and TLS settings, made when there is none yet. */
static struct pool *pool_for(const struct lh_fetch *f)
{
    bool tls = f->u.tls, verify = tls && f->o.verify;
    const char *ca = tls ? f->ca_file : NULL;
    for (struct pool *p = pools; p; p = p->next)
        if (p->port == f->u.port && p->tls == tls && p->verify == verify &&
            !strcmp(p->host, f->u.host) && (p->ca_file && ca ? !strcmp(p->ca_file, ca)
                                                             : p->ca_file == ca))
            return p;
    struct pool *p = calloc(1, sizeof *p);
    if (!p || !(p->host = strdup(f->u.host)) || (ca && !(p->ca_file = strdup(ca)))) {
        if (p)
            pool_free(p);
        return NULL;
    }
    p->tls = tls;
    p->verify = verify;
    p->port = f->u.port;
    p->next = pools;
    pools = p;
    return p;
}

/* ---- the exchange's steps -------------------------------------------------------------- */

/* The exchange is over: keep or close its connection, stop its timer, wake its caller. */
static void finish(struct lh_fetch *f, bool keep)
{
    if (f->deadline)
        event_del(f->deadline);
    if (closing)
        keep = false;
    struct upstream *up = f->up;
    f->up = NULL;
    if (up) {
        if (keep)
            upstream_release(up);
        else
            upstream_close(up);
    }
    wake(f);
}

static void fail(struct lh_fetch *f, int status, const char *fmt, ...)
{
    if (f->phase == DONE || f->phase == FAILED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof f->err, fmt, ap);
    va_end(ap);
    f->err_status = status;
    f->phase = FAILED;
    finish(f, false);
}

/* A lookup's callback runs even when it is cancelled, later: it finds the exchange
 * through this, which outlives it. */
struct lookup {
    struct lh_fetch *f;         /* NULL: cancelled */
};

/* Stop looking up f's name or waiting in line for a connection. */
static void stop_waiting(struct lh_fetch *f)
{
    if (f->lookup) {
        f->lookup->f = NULL;
        f->lookup = NULL;
        struct evdns_getaddrinfo_request *r = f->dns_req;
        f->dns_req = NULL;
        if (r)
            evdns_getaddrinfo_cancel(r);
    }
    if (f->phase == QUEUED) {
        struct pool *p = f->pool;
        struct lh_fetch *prev = NULL;
        for (struct lh_fetch *q = p->queue; q; prev = q, q = q->next_queued)
            if (q == f) {
                if (prev)
                    prev->next_queued = f->next_queued;
                else
                    p->queue = f->next_queued;
                if (p->queue_tail == f)
                    p->queue_tail = prev;
                break;
            }
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct lh_fetch *f = arg;
    stop_waiting(f);
    fail(f, 504, "timeout after %g s (%s)", f->o.timeout,
         f->phase == RESOLVING    ? "resolving the name"
         : f->phase == QUEUED     ? "waiting for a connection"
         : f->phase == CONNECTING ? "connecting"
         : f->have_head           ? "reading the body"
                                  : "waiting for the response");
}

static void arm_deadline(struct lh_fetch *f)
{
    double t = f->o.timeout;
    struct timeval tv = {.tv_sec = (time_t)t, .tv_usec = (suseconds_t)((t - (time_t)t) * 1e6)};
    event_add(f->deadline, &tv);
}

/* Move what the body has of the input to f->body; 1 when the body ended, 0 when more
 * is to come, -1 failed (f has failed). */
static int take_body(struct lh_fetch *f, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    if (f->framing == LH_FRAMING_LENGTH) {
        size_t take = (int64_t)n < f->remaining ? n : (size_t)f->remaining;
        evbuffer_remove_buffer(in, f->body, take);
        f->remaining -= (int64_t)take;
        f->body_total += take;
    } else if (f->framing == LH_FRAMING_CHUNKED) {
        if (n == 0)
            return 0;
        char *p = (char *)evbuffer_pullup(in, -1);
        size_t used = 0, made = 0;
        int r = lh_chunked_decode(&f->chunked, p, n, p, &used, &made, TRAILER_MAX);
        if (r < 0) {
            fail(f, 502, "malformed chunked body from %s", f->u.authority);
            return -1;
        }
        evbuffer_add(f->body, p, made);
        evbuffer_drain(in, used);
        f->body_total += made;
        if (r == 1)
            f->remaining = 0;
    } else if (f->framing == LH_FRAMING_CLOSE) {
        evbuffer_add_buffer(f->body, in);
        f->body_total += n;
    }
    if (f->o.max_body && f->body_total > f->o.max_body) {
        fail(f, 502, "response body larger than max_body (%zu bytes)", f->o.max_body);
        return -1;
    }
    if (f->framing == LH_FRAMING_NONE || f->remaining == 0)
        return f->framing == LH_FRAMING_CLOSE ? 0 : 1;
    return 0;
}

/* The body ended: done, with the connection kept if nothing came after it and both
 * sides keep it open. */
static void body_ended(struct lh_fetch *f, bool at_eof)
{
    bool keep = !at_eof && f->framing != LH_FRAMING_CLOSE && f->up &&
                evbuffer_get_length(bufferevent_get_input(f->up->bev)) == 0 &&
                lh_http_response_reusable(&f->head, f->o.head_request);
    f->phase = DONE;
    finish(f, keep);
}

/* Read a head out of in: 1 got one (1xx ones skipped), 0 more needed, -1 failed. */
static int take_head(struct lh_fetch *f, struct evbuffer *in)
{
    for (;;) {
        size_t n = evbuffer_get_length(in);
        if (n == 0)
            return 0;
        size_t look = n > HEAD_MAX ? HEAD_MAX : n;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        struct lh_response_head *h = &f->head;
        int r = lh_http_parse_response_head(p, look, &f->scanned, HEAD_MAX, h);
        if (r == 0 && look < HEAD_MAX)
            return 0;
        if (r <= 0) {
            fail(f, 502, r == -1 ? "malformed response head from %s"
                                 : "response head from %s longer than %d bytes",
                 f->u.authority, HEAD_MAX);
            return -1;
        }
        f->scanned = 0;
        if (h->status >= 100 && h->status < 200) {
            if (h->status == 101) {
                fail(f, 502, "%s switched protocols (101), which is not supported",
                     f->u.authority);
                return -1;
            }
            evbuffer_drain(in, (size_t)r);
            continue;
        }
        /* the head's fields point into its own copy: moved there */
        free(f->head_buf);
        char *copy = f->head_buf = malloc((size_t)r);
        if (!copy) {
            fail(f, 502, "out of memory");
            return -1;
        }
        memcpy(copy, p, (size_t)r);
        evbuffer_drain(in, (size_t)r);
        h->reason = copy + (h->reason - p);
        for (uint32_t i = 0; i < h->nheaders; i++) {
            h->headers[i].name = copy + (h->headers[i].name - p);
            h->headers[i].value = copy + (h->headers[i].value - p);
        }
        f->have_head = true;
        f->framing = lh_http_response_framing(&f->head, f->o.head_request);
        f->remaining = f->framing == LH_FRAMING_LENGTH ? f->head.content_length : -1;
        return 1;
    }
}

static void pause_if_ahead(struct lh_fetch *f)
{
    if (f->o.stream && f->up && evbuffer_get_length(f->body) >= STREAM_AHEAD) {
        up_read(f->up, false);
        f->reading_paused = true;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct lh_fetch *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    f->got_bytes = true;
    bool head_now = false;
    if (!f->have_head) {
        int r = take_head(f, in);
        if (r <= 0)
            return;
        head_now = true;
        f->phase = BODY;
        if (f->o.stream) { /* from now on the timeout is between pieces */
            event_del(f->deadline);
            struct timeval tv = {.tv_sec = (time_t)f->o.timeout,
                                 .tv_usec = (suseconds_t)((f->o.timeout - (time_t)f->o.timeout) * 1e6)};
            up_timeouts(f->up, &tv, &tv);
        }
    }
    size_t before = f->body_total;
    int r = take_body(f, in);
    if (r < 0)
        return;
    if (r == 1) {
        body_ended(f, false);
        return;
    }
    pause_if_ahead(f);
    bool whole = f->framing == LH_FRAMING_LENGTH && f->head.content_length <= STREAM_WHOLE;
    if (f->o.stream && !whole && (head_now || f->body_total > before))
        wake(f); /* the head, or another piece */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct lh_fetch *f = arg;
    if (what & BEV_EVENT_CONNECTED) {
        up_timeouts(f->up, NULL, NULL);
        send_request(f);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        fail(f, 504, "timeout after %g s between two pieces of the body from %s", f->o.timeout,
             f->u.authority);
        return;
    }
    if (f->phase == CONNECTING) {
        char why[200];
        if (f->u.tls)
            tls_reason(bev, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        if (f->addr && f->addr->ai_next && !(f->u.tls && strstr(why, "certificate"))) {
            f->addr = f->addr->ai_next; /* the next address the name has */
            struct upstream *up = f->up;
            f->up = NULL;
            upstream_close(up);
            connect_next(f);
            return;
        }
        fail(f, 502, "cannot connect to %s: %s", f->u.authority, why);
        return;
    }
    /* EOF or an error while exchanging */
    if (!f->got_bytes && f->reused && !f->retried && f->o.idempotent) {
        struct upstream *up = f->up; /* a kept-alive connection the server had closed */
        f->up = NULL;
        upstream_close(up);
        f->retried = true;
        f->reused = false;
        f->phase = QUEUED;
        begin(f);
        return;
    }
    struct evbuffer *in = bufferevent_get_input(bev);
    if (f->have_head && f->framing == LH_FRAMING_CLOSE && (what & BEV_EVENT_EOF)) {
        if (take_body(f, in) >= 0)
            body_ended(f, true);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        char why[200];
        if (f->u.tls)
            tls_reason(bev, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        fail(f, 502, "connection to %s failed: %s", f->u.authority, why);
        return;
    }
    fail(f, 502, "%s closed the connection before the response %s", f->u.authority,
         f->have_head ? "body ended" : "head was complete");
}

static void send_request(struct lh_fetch *f)
{
    struct upstream *up = f->up;
    struct bufferevent *bev = up->bev;
    f->phase = EXCHANGING;
    up_setcb(up, on_read, on_event, f);
    up_timeouts(up, NULL, NULL);
    /* plain TCP: straight to the socket, which is connected and almost always takes
     * a request whole, rather than a turn of the loop to learn that it is writable
     * (two epoll_ctl and an epoll_wait per request); the rest, if any, and a failure
     * (a pooled connection the server closed) go the bufferevent's way */
    size_t sent = 0;
    if (!f->u.tls) {
        ssize_t n = send(bufferevent_getfd(bev), f->out, f->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            sent = (size_t)n;
    }
    if (sent < f->out_len && bufferevent_write(bev, f->out + sent, f->out_len - sent) < 0) {
        fail(f, 502, "out of memory");
        return;
    }
    if (sent < f->out_len)
        bufferevent_enable(bev, EV_WRITE);
    up_read(up, true);
}

/* Open a connection to f->addr. */
static void connect_next(struct lh_fetch *f)
{
    struct event_base *base = lh_wait_base();
    struct upstream *up = calloc(1, sizeof *up);
    struct bufferevent *bev = NULL;
    if (!up) {
        fail(f, 502, "out of memory");
        return;
    }
    if (f->u.tls) {
        SSL *ssl = tls_session(f);
        if (!ssl) {
            free(up);
            char why[256];
            snprintf(why, sizeof why, "%s", f->err);
            fail(f, 502, "https://%s: %s", f->u.authority, why);
            return;
        }
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev) /* a server that closes without close_notify ends a close-delimited body */
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        else
            SSL_free(ssl);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev) {
        free(up);
        fail(f, 502, "out of memory");
        return;
    }
    up->bev = bev;
    up->pool = f->pool;
    f->pool->nopen++;
    f->up = up;
    f->phase = CONNECTING;
    opened++;
    bufferevent_setcb(bev, NULL, NULL, on_event, f);
    if (bufferevent_socket_connect(bev, f->addr->ai_addr, (int)f->addr->ai_addrlen) < 0) {
        int e = EVUTIL_SOCKET_ERROR();
        if (f->addr->ai_next) {
            f->addr = f->addr->ai_next;
            f->up = NULL;
            upstream_close(up);
            connect_next(f);
            return;
        }
        fail(f, 502, "cannot connect to %s: %s", f->u.authority, evutil_socket_error_to_string(e));
        return;
    }
    if (!f->u.tls) { /* the socket exists now */
        up->rd = event_new(base, bufferevent_getfd(bev), EV_READ | EV_PERSIST, plain_read, up);
        if (!up->rd) {
            fail(f, 502, "out of memory");
            return;
        }
        up_setcb(up, NULL, on_event, f);
    }
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct lookup *l = arg;
    struct lh_fetch *f = l->f;
    free(l);
    if (!f) { /* cancelled */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    f->lookup = NULL;
    f->dns_req = NULL;
    if (result != 0 || !res) {
        if (res)
            evutil_freeaddrinfo(res);
        fail(f, 502, "cannot resolve %s: %s", f->u.host, evutil_gai_strerror(result));
        return;
    }
    /* other exchanges may have opened connections (or pooled them) meanwhile: the
     * pool's limits are checked again */
    f->addrs = res;
    f->phase = QUEUED;
    begin(f);
}

/* Find f a connection: an idle one of its pool, a new one, or a place in line. */
static void begin(struct lh_fetch *f)
{
    struct pool *p = f->pool;
    while (p->idle) {
        struct upstream *up = p->idle;
        p->idle = up->next;
        p->nidle--;
        f->up = up;
        f->reused = true;
        send_request(f);
        return;
    }
    if (p->nopen >= POOL_OPEN) {
        f->phase = QUEUED;
        f->next_queued = NULL;
        if (p->queue_tail)
            p->queue_tail->next_queued = f;
        else
            p->queue = f;
        p->queue_tail = f;
        return;
    }
    if (f->addrs) { /* looked up already (or a retry): the addresses are known */
        f->addr = f->addrs;
        connect_next(f);
        return;
    }
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                    .ai_protocol = IPPROTO_TCP,
                                    .ai_flags = EVUTIL_AI_ADDRCONFIG};
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)f->u.port);
    struct evdns_base *dns = lh_wait_dns();
    if (!dns) {
        fail(f, 502, "cannot resolve %s: no resolver", f->u.host);
        return;
    }
    struct lookup *l = malloc(sizeof *l);
    if (!l) {
        fail(f, 502, "out of memory");
        return;
    }
    l->f = f;
    f->lookup = l;
    f->phase = RESOLVING;
    /* the callback may run before this returns (an address literal, /etc/hosts): it
     * has then freed l and cleared f->lookup */
    struct evdns_getaddrinfo_request *r =
        evdns_getaddrinfo(dns, f->u.host, port, &hints, on_resolved, l);
    if (f->lookup)
        f->dns_req = r;
}

static void cancel(struct lh_wait *w)
{
    struct lh_fetch *f = (struct lh_fetch *)w;
    w->wake = NULL;
    if (f->phase != DONE && f->phase != FAILED) {
        stop_waiting(f);
        f->phase = FAILED;
        snprintf(f->err, sizeof f->err, "cancelled");
        finish(f, false);
    }
    if (f->body)
        evbuffer_drain(f->body, evbuffer_get_length(f->body));
    free(f->piece);
    f->piece = NULL;
}

/* ---- the interface -------------------------------------------------------------------- */

struct lh_fetch *lh_fetch_start(const struct lh_url *u, const char *head, size_t head_len,
                                const char *body, size_t body_len,
                                const struct lh_fetch_opts *o)
{
    struct event_base *base = lh_wait_base();
    if (!base)
        return NULL;
    struct lh_fetch *f;
    struct evbuffer *keep_body = NULL;
    struct event *keep_deadline = NULL;
    if (SPARE_FETCHES > 0 && nspare > 0) {
        /* a spare keeps its buffer and its timer, whose argument it is */
        f = spare[--nspare];
        keep_body = f->body;
        keep_deadline = f->deadline;
    } else if (!(f = malloc(sizeof *f))) {
        return NULL;
    }
    memset(f, 0, offsetof(struct lh_fetch, err));
    f->err[0] = '\0';
    f->wait.cancel = cancel;
    f->o = *o;
    f->u = *u;
    f->u.target = NULL; /* the caller's string; the head has it */
    f->out_len = head_len + body_len;
    f->out = malloc(f->out_len ? f->out_len : 1);
    f->body = keep_body ? keep_body : evbuffer_new();
    f->deadline = keep_deadline ? keep_deadline : evtimer_new(base, on_deadline, f);
    f->live_next = live;
    if (live)
        live->live_prev = f;
    live = f;
    if (o->ca_file)
        f->ca_file = strdup(o->ca_file);
    f->o.ca_file = f->ca_file;
    if (!f->out || !f->body || !f->deadline || (o->ca_file && !f->ca_file)) {
        lh_fetch_free(f);
        return NULL;
    }
    f->pool = pool_for(f);
    if (!f->pool) {
        lh_fetch_free(f);
        return NULL;
    }
    memcpy(f->out, head, head_len);
    if (body_len)
        memcpy(f->out + head_len, body, body_len);
    f->phase = QUEUED;
    arm_deadline(f);
    begin(f);
    return f;
}

void lh_fetch_free(struct lh_fetch *f)
{
    if (!f)
        return;
    if (f->wait.cancel)
        cancel(&f->wait);
    if (f->live_prev)
        f->live_prev->live_next = f->live_next;
    else if (live == f)
        live = f->live_next;
    if (f->live_next)
        f->live_next->live_prev = f->live_prev;
    if (f->addrs)
        evutil_freeaddrinfo(f->addrs);
    free(f->head_buf);
    free(f->out);
    free(f->ca_file);
    if (nspare < SPARE_FETCHES && f->deadline && f->body && !closing) {
        event_del(f->deadline);
        evbuffer_drain(f->body, evbuffer_get_length(f->body));
        spare[nspare++] = f;
        return;
    }
    if (f->deadline)
        event_free(f->deadline);
    if (f->body)
        evbuffer_free(f->body);
    free(f);
}

struct lh_wait *lh_fetch_wait(struct lh_fetch *f) { return &f->wait; }

const struct lh_response_head *lh_fetch_head(const struct lh_fetch *f, const char **err,
                                             int *status)
{
    if (f->have_head && (f->phase != FAILED || f->o.stream))
        return &f->head;
    *err = f->err[0] ? f->err : "no response";
    *status = f->err_status ? f->err_status : 502;
    return NULL;
}

const char *lh_fetch_error(const struct lh_fetch *f) { return f->err; }

const char *lh_fetch_body(struct lh_fetch *f, size_t *len)
{
    *len = evbuffer_get_length(f->body);
    return *len ? (const char *)evbuffer_pullup(f->body, -1) : "";
}

bool lh_fetch_complete(const struct lh_fetch *f)
{
    return f->phase == DONE;
}

int lh_fetch_next(struct lh_fetch *f, const char **data, size_t *len)
{
    size_t n = evbuffer_get_length(f->body);
    if (n) {
        if (n > PIECE_MAX)
            n = PIECE_MAX;
        if (!f->piece && !(f->piece = malloc(PIECE_MAX))) {
            snprintf(f->err, sizeof f->err, "out of memory");
            return -1;
        }
        evbuffer_remove(f->body, f->piece, n);
        *data = f->piece;
        *len = n;
        if (f->reading_paused && f->up && evbuffer_get_length(f->body) < STREAM_AHEAD / 2) {
            f->reading_paused = false;
            up_read(f->up, true);
        }
        return 1;
    }
    if (f->phase == DONE)
        return 0;
    if (f->phase == FAILED)
        return -1;
    f->wait.done = false;
    f->wait.wake = NULL;
    return 2;
}

int64_t lh_fetch_left(const struct lh_fetch *f)
{
    if (!f->have_head || f->framing != LH_FRAMING_LENGTH)
        return -1;
    return f->remaining + (int64_t)evbuffer_get_length(f->body);
}

void lh_client_free_all(void)
{
    /* exchanges still held (by a Lua state that is freed later): stopped, and cut
     * from the loop, so that freeing them later touches no event */
    closing = true;
    for (struct lh_fetch *f = live; f; f = f->live_next) {
        cancel(&f->wait);
        if (f->deadline)
            event_free(f->deadline);
        f->deadline = NULL;
    }
    while (nspare) { /* their timers belong to this loop */
        struct lh_fetch *f = spare[--nspare];
        event_free(f->deadline);
        evbuffer_free(f->body);
        free(f);
    }
    while (pools) {
        struct pool *p = pools;
        pools = p->next;
        while (p->idle) {
            struct upstream *up = p->idle;
            p->idle = up->next;
            upstream_free(up);
        }
        pool_free(p);
    }
    while (tls_ctxs) {
        struct tls_ctx *t = tls_ctxs;
        tls_ctxs = t->next;
        SSL_CTX_free(t->ctx);
        free(t->ca_file);
        free(t);
    }
    closing = false;
}

/* ---- URLs ---------------------------------------------------------------------------- */

int lh_url_parse(const char *url, size_t len, struct lh_url *u, const char **err)
{
    memset(u, 0, sizeof *u);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f) {
            *err = "a URL has only visible ASCII characters (percent-encode the rest)";
            return -1;
        }
    const char *p;
    if (len >= 7 && !strncasecmp(url, "http://", 7)) {
        p = url + 7;
    } else if (len >= 8 && !strncasecmp(url, "https://", 8)) {
        p = url + 8;
        u->tls = true;
    } else {
        *err = "only http:// and https:// URLs";
        return -1;
    }
    const char *end = url + len;
    const char *auth_end = p;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    if (memchr(p, '@', (size_t)(auth_end - p))) {
        *err = "a URL with user:password@ (send an Authorization header instead)";
        return -1;
    }
    for (const char *q = auth_end; q < end; q++)
        if (*q == '#') {
            *err = "a URL with a #fragment";
            return -1;
        }
    const char *host = p, *host_end, *port = NULL;
    if (p < auth_end && *p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end) {
            *err = "an IPv6 address without its ]";
            return -1;
        }
        if (host_end + 1 < auth_end) {
            if (host_end[1] != ':') {
                *err = "a bad host";
                return -1;
            }
            port = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end)
            port = host_end + 1;
        else
            host_end = auth_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof u->host) {
        *err = hlen ? "a host name longer than 255 bytes" : "a URL without a host";
        return -1;
    }
    memcpy(u->host, host, hlen);
    u->port = u->tls ? 443 : 80;
    if (port) {
        unsigned long v = 0;
        if (port == auth_end) {
            *err = "an empty port";
            return -1;
        }
        for (const char *q = port; q < auth_end; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (unsigned long)(*q - '0')) > 65535) {
                *err = "a port is a number from 1 to 65535";
                return -1;
            }
        }
        if (v == 0) {
            *err = "a port is a number from 1 to 65535";
            return -1;
        }
        u->port = (uint16_t)v;
    }
    bool default_port = u->port == (u->tls ? 443 : 80);
    int n = snprintf(u->authority, sizeof u->authority, "%.*s",
                     (int)((default_port && port ? port - 1 : auth_end) - p), p);
    if (n < 0 || (size_t)n >= sizeof u->authority) {
        *err = "a host name longer than 255 bytes";
        return -1;
    }
    u->target = auth_end < end ? auth_end : "/";
    u->target_len = auth_end < end ? (size_t)(end - auth_end) : 1;
    u->slash = *u->target == '?'; /* "http://h?x" asks for "/?x" */
    return 0;
}
