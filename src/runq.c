/* runq.c - requests whose Lua handler paused: a run queue per worker. See
 * server_int.h.
 *
 * The queue runs after the events of a poll: each request that was in the queue then
 * gets one time slice (a handler that computes gets no second one before the next
 * poll), and the run stops early once RUN_BUDGET_US have gone, so requests that
 * arrive meanwhile wait at most that and one slice. A request whose wait ended (a
 * backend answered, a sleep is over) runs in the same turn of the loop as the event
 * that ended it, after the other events of its poll, rather than one poll later: a
 * proxied request costs no extra poll. */
#include "server_int.h"
#include "dispatch.h"
#include "lua_host.h"
#include "sanitizer.h"
#include "wait.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RUN_BUDGET_US 1000

/* Parked requests freed, kept for the next ones: 13 KB is past malloc's fast caches
 * (4 % of a proxied request's time went to malloc). Without LH_POOLS, none. */
#if LH_POOLS
#define SPARE_PARKED 64
static struct parked *spare_parked[SPARE_PARKED];
static int nspare_parked;

static struct parked *parked_new(void)
{
    if (nspare_parked)
        return spare_parked[--nspare_parked];
    return malloc(sizeof(struct parked));
}

static void parked_free(struct parked *p)
{
    if (nspare_parked < SPARE_PARKED)
        spare_parked[nspare_parked++] = p;
    else
        free(p);
}

void lh_runq_free_spares(void)
{
    while (nspare_parked)
        free(spare_parked[--nspare_parked]);
}
#else
static struct parked *parked_new(void) { return malloc(sizeof(struct parked)); }
static void parked_free(struct parked *p) { free(p); }
void lh_runq_free_spares(void) {}
#endif

static void schedule_resume(struct worker *w)
{
    static const struct timeval now = {0, 0};
    if (!evtimer_pending(w->resume_ev, NULL))
        evtimer_add(w->resume_ev, &now); /* after the next poll: I/O goes first */
}

static void enqueue(struct worker *w, struct conn *c, bool woken);

/* The wait is over: the request's next turn. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    enqueue(c->w, c, true);
}

/* The parked request's handler asked to wait (sleep): it is queued when a timer of
 * wait_ns fires, and stays parked meanwhile, its socket watched as before (a client
 * that leaves frees it with the timer, lh_runq_unpark). 0, or -1 (no timer: the
 * handler is told, ctx.wait_ns -1). */
static int wait_for_timer(struct conn *c, struct parked *p)
{
    p->ctx.wait_asked = false;
    if (!p->wake)
        p->wake = evtimer_new(c->w->base, on_wake, c);
    int64_t ns = p->ctx.wait_ns;
    struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000),
                         .tv_usec = (suseconds_t)(ns % 1000000000 / 1000)};
    if (!p->wake || evtimer_add(p->wake, &tv) < 0) {
        p->ctx.wait_ns = -1;
        return -1;
    }
    return 0;
}

static void wake_conn(void *arg)
{
    struct conn *c = arg;
    enqueue(c->w, c, true);
}

/* c's next turn: in the run queue, or after the wait its handler asked for. woken: its
 * wait just ended, in an event's callback: the queue runs in this turn of the loop
 * (event_active: after the events of this poll, which share the priority). */
static void enqueue(struct worker *w, struct conn *c, bool woken)
{
    struct parked *p = c->parked;
    if (p && p->ctx.wait_asked && p->ctx.wait_op) {
        p->ctx.wait_asked = false;
        if (lh_wait_hold(p->ctx.wait_op, wake_conn, c))
            return;
    }
    if (p && p->ctx.wait_asked && p->ctx.wait_ns > 0 && wait_for_timer(c, p) == 0)
        return;
    if (p)
        p->ctx.wait_asked = false; /* sleep(0): this turn is all it asked for */
    c->next_run = NULL;
    c->run_seq = ++w->run_seq;
    if (w->runq_tail)
        w->runq_tail->next_run = c;
    else
        w->runq = c;
    w->runq_tail = c;
    if (woken)
        event_active(w->resume_ev, EV_TIMEOUT, 1);
    else
        schedule_resume(w);
}

