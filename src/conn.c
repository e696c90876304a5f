/* conn.c - the life of a connection: read a request, parse it, have it answered,
 * keep the connection alive or close it with a lingering close. See server_int.h.
 *
 * A connection reads one request at a time into its own buffer (released while it
 * idles), answers it, and only then looks at the next pipelined request, so responses
 * leave in order. */
#include "server_int.h"
#include "dispatch.h"
#include "http.h"
#include "ipkey.h"
#include "live.h"
#include "log.h"
#include "lua_host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_TIMEOUT 2.0           /* seconds we drain a client after our close */
#define MAX_PIPELINED_PER_EVENT 16   /* then yield to other connections */

static void on_conn_event(evutil_socket_t fd, short what, void *arg);

/* Watch fd for `what` (EV_READ or EV_WRITE) with a timeout in seconds. */
void lh_conn_arm(struct conn *c, short what, double timeout)
{
    /* Persistent events stay registered with the kernel between requests; adding a
     * pending event again only moves its timeout. */
    if (c->armed != what) {
        if (c->armed)
            event_del(&c->ev);
        event_assign(&c->ev, c->w->base, c->fd, what | EV_PERSIST, on_conn_event, c);
        c->armed = what;
    }
    struct timeval tv = tv_of(timeout);
    event_add(&c->ev, &tv);
}

/* Give back the connection's slot in max_connections and max_per_client. */
static void uncount_caps(struct conn *c)
{
    if (!c->counted)
        return;
    c->counted = false;
    lh_shm_conn_release(c->w->srv->shm, c->w->id, c->ticket);
}

void lh_conn_free(struct conn *c)
{
    struct worker *w = c->w;
    if (c->armed)
        event_del(&c->ev);
    if (c->parked)
        lh_runq_unpark(c, true);
    if (c->state == C_EVENTS)
        lh_live_forget(c);
    close(c->fd);
    if (c->file_fd >= 0)
        close(c->file_fd);
    lh_conn_release_input(c);
    free(c->out);
    uncount_caps(c);
    if (c->state == C_LINGER)
        w->nlinger--;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    lh_conn_release(w, c);
    if (w->stopping && w->nconns == 0)
        event_base_loopbreak(w->base);
}

/* Close without lingering. What the client sent already is read first: unread bytes
 * would make the close a reset, which can destroy the response just sent. */
static void close_now(struct conn *c)
{
    char buf[4096];
    for (int i = 0; i < 16 && recv(c->fd, buf, sizeof buf, 0) > 0; i++)
        continue;
    lh_conn_free(c);
}

/* Our side is done: half-close and read until the client closes too, so that what
 * it still sends cannot turn into a reset that destroys our last response.
 *
 * The connection can carry no more requests, so it stops counting against
 * max_connections and max_per_client here, not when the client's FIN comes: a
 * client that uses one connection per request has often opened the next one by
 * then, and would get 503 far below its cap. Sockets refused over a cap linger
 * uncounted too. So that neither can take every descriptor the process has (a flood
 * past max_connections could), at most srv->linger_max connections of a worker linger
 * at once: LINGER_MAX, or a quarter of the descriptor limit if that is less (the
 * limit is raised to leave room for them, see raise_fd_limit in master.c). Beyond it a
 * connection is closed at once, which costs only a client that is still sending. */
void lh_conn_linger(struct conn *c)
{
    struct worker *w = c->w;
    uncount_caps(c);
    if (w->stopping || w->nlinger >= w->srv->linger_max) {
        close_now(c);
        return;
    }
    w->nlinger++;
    c->state = C_LINGER; /* lh_conn_free gives the place back from here on */
    if (shutdown(c->fd, SHUT_WR) < 0) {
        lh_conn_free(c);
        return;
    }
    lh_conn_release_input(c);
    c->deadline = now_mono() + LINGER_TIMEOUT; /* in all, however the client drips */
    lh_conn_arm(c, EV_READ, LINGER_TIMEOUT);
}

