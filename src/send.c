/* send.c - responses onto the wire, and the access log. See server_int.h.
 *
 * Output goes out with one send() when it can; what does not fit is kept on the
 * connection and sent when the socket is writable.
 *
 * A streamed body (a Lua function, lua_host.h) goes out piece by piece: its request
 * stays parked (runq.c) with the function, and each turn of the run queue makes one
 * call, or one time slice of one, and sends the piece it returned as a chunk. The
 * next call waits until the socket has taken all of it, so a client that reads
 * slowly holds back the function instead of filling the server's memory. */
#include "server_int.h"
#include "cond.h"
#include "gzip.h"
#include "http.h"
#include "live.h"
#include "log.h"
#include "lua_host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Files up to this size (the custom 404 page, a file the cache could not take) are
 * read in behind the head: pread and one sendmsg cost the kernel less than sendmsg
 * and sendfile, 9 % of such a request's CPU time (tests/bench/abab.py). */
#define INLINE_FILE_MAX (32 * 1024)

#define SEND_TIMEOUT 60.0            /* seconds a stalled client may block a response */

/* Send what is pending (memory, then file). 1: all sent; 0: blocked; -1: failed. */
int lh_send_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | (c->file_rem ? MSG_MORE : 0));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->out_off += (uint32_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    while (c->file_rem > 0) {
        off_t off = (off_t)c->file_off;
        size_t chunk = c->file_rem > (1 << 20) ? (1 << 20) : (size_t)c->file_rem;
        ssize_t n = sendfile(c->fd, c->file_fd, &off, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0)
            return -1; /* the file shrank under us: the promised length cannot be met */
        c->file_off += n;
        c->file_rem -= n;
    }
    if (c->file_fd >= 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    return 1;
}

/* A stream whose piece is out: the next call waits in the run queue, the socket is
 * watched for a client that leaves (runq.c's lh_runq_watch), as it was while the
 * request was read; after a wait to write, the watch comes back. (Not watched: a
 * client that half-closed, and one that sent more, which lh_runq_watch leaves in the
 * socket; either is found out when a send fails.) */
static void stream_on(struct conn *c)
{
    c->state = C_STREAM;
    if (c->armed == EV_WRITE) {
        if (c->eof) {
            event_del(&c->ev);
            c->armed = 0;
        } else {
            lh_conn_arm(c, EV_READ, PARKED_WATCH);
        }
    }
    lh_runq_enqueue(c);
}

/* Continue after a write attempt: on to the rest of the cycle, or wait to write. */
enum step lh_send_after_flush(struct conn *c, int rc)
{
    if (rc < 0) {
        lh_conn_free(c);
        return DONE;
    }
    if (rc == 0) {
        c->state = C_WRITE;
        lh_conn_arm(c, EV_WRITE, SEND_TIMEOUT);
        return DONE;
    }
    if (c->after_write == AW_BODY) {
        c->state = C_BODY;
        return AGAIN;
    }
    if (c->after_write == AW_STREAM) {
        stream_on(c);
        return DONE;
    }
    return lh_conn_finish_request(c);
}

/* Try to send the niov parts of iov (at most 3) with one sendmsg; keep what the
 * socket did not take. Returns as lh_send_flush does. */
static int send_iov(struct conn *c, struct iovec *iov, int niov)
{
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    ssize_t w;
    do
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (c->file_rem ? MSG_MORE : 0));
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN)
        return -1;
    size_t sent = w < 0 ? 0 : (size_t)w;
    if (sent == total)
        return lh_send_flush(c); /* the file part, if any */
    size_t rest = total - sent, pos = 0;
    c->out = malloc(rest);
    if (!c->out)
        return -1;
    for (int i = 0; i < niov; i++) {
        size_t len = iov[i].iov_len, skip = sent < len ? sent : len;
        sent -= skip;
        memcpy(c->out + pos, (const char *)iov[i].iov_base + skip, len - skip);
        pos += len - skip;
    }
    c->out_len = (uint32_t)rest;
    c->out_off = 0;
    return 0;
}

/* Try to send buf[0..n) then extra[0..extra_len); keep what the socket did not take.
 * Returns as lh_send_flush does. */
static int send_now(struct conn *c, const char *buf, size_t n, const char *extra,
                    size_t extra_len)
{
    struct iovec iov[2] = {{(void *)buf, n}, {(void *)extra, extra_len}};
    return send_iov(c, iov, extra_len ? 2 : 1);
}