void lh_runq_enqueue(struct conn *c) { enqueue(c->w, c, false); }

/* A body borrowed from the file cache or the cache of gzip-coded copies may be gone
 * when the request goes on (other requests refill them meanwhile): r gets a copy. */
static void own_body(struct lh_response *r)
{
    if (r->body_kind == LH_BODY_MEM && !r->body_owned && r->body_len &&
        !(r->body >= r->page && r->body < r->page + sizeof r->page)) {
        char *copy = malloc(r->body_len);
        if (copy)
            memcpy(copy, r->body, r->body_len);
        lh_response_body(r, copy, copy ? r->body_len : 0, copy);
    }
}

/* Move what the request needs off the worker's scratch space (other requests will
 * use it). The request's bytes stay in c->in, which is not read into while the
 * connection waits. */
int lh_runq_keep(struct conn *c, const struct lh_ctx *ctx)
{
    struct worker *w = c->w;
    /* 13 KB, mostly room for headers: filled field by field, not cleared first (a
     * calloc's clearing was a quarter of a proxied request's instructions) */
    struct parked *p = parked_new();
    char *pathbuf = malloc(ctx->pathcap);
    if (!p || !pathbuf) {
        if (p)
            parked_free(p);
        free(pathbuf);
        lh_lua_request_done(ctx->lua, (struct lh_ctx *)ctx);
        lh_response_free(ctx->resp); /* what the handler had made so far */
        return -1;
    }
    p->stream = false;
    p->status = p->version = 0;
    p->sent = 0;
    p->length = -1;
    p->wake = NULL;
    memcpy(&p->req, ctx->req, offsetof(struct lh_request, headers) +
                                  ctx->req->nheaders * sizeof ctx->req->headers[0]);
    if (ctx->req->host)
        p->req.host = &p->req.headers[ctx->req->host - ctx->req->headers];
    lh_response_move(&p->resp, ctx->resp);
    own_body(&p->resp);
    memcpy(pathbuf, ctx->pathbuf, ctx->pathcap);
    size_t iplen = strnlen(ctx->remote_addr, sizeof p->ip - 1);
    memcpy(p->ip, ctx->remote_addr, iplen);
    p->ip[iplen] = '\0';
    p->ctx = *ctx;
    p->ctx.req = &p->req;
    p->ctx.resp = &p->resp;
    p->ctx.remote_addr = p->ip;
    p->ctx.pathbuf = p->pathbuf = pathbuf;
    if (ctx->path >= ctx->pathbuf && ctx->path < ctx->pathbuf + ctx->pathcap)
        p->ctx.path = pathbuf + (ctx->path - ctx->pathbuf);
    p->set = w->set;
    p->set->refs++;
    lh_lua_ctx_moved(p->ctx.lua, &p->ctx);
    c->parked = p;
    return 0;
}

/* The request's handler paused: keep it off the scratch space and queue it. */
enum step lh_runq_park(struct conn *c, const struct lh_ctx *ctx)
{
    if (lh_runq_keep(c, ctx) < 0)
        return lh_send_error(c, ctx->req, 500);
    c->state = C_LUA;
    /* A client that half-closed right after its request (`printf ... | nc -N`) wants
     * the answer: its FIN is in by now, a slice after the request was read. */
    char b;
    if (!c->eof && recv(c->fd, &b, 1, MSG_PEEK) == 0)
        c->eof = true;
    if (c->eof) {
        if (c->armed)
            event_del(&c->ev);
        c->armed = 0;
    } else {
        lh_conn_arm(c, EV_READ, PARKED_WATCH); /* a client that leaves abandons the handler */
    }
    enqueue(c->w, c, false);
    return DONE;
}