static void linger_read(struct conn *c)
{
    char buf[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0 && now_mono() < c->deadline)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            double left = c->deadline - now_mono();
            if (left <= 0)
                break;
            lh_conn_arm(c, EV_READ, left);
            return;
        }
        break;
    }
    lh_conn_free(c);
}

static bool is_loopback(const struct lh_ipkey *k)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return (memcmp(k->b, v4mapped, 12) == 0 && k->b[12] == 127) ||
           memcmp(k->b, v6loop, 16) == 0;
}

/* --dev shows error detail to this machine only. A proxy or tunnel on this machine
 * makes every visitor a loopback peer, so the host asked for must be this machine's
 * too (a tunnel's public name is not): the Host header, or an absolute-form target's
 * authority, which replaces it (lh_http_host). */
static bool host_is_local(const struct lh_request *req)
{
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    size_t n;
    const char *v = lh_http_host(req, &n);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (n == strlen(names[i]) && strncasecmp(v, names[i], n) == 0)
            return true;
    return false;
}

/* --dev: the live-reload script and event stream, the server's own (no hook or
 * route sees them). */
static enum step answer_live(struct conn *c, const struct lh_request *req,
                             enum lh_live_path what)
{
    if (what == LH_LIVE_EVENTS && req->method_len == 3 && memcmp(req->method, "GET", 3) == 0)
        return lh_live_attach(c, req, is_loopback(&c->ip) && host_is_local(req));
    struct lh_response *r = &c->w->resp;
    lh_response_init(r, 200);
    if (what == LH_LIVE_SCRIPT) {
        lh_response_header(r, "Content-Type", "text/javascript; charset=utf-8");
        lh_response_header(r, "Cache-Control", "no-cache");
        lh_response_body(r, lh_live_js, strlen(lh_live_js), NULL);
    } else {
        lh_response_error(r, what == LH_LIVE_EVENTS ? 405 : 404);
        if (what == LH_LIVE_EVENTS)
            lh_response_header(r, "Allow", "GET");
    }
    /* a HEAD of any of them, the errors included, has no body */
    r->no_body = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    return lh_send_respond(c, req, r);
}

/* The request in c->in is complete (its head parsed into w->req): answer it. */
static enum step answer_request(struct conn *c, const char *body, size_t body_len)
{
    struct worker *w = c->w;
    const struct lh_request *req = &w->req;
    enum lh_live_path live;
    if (w->live && (live = lh_live_path_of(req->target, req->target_len)) != LH_LIVE_NONE)
        return answer_live(c, req, live);
    if (w->pathcap < (size_t)req->target_len + 2) {
        size_t cap = (size_t)req->target_len + 2;
        char *p = realloc(w->path, cap);
        if (!p)
            return lh_send_error(c, req, 500);
        w->path = p;
        w->pathcap = cap;
    }
    char ip[LH_IP_STRLEN];
    lh_ipkey_format(&c->ip, ip);
    struct lh_ctx ctx = {.req = req,
                         .resp = &w->resp,
                         .st = &w->set->st,
                         .fcache = w->fcache,
                         .lua = w->set->lua,
                         .front = &w->set->front,
                         .body = body,
                         .body_len = body_len,
                         .remote_addr = ip,
                         .dev_loopback = w->set->dev && is_loopback(&c->ip) &&
                                         host_is_local(req),
                         .pathbuf = w->path,
                         .pathcap = w->pathcap};
    lh_dispatch_init(&ctx);
    lh_worker_running(w, &ctx);
    enum lh_step r = lh_dispatch(&ctx);
    lh_worker_running(w, NULL);
    if (r == LH_SUSPENDED)
        return lh_runq_park(c, &ctx);
    if (lh_response_streams(&w->resp)) { /* the request lives on with its stream */
        if (lh_runq_keep(c, &ctx) < 0)
            return lh_send_error(c, req, 500);
        return lh_send_stream_start(c);
    }
    return lh_send_respond(c, req, &w->resp);
}