/* Render r and start sending it; the connection takes over what remains; then aw. */
static enum step send_response(struct conn *c, struct lh_response *r, int version,
                               bool keepalive, enum after_write aw)
{
    struct worker *w = c->w;
    time_t now = time(NULL);
    if (now != w->date_sec) {
        w->date_sec = now;
        lh_http_date(now, w->date);
    }
    c->close_after = !keepalive;
    c->after_write = (uint8_t)aw;
    /* the head goes into the worker's scratch; one larger than that (Lua may set up
     * to LH_RESP_MAX_STORE bytes of headers) into a buffer of its own */
    char *out = w->out, *big = NULL;
    size_t n = lh_response_render_head(r, version, keepalive, w->date, out, OUT_SCRATCH);
    if (n > OUT_SCRATCH && (big = malloc(n)) != NULL) {
        out = big;
        n = lh_response_render_head(r, version, keepalive, w->date, out, n);
    } else if (n > OUT_SCRATCH) {
        lh_response_error(r, 500);
        c->close_after = true;
        c->after_write = AW_FINISH; /* a stream too: the 500 is its answer */
        n = lh_response_render_head(r, version, false, w->date, out, OUT_SCRATCH);
    }
    int64_t body = lh_response_body_bytes(r);
    const char *extra = NULL;
    size_t extra_len = 0;
    if (body > 0 && r->body_kind == LH_BODY_MEM) {
        extra = r->body;
        extra_len = (size_t)body;
    } else if (body > 0 && r->body_kind == LH_BODY_FILE) {
        if (body <= INLINE_FILE_MAX && n + (size_t)body <= OUT_SCRATCH &&
            pread(r->fd, out + n, (size_t)body, r->file_off) == body) {
            n += (size_t)body;
        } else {
            c->file_fd = r->fd; /* the connection takes the file over */
            r->fd = -1;
            c->file_off = r->file_off;
            c->file_rem = body;
        }
    }
    int rc = send_now(c, out, n, extra, extra_len);
    free(big);
    lh_response_free(r);
    return lh_send_after_flush(c, rc);
}

void lh_send_log_access(struct conn *c, const struct lh_request *req, int status,
                       int64_t bytes)
{
    int fd = c->w->set->access_fd;
    if (fd < 0)
        return;
    char ip[LH_IP_STRLEN];
    lh_ipkey_format(&c->ip, ip);
    struct lh_access a = {.ip = ip, .status = status, .bytes = bytes};
    if (req) {
        const struct lh_header *ref = lh_http_header(req, "referer");
        const struct lh_header *ua = lh_http_header(req, "user-agent");
        a.method = req->method;
        a.method_len = req->method_len;
        a.target = req->target;
        a.target_len = req->target_len;
        a.version = req->version;
        if (ref) {
            a.referer = ref->value;
            a.referer_len = ref->value_len;
        }
        if (ua) {
            a.user_agent = ua->value;
            a.user_agent_len = ua->value_len;
        }
    }
    lh_log_access(fd, &a);
}

/* Refuse the request with status and close the connection after the response. */
enum step lh_send_error(struct conn *c, const struct lh_request *req, int status)
{
    struct lh_response *r = &c->w->resp;
    lh_response_init(r, status);
    lh_response_error(r, status);
    r->no_body = req && req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    /* dressed as dispatch would dress it, so error_pages (CONTRACT 8) covers the
     * parser's refusals and 408 too; without a request (req NULL: w->req may hold
     * half a parse) only what needs none: the page, CORS without an Origin */
    struct lh_ctx ctx = {.req = req, .resp = r, .st = &c->w->set->st,
                         .fcache = c->w->fcache, .front = &c->w->set->front};
    lh_front_dress(&ctx);
    lh_send_log_access(c, req, status, lh_response_body_bytes(r));
    return send_response(c, r, req ? req->version : 11, false, AW_FINISH);
}

static bool wants_keepalive(const struct conn *c, const struct lh_request *req,
                            const struct lh_response *resp)
{
    const struct lh_config *cfg = cfg_of(c);
    /* not c->eof: a client that half-closed after pipelining its requests gets each
     * of them answered as it would otherwise; the close follows the last one */
    if (!cfg->keepalive.enabled || c->w->stopping || resp->close || req->conn_close)
        return false;
    if (req->version == 10 && !req->conn_keepalive)
        return false;
    return (long)c->nreq + 1 < cfg->keepalive.max_requests;
}