/* C_LUA or C_STREAM and the socket is readable: the client closed (abandon the
 * handler, which the access log shows as nginx's 499, or the stream), or it sent
 * more, which stays in the socket until this request is answered (a close behind it
 * cannot be seen: stop watching; a stream then finds it out when it sends).
 * A close cannot tell a client that left from one that only half-closed: one that
 * comes with more requests already sent, or right after the last bytes, is taken as
 * a half-close and the requests are answered (CONTRACT 5); a later one as leaving. */
void lh_runq_watch(struct conn *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n == 0 && (lh_conn_has_next(c) || now_mono() - c->in_at < HALF_CLOSE_SECS))
        c->eof = true;
    if (n > 0 || c->eof) {
        event_del(&c->ev);
        c->armed = 0;
        return;
    }
    if (!c->parked->stream)
        lh_send_log_access(c, &c->parked->req, 499, 0);
    lh_conn_free(c);
}

/* Take the parked request off c (abandon: drop it, e.g. the connection is gone). */
void lh_runq_unpark(struct conn *c, bool abandon)
{
    struct parked *p = c->parked;
    struct worker *w = c->w;
    c->parked = NULL;
    for (struct conn **q = &w->runq, *prev = NULL; *q; prev = *q, q = &(*q)->next_run)
        if (*q == c) {
            *q = c->next_run;
            if (w->runq_tail == c)
                w->runq_tail = prev;
            break;
        }
    if (p->stream) /* the head went out with its status; the body is what was sent */
        lh_send_log_access(c, &p->req, p->status, p->sent);
    if (p->wake)
        event_free(p->wake); /* a sleep cut short: no timer is left behind */
    if (abandon) {
        lh_dispatch_abort(&p->ctx);
        lh_response_free(&p->resp);
    }
    free(p->pathbuf);
    lh_settings_release(p->set);
    parked_free(p);
}

/* One slice of the oldest paused handler. */
static void run_one(struct worker *w)
{
    struct conn *c = w->runq;
    w->runq = c->next_run;
    if (!w->runq)
        w->runq_tail = NULL;
    if (c->state == C_STREAM) {
        lh_send_stream_step(c);
        return;
    }
    struct parked *p = c->parked;
    lh_worker_running(w, &p->ctx);
    enum lh_step r = lh_dispatch(&p->ctx);
    lh_worker_running(w, NULL);
    if (r == LH_SUSPENDED) {
        /* a slice that answered with file() and then paused in an after hook */
        own_body(&p->resp);
        enqueue(w, c, false);
        return;
    }
    if (lh_response_streams(&p->resp)) {
        if (lh_send_stream_start(c) == AGAIN)
            lh_conn_process(c);
        return;
    }
    c->state = C_HEAD;
    struct lh_request *req = &w->req; /* the head again, in the scratch; unpark frees p */
    memcpy(req, &p->req, offsetof(struct lh_request, headers) +
                             p->req.nheaders * sizeof p->req.headers[0]);
    if (p->req.host)
        req->host = &req->headers[p->req.host - p->req.headers];
    struct lh_response *resp = &w->resp;
    lh_response_move(resp, &p->resp);
    lh_runq_unpark(c, false);
    if (lh_send_respond(c, req, resp) == AGAIN)
        lh_conn_process(c);
}

/* The queue's turn (see the top): a slice for each request queued before it began,
 * oldest first, within the budget; the rest after the next poll. */
void lh_runq_on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint32_t upto = w->run_seq;
    int64_t start = w->runq && w->runq->next_run ? mono_us() : 0;
    while (w->runq && (int32_t)(w->runq->run_seq - upto) <= 0) {
        run_one(w);
        if (w->runq && mono_us() - start >= RUN_BUDGET_US)
            break;
    }
    if (w->runq)
        schedule_resume(w);
}