/* Bytes of the current request, so the next pipelined one can move to the front. */
static uint32_t request_extent(const struct conn *c)
{
    if (c->body_len < 0)
        return c->raw_pos;
    return c->head_len + (uint32_t)c->body_len;
}

bool lh_conn_has_next(const struct conn *c) { return c->in_len > request_extent(c); }

enum step lh_conn_finish_request(struct conn *c)
{
    c->nreq++;
    if (c->close_after) {
        lh_conn_linger(c);
        return DONE;
    }
    uint32_t used = request_extent(c);
    if (used > c->in_len)
        used = c->in_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->state = C_HEAD;
    c->scanned = 0;
    c->head_len = c->raw_pos = c->body_end = 0;
    c->body_len = 0;
    c->deadline = 0;
    return AGAIN;
}

/* How many bytes the buffer may hold in the current state. */
static size_t input_limit(const struct conn *c)
{
    const struct lh_limits *l = &cfg_of(c)->limits;
    if (c->state == C_HEAD)
        return (size_t)l->header_bytes + 1;
    if (c->body_len >= 0)
        return c->head_len + (size_t)c->body_len;
    /* chunked: the decoded body may reach body_bytes; keep a window for framing */
    return c->head_len + (size_t)l->body_bytes + 16384;
}

/* Read what the socket has. 1: got bytes or full; 0: nothing yet; -1: failed. Sets
 * c->eof when the client closed its side: the requests already buffered are still
 * answered, and the connection closes once no complete request is left. */
static int read_input(struct conn *c)
{
    size_t limit = input_limit(c);
    size_t want = c->in_len + IN_INITIAL;
    if (want > limit)
        want = limit;
    if (want <= c->in_len)
        return 1; /* full: let the parser decide */
    if (lh_conn_reserve_input(c, want) < 0)
        return -1;
    ssize_t n;
    do
        n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        c->eof = true;
        return 0;
    }
    if (n < 0)
        return errno == EAGAIN ? 0 : -1;
    c->in_len += (uint32_t)n;
    c->in_at = now_mono();
    return 1;
}

/* Wait for more request bytes, within the request deadline. After the client's
 * half-close none can come: the incomplete request is dropped without an answer (as
 * nginx does) and the connection closed. */
static enum step wait_request(struct conn *c)
{
    if (c->eof) {
        lh_conn_free(c);
        return DONE;
    }
    if (c->deadline == 0)
        c->deadline = now_mono() + cfg_of(c)->limits.request_timeout;
    lh_conn_arm(c, EV_READ, c->deadline - now_mono());
    return DONE;
}

/* Nothing buffered between requests: release the buffer and wait. */
static enum step go_idle(struct conn *c)
{
    const struct lh_config *cfg = cfg_of(c);
    lh_conn_release_input(c);
    if (c->w->stopping || c->eof) {
        lh_conn_free(c);
        return DONE;
    }
    lh_conn_arm(c, EV_READ, c->nreq ? cfg->keepalive.timeout : cfg->limits.request_timeout);
    return DONE;
}

/* A head was parsed into w->req: set up reading its body, or answer it now. */
static enum step start_request(struct conn *c, int head_len)
{
    const struct lh_request *req = &c->w->req;
    c->head_len = (uint32_t)head_len;
    if (req->content_length > cfg_of(c)->limits.body_bytes)
        return lh_send_error(c, req, 413);
    if (!req->chunked && req->content_length <= 0) {
        c->body_len = 0;
        return answer_request(c, "", 0);
    }
    c->body_len = req->chunked ? -1 : req->content_length;
    c->raw_pos = c->body_end = (uint32_t)head_len;
    memset(&c->chunk, 0, sizeof c->chunk);
    c->state = C_BODY;
    if (req->expect_continue && req->version == 11 && c->in_len == c->head_len)
        return lh_send_continue(c);
    return AGAIN;
}

/* Parse the head of the request being read again: w->req is shared by the
 * worker's connections and may describe another one by now. */
static const struct lh_request *parse_head_again(struct conn *c)
{
    size_t scanned = 0;
    lh_http_parse_head(c->in, c->head_len, &scanned, SIZE_MAX, &c->w->req);
    return &c->w->req;
}