/* Does r say already that it varies with Accept-Encoding (static.c decided its
 * coding, or the handler did)? */
static bool varies_by_coding(const struct lh_response *r)
{
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(lh_response_name(r, i), "Vary") == 0 &&
            strcasestr(lh_response_value(r, i), "accept-encoding"))
            return true;
    return false;
}

/* compress = true: a text body in memory of LH_GZIP_MIN bytes or more (from Lua, an
 * error page, a page with the live-reload script) gzip-coded for a client that takes
 * it, at level 1 as it is made for every response (files are coded once, at the
 * default level, in static.c). Streamed bodies go as they are. */
static void compress_body(struct conn *c, const struct lh_request *req, struct lh_response *r)
{
    if (!c->w->set->st.compress || r->body_kind != LH_BODY_MEM || r->body_len < LH_GZIP_MIN ||
        r->status == 206 || r->status == 204 || r->status == 304 ||
        lh_response_get(r, "Content-Encoding") || varies_by_coding(r))
        return;
    const char *type = lh_response_get(r, "Content-Type");
    if (!type || !lh_gzip_type_ok(type, strlen(type)))
        return;
    lh_response_header(r, "Vary", "Accept-Encoding");
    const struct lh_header *ae = lh_http_header(req, "accept-encoding");
    if (!ae || lh_http_header(req, "range") || !lh_gzip_accepted(ae->value, ae->value_len))
        return;
    char *out;
    size_t n;
    if (lh_gzip_compress(r->body, r->body_len, 1, &out, &n) < 0)
        return;
    if (n >= r->body_len) {
        free(out);
        return;
    }
    const char *etag = lh_response_get(r, "ETag");
    char coded[256];
    size_t elen = etag ? lh_gzip_etag(etag, strlen(etag), coded, sizeof coded) : 0;
    if (etag) {
        lh_response_unset(r, "ETag");
        if (elen)
            lh_response_header(r, "ETag", coded);
    }
    lh_response_body(r, out, n, out);
    lh_response_header(r, "Content-Encoding", "gzip");
}

/* The response to req is ready: log it and send it. */
enum step lh_send_respond(struct conn *c, const struct lh_request *req, struct lh_response *resp)
{
    if (c->w->live)
        lh_live_inject_response(resp);
    compress_body(c, req, resp);
    lh_send_log_access(c, req, resp->status, lh_response_body_bytes(resp));
    return send_response(c, resp, req->version, wants_keepalive(c, req, resp), AW_FINISH);
}

/* ---- a streamed body ------------------------------------------------------------------ */

/* The head goes out as for any response, with Transfer-Encoding: chunked on
 * HTTP/1.1; an HTTP/1.0 body ends with the connection, so it is closed after. A
 * stream of a known length (proxy()'s, lh_response.known_length) goes with its
 * Content-Length instead, on either version. The access log line is written when the
 * stream ends (lh_runq_unpark). */
enum step lh_send_stream_start(struct conn *c)
{
    struct parked *p = c->parked;
    p->stream = true;
    p->status = p->resp.status;
    p->version = p->req.version == 10 ? 10 : 11;
    p->length = p->resp.known_length;
    p->sent = 0;
    p->live_tag = c->w->live && lh_live_stream_takes_tag(&p->resp);
    p->live_split = false;
    p->live_tail = (struct lh_live_tail){0};
    c->state = C_STREAM;
    bool keepalive = (p->version == 11 || p->length >= 0) &&
                     wants_keepalive(c, &p->req, &p->resp);
    return send_response(c, &p->resp, p->version, keepalive, AW_STREAM);
}

struct piece {
    struct conn *c;
    int rc;                   /* as lh_send_flush */
    bool over;                /* the piece went past the known length */
};

/* lh_lua_stream_next's sink: one piece out as one chunk (as it is on HTTP/1.0, or
 * with a known length: then never past it). In --dev the live-reload tag goes into
 * the first piece with a "</body" (before its last, as in a whole page); before one
 * split across pieces it cannot (the start is out), so it goes at the end
 * (stream_end). A page with no "</body" at all is a fragment, left as it is. */
static void send_piece(void *arg, const char *s, size_t len)
{
    static const char tag[] = LH_LIVE_TAG;
    struct piece *pc = arg;
    struct conn *c = pc->c;
    struct parked *p = c->parked;
    if (p->length >= 0 && len > (uint64_t)(p->length - p->sent)) {
        len = (size_t)(p->length - p->sent);
        pc->over = true;
    }
    if (len == 0) { /* nothing to send; a zero-size chunk would end the body */
        pc->rc = 1;
        return;
    }
    size_t at = len;
    if (p->live_tag) { /* then length < 0: the tag counts against no Content-Length */
        at = lh_live_tag_at(s, len);
        p->live_split |= lh_live_tail_feed(&p->live_tail, s, len);
    }
    size_t tlen = at < len ? sizeof tag - 1 : 0;
    p->live_tag = p->live_tag && !tlen;
    char line[24];
    int n = p->version == 10 || p->length >= 0 ? 0
                                               : snprintf(line, sizeof line, "%zx\r\n", len + tlen);
    struct iovec iov[5] = {{line, (size_t)n}, {(void *)s, at}, {(void *)tag, tlen},
                           {(void *)(s + at), len - at}, {(void *)"\r\n", n ? 2 : 0}};
    pc->rc = send_iov(c, iov, 5);
    p->sent += (int64_t)(len + tlen);
}

/* Cut: no last chunk (or fewer bytes than the Content-Length said), so the client
 * sees an incomplete body. */
static void stream_cut(struct conn *c)
{
    lh_runq_unpark(c, true);
    lh_conn_linger(c);
}

/* A stream of a known length whose function gave more, or ended before it: logged,
 * and cut. */
static void stream_wrong_length(struct conn *c, bool over)
{
    struct parked *p = c->parked;
    int tl = p->req.target_len > 200 ? 200 : (int)p->req.target_len;
    lh_log_error("error", "%.*s %.*s: the streamed body %s its Content-Length of %lld bytes",
                 (int)p->req.method_len, p->req.method, tl, p->req.target,
                 over ? "went past" : "ended before", (long long)p->length);
    stream_cut(c);
}

/* The function returned nil: the last chunk, and on to the next request or the close.
 * A live-reload tag no piece took, for a "</body" that came split, goes before it:
 * browsers run a script after </html> too. */
static void stream_end(struct conn *c)
{
    static const char tag[] = LH_LIVE_TAG;
    struct parked *p = c->parked;
    if (p->length >= 0 && p->sent != p->length) {
        stream_wrong_length(c, false);
        return;
    }
    bool chunked = p->version == 11 && p->length < 0;
    size_t tlen = p->live_tag && p->live_split ? sizeof tag - 1 : 0;
    p->sent += (int64_t)tlen;
    lh_runq_unpark(c, true); /* the access log line, the function and the request go */
    c->after_write = AW_FINISH;
    static const char end[] = "\r\n0\r\n\r\n"; /* the tag's chunk's end, the last chunk */
    char line[24];
    int n = chunked && tlen ? snprintf(line, sizeof line, "%zx\r\n", tlen) : 0;
    const char *last = !chunked ? "" : n ? end : end + 2;
    struct iovec iov[3] = {{line, (size_t)n}, {(void *)tag, tlen}, {(void *)last, strlen(last)}};
    int rc = tlen || chunked ? send_iov(c, iov, 3) : 1;
    if (lh_send_after_flush(c, rc) == AGAIN)
        lh_conn_process(c);
}

void lh_send_stream_step(struct conn *c)
{
    struct parked *p = c->parked;
    struct piece pc = {c, 1, false};
    lh_worker_running(c->w, &p->ctx);
    enum lh_stream_result r = lh_lua_stream_next(p->ctx.lua, &p->ctx, send_piece, &pc);
    lh_worker_running(c->w, NULL);
    switch (r) {
    case LH_STREAM_PAUSED:
        lh_runq_enqueue(c);
        return;
    case LH_STREAM_PIECE:
        if (pc.over) {
            stream_wrong_length(c, true);
            return;
        }
        c->after_write = AW_STREAM;
        lh_send_after_flush(c, pc.rc); /* AW_STREAM: never AGAIN */
        return;
    case LH_STREAM_END:
        stream_end(c);
        return;
    case LH_STREAM_FAILED: /* logged */
        stream_cut(c);
        return;
    }
}

enum step lh_send_continue(struct conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->after_write = AW_BODY;
    return lh_send_after_flush(c, send_now(c, msg, sizeof msg - 1, NULL, 0));
}