static enum step answer_body(struct conn *c)
{
    parse_head_again(c);
    size_t len = c->body_len >= 0 ? (size_t)c->body_len : c->body_end - c->head_len;
    return answer_request(c, c->in + c->head_len, len);
}

/* C_BODY: answer once the whole body is in. A chunked body is decoded in place and
 * the undecoded rest moved down behind it, so framing never piles up. */
static enum step read_body(struct conn *c)
{
    if (c->body_len >= 0) {
        if (c->in_len < c->head_len + (uint64_t)c->body_len)
            return wait_request(c);
        return answer_body(c);
    }
    const struct lh_limits *l = &cfg_of(c)->limits;
    size_t used, made;
    int rc = lh_chunked_decode(&c->chunk, c->in + c->raw_pos, c->in_len - c->raw_pos,
                               c->in + c->body_end, &used, &made, (size_t)l->header_bytes);
    c->raw_pos += (uint32_t)used;
    c->body_end += (uint32_t)made;
    memmove(c->in + c->body_end, c->in + c->raw_pos, c->in_len - c->raw_pos);
    c->in_len -= c->raw_pos - c->body_end;
    c->raw_pos = c->body_end;
    if (rc < 0)
        return lh_send_error(c, parse_head_again(c), 400);
    if (c->body_end - c->head_len > (uint64_t)l->body_bytes)
        return lh_send_error(c, parse_head_again(c), 413);
    if (rc == 0)
        return wait_request(c);
    return answer_body(c);
}

/* Move the connection forward with what is buffered, request after request. */
void lh_conn_process(struct conn *c)
{
    struct worker *w = c->w;
    for (int round = 0; round < MAX_PIPELINED_PER_EVENT; round++) {
        enum step st;
        if (c->state == C_BODY) {
            st = read_body(c);
        } else if (c->in_len == 0) {
            st = go_idle(c);
        } else {
            int n = lh_http_parse_head(c->in, c->in_len, &c->scanned,
                                       (size_t)cfg_of(c)->limits.header_bytes, &w->req);
            if (n < 0)
                st = lh_send_error(c, NULL, -n);
            else if (n == 0 && c->in_len >= input_limit(c))
                st = lh_send_error(c, NULL, 431);
            else if (n == 0)
                st = wait_request(c);
            else
                st = start_request(c, n);
        }
        if (st == DONE)
            return;
    }
    /* many pipelined requests: let other connections have a turn, then go on */
    event_active(&c->ev, EV_READ, 0);
}

static void on_timeout(struct conn *c)
{
    if (c->state == C_LUA || c->state == C_STREAM) /* the handler has its own time limit */
        lh_conn_arm(c, EV_READ, PARKED_WATCH);
    else if ((c->state == C_HEAD && c->in_len > 0) || c->state == C_BODY)
        lh_send_error(c, NULL, 408);
    else
        lh_conn_free(c); /* idle keep-alive, stalled reader, or lingering close */
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->state == C_EVENTS) {
        lh_live_on_event(c, what);
        return;
    }
    if (what & EV_TIMEOUT) {
        on_timeout(c);
        return;
    }
    if (c->state == C_WRITE) {
        if (lh_send_after_flush(c, lh_send_flush(c)) == AGAIN)
            lh_conn_process(c);
        return;
    }
    if (c->state == C_LINGER) {
        linger_read(c);
        return;
    }
    if (c->state == C_LUA || c->state == C_STREAM) {
        lh_runq_watch(c);
        return;
    }
    if (read_input(c) < 0)
        lh_conn_free(c);
    else
        lh_conn_process(c);
}

struct conn *lh_conn_new(struct worker *w, int fd, const struct lh_ipkey *ip)
{
    struct conn *c = lh_conn_alloc(w);
    if (!c)
        return NULL;
    c->w = w;
    c->fd = fd;
    c->ip = *ip;
    c->file_fd = -1;
    c->state = C_HEAD;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    return c;
}
