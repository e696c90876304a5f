/* server.c - listeners, workers, signals, reload, and the life of a connection.
 *
 * One listening socket; `workers` threads, each with its own event loop, accept from
 * it. A connection belongs to the worker that accepted it for its whole life. The
 * connection caps (max_connections, keepalive.max_per_client) are counted across all
 * workers. The main thread only waits for signals: SIGHUP loads a new configuration
 * and hands it to every worker; SIGINT/SIGTERM make the workers stop accepting, close
 * idle connections, finish what is in flight and exit.
 *
 * A connection reads one request at a time into its own buffer (released while it
 * idles), answers it, and only then looks at the next pipelined request, so responses
 * leave in order. Output goes out with one send() when it can; what does not fit is
 * kept on the connection and sent when the socket is writable. */
#include "server.h"

#include "cond.h"
#include "dispatch.h"
#include "http.h"
#include "iptable.h"
#include "log.h"
#include "lua_host.h"
#include "response.h"
#include "sanitizer.h"
#include "static.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define OUT_SCRATCH (64 * 1024)      /* per-worker render buffer */
#define INLINE_FILE_MAX (32 * 1024)  /* files up to this size go out with the head */
#define IN_INITIAL 4096              /* first allocation of a connection's buffer */
#define SEND_TIMEOUT 60.0            /* seconds a stalled client may block a response */
#define LINGER_TIMEOUT 2.0           /* seconds we drain a client after our close */
#define LINGER_MAX 1024              /* lingering closes at once, all workers (see
                                        conn_linger) */
#define MAX_PIPELINED_PER_EVENT 16   /* then yield to other connections */
#define PARKED_WATCH 3600.0          /* a paused handler's socket: re-armed when it fires */

/* ---- settings: a configuration with its opened resources, shared by refcount ---- */

struct settings {
    atomic_int refs;
    struct lh_config cfg;
    int root_fd;
    char *root_real;
    int access_fd;            /* -1 when the access log is off */
    struct lh_static st;
    bool dev;
    int nlua;
    struct lh_lua **lua;      /* one Lua state per worker, made by running config.lua */
};

static void settings_release(struct settings *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->root_fd >= 0)
        close(s->root_fd);
    if (s->access_fd >= 0)
        close(s->access_fd);
    free(s->root_real);
    for (int i = 0; i < s->nlua; i++)
        lh_lua_free(s->lua[i]);
    free(s->lua);
    lh_config_free(&s->cfg);
    free(s);
}

/* The worker Lua states: config.lua run once more for each, here, so that a file
 * that fails to load is noticed before anything switches to it. */
static int make_states(struct settings *s, int n, char *err, size_t errlen)
{
    s->lua = calloc((size_t)n, sizeof *s->lua);
    if (!s->lua) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (; s->nlua < n; s->nlua++) {
        struct lh_config scratch = {0};
        s->lua[s->nlua] = lh_lua_new(s->cfg.path, &scratch, s->dev, err, errlen);
        if (!s->lua[s->nlua])
            return -1;
        lh_config_free(&scratch);
    }
    return 0;
}

/* Open what cfg names and make a Lua state per worker. Takes ownership of cfg's
 * contents. NULL with err on failure. */
static struct settings *settings_new(struct lh_config *cfg, int nworkers, bool dev,
                                     char *err, size_t errlen)
{
    struct settings *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        lh_config_free(cfg);
        return NULL;
    }
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->access_fd = -1;
    s->dev = dev;
    atomic_init(&s->refs, 1);
    s->root_fd = lh_static_open_root(s->cfg.docroot);
    s->root_real = s->root_fd >= 0 ? realpath(s->cfg.docroot, NULL) : NULL;
    if (!s->root_real) {
        snprintf(err, errlen, "docroot %s: %s", s->cfg.docroot, strerror(errno));
        goto fail;
    }
    if (s->cfg.access_log) {
        s->access_fd = lh_log_open(s->cfg.access_log, STDOUT_FILENO);
        if (s->access_fd < 0) {
            snprintf(err, errlen, "access_log %s: %s", s->cfg.access_log, strerror(errno));
            goto fail;
        }
    }
    s->st = (struct lh_static){.root_fd = s->root_fd,
                               .root_path = s->root_real,
                               .index = s->cfg.index,
                               .autoindex = s->cfg.autoindex,
                               .dotfiles = s->cfg.dotfiles};
    if (make_states(s, nworkers, err, errlen) < 0)
        goto fail;
    return s;
fail:
    settings_release(s);
    return NULL;
}

/* ---- the server and its workers ------------------------------------------------ */

struct conn;
struct slab;

struct worker {
    struct server *srv;
    int id;                       /* index of this worker's Lua state in settings */
    pthread_t thread;
    struct event_base *base;
    struct event *accept_ev;
    struct event *accept_retry;   /* re-enables accepting after EMFILE */
    struct event *refuse_ev;      /* pending while refusals are not logged at once */
    long refused[2];              /* refusals not logged yet, per enum cap */
    long refused_limit[2];        /* the value of that cap at the last one */
    struct lh_ipkey refused_ip;   /* the client refused last */
    struct event *notify_ev;
    struct event *stop_timer;
    struct event *resume_ev;      /* runs the next slice of a paused Lua handler */
    struct event *docroot_ev;     /* the docroot changed (fcache's inotify), or NULL */
    struct conn *runq, *runq_tail;/* connections whose handler paused, oldest first */
    int notify_fd;                /* eventfd the main thread pokes */
    _Atomic(struct settings *) pending; /* a new configuration to switch to */
    atomic_bool stop_requested;
    struct settings *set;
    struct conn *conns;           /* every open connection, for shutdown */
    long nconns;
    bool stopping;
    time_t date_sec;
    char date[LH_HTTP_DATE_LEN + 1];
    struct lh_request req;        /* scratch: the request being answered */
    struct lh_response resp;      /* scratch: its response */
    char *out;                    /* scratch: OUT_SCRATCH bytes to render into */
    char *path;                   /* scratch: normalised paths */
    struct lh_fcache *fcache;     /* small files in memory */
    size_t pathcap;
    struct slab *slabs;           /* slabs with a free connection slot */
    struct slab *spare;           /* an empty slab kept for the next connection */
    char *spare_in;               /* an IN_INITIAL request buffer kept for the next */
};

struct server {
    int listen_fd;
    struct worker *workers;
    int nworkers;
    atomic_long nconns;           /* connections holding a slot, all workers */
    atomic_long nlinger;          /* connections in a lingering close, all workers */
    long linger_max;              /* most of those at once (see conn_linger) */
    struct lh_iptable *per_ip;
    struct settings *current;
    const struct lh_options *opts;
    struct event_base *main_base; /* signals, --dev polling; workers[0].base if single */
    bool single;                  /* one worker, run on the main thread */
    struct event *watch;          /* --dev: polls the Lua files for changes */
    uint64_t watched;             /* signature of what the last poll saw */
};

/* ---- connections --------------------------------------------------------------- */

enum conn_state {
    C_HEAD,      /* waiting for (the rest of) a request head */
    C_BODY,      /* head parsed, reading the body */
    C_WRITE,     /* a response is waiting for the socket to drain */
    C_LINGER,    /* we closed our side; reading until the client closes */
    C_LUA,       /* a Lua handler paused; the request waits in the worker's run queue */
};

enum after_write { AW_FINISH, AW_BODY };

/* A request whose Lua handler paused, moved off the worker's scratch space. It keeps
 * its settings (and so its Lua state) alive across a reload. */
struct parked {
    struct lh_ctx ctx;
    struct lh_request req;
    struct lh_response resp;
    struct settings *set;
    char ip[LH_IP_STRLEN];
    char *pathbuf;
};

struct conn {
    struct event ev;
    struct worker *w;
    struct slab *slab;       /* where it was allocated (NULL: calloc) */
    struct conn *prev, *next;
    int fd;
    uint8_t state;
    uint8_t after_write;     /* what a completed C_WRITE leads to */
    bool counted;            /* holds a slot in the caps */
    bool close_after;        /* close once the current response is out */
    bool eof;                /* the client will send nothing more */
    short armed;             /* EV_READ or EV_WRITE the event watches, 0 before */
    struct lh_ipkey ip;
    char *in;                /* request bytes; NULL while idle */
    uint32_t in_len, in_cap;
    size_t scanned;          /* parser progress over in */
    uint32_t head_len;       /* C_BODY: length of the parsed head */
    uint32_t raw_pos;        /* C_BODY chunked: next undecoded byte */
    uint32_t body_end;       /* C_BODY chunked: end of the decoded body */
    int64_t body_len;        /* C_BODY: Content-Length, or -1 for chunked */
    struct lh_chunked chunk;
    struct parked *parked;   /* C_LUA: the request, its response and where it stands */
    struct conn *next_run;   /* C_LUA: the next connection in the run queue */
    uint32_t nreq;           /* responses sent on this connection */
    double deadline;         /* monotonic time the current request must be in by */
    char *out;               /* unsent bytes of the response (owned) */
    uint32_t out_len, out_off;
    int file_fd;             /* unsent file part of the response */
    int64_t file_off, file_rem;
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct timeval tv_of(double secs)
{
    if (secs < 0.001)
        secs = 0.001;
    struct timeval tv = {.tv_sec = (time_t)secs};
    tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
    return tv;
}

static const struct lh_config *cfg_of(const struct conn *c) { return &c->w->set->cfg; }

static void on_conn_event(evutil_socket_t fd, short what, void *arg);
static void process(struct conn *c);

/* What a step of the request cycle leaves: the connection waits for an event (or is
 * gone), or it is back in C_HEAD and the next buffered request can be looked at. */
enum step { DONE = 0, AGAIN = 1 };

/* Watch fd for `what` (EV_READ or EV_WRITE) with a timeout in seconds. */
static void arm(struct conn *c, short what, double timeout)
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

/* ---- connection memory ----------------------------------------------------------
 * Connections come from per-worker slabs of 64 KiB, mapped when needed and unmapped
 * when their last connection closes (one empty slab is kept for the next), so that
 * the memory of 10,000 idle connections goes back to the system once they are
 * closed. From malloc it would not: libevent's per-descriptor records, allocated
 * between the connections and kept for reuse, pin the pages. And a worker keeps one
 * request buffer for the next request, so a request that arrives whole costs no
 * malloc. Builds with -DLH_NO_POOLS or AddressSanitizer use plain calloc/malloc/free,
 * so that valgrind or ASan checks every connection and buffer on its own. */
#define OWN_POOLS LH_POOLS

#define SLAB_BYTES (64 * 1024)

union slot {
    union slot *next_free;
    struct conn c;
};

struct slab {
    struct slab *prev, *next;     /* in the worker's list of slabs with room */
    union slot *free;             /* free slots */
    unsigned used;
    bool listed;
    _Alignas(max_align_t) union slot slots[];
};

#define SLAB_SLOTS ((SLAB_BYTES - sizeof(struct slab)) / sizeof(union slot))

static void slab_list(struct worker *w, struct slab *s)
{
    s->prev = NULL;
    s->next = w->slabs;
    if (w->slabs)
        w->slabs->prev = s;
    w->slabs = s;
    s->listed = true;
}

static void slab_unlist(struct worker *w, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        w->slabs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->listed = false;
}

static struct conn *conn_alloc(struct worker *w)
{
    if (!OWN_POOLS)
        return calloc(1, sizeof(struct conn));
    struct slab *s = w->slabs;
    if (!s) {
        s = w->spare;
        w->spare = NULL;
        if (!s) {
            s = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
            if (s == MAP_FAILED)
                return NULL;
            s->used = 0;
            s->free = NULL;
            for (size_t i = SLAB_SLOTS; i-- > 0;) {
                s->slots[i].next_free = s->free;
                s->free = &s->slots[i];
            }
        }
        slab_list(w, s);
    }
    union slot *slot = s->free;
    s->free = slot->next_free;
    s->used++;
    if (!s->free)
        slab_unlist(w, s);
    memset(&slot->c, 0, sizeof slot->c);
    slot->c.slab = s;
    return &slot->c;
}

static void conn_release(struct worker *w, struct conn *c)
{
    struct slab *s = c->slab;
    if (!s) {
        free(c);
        return;
    }
    union slot *slot = (union slot *)c;
    slot->next_free = s->free;
    s->free = slot;
    s->used--;
    if (!s->listed)
        slab_list(w, s);
    if (s->used > 0)
        return;
    slab_unlist(w, s);
    if (w->spare)
        munmap(s, SLAB_BYTES);
    else
        w->spare = s;
}

/* The connection is done with its request buffer (see above). */
static void in_release(struct conn *c)
{
    struct worker *w = c->w;
    if (OWN_POOLS && c->in && c->in_cap == IN_INITIAL && !w->spare_in)
        w->spare_in = c->in;
    else
        free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
}

static void unpark(struct conn *c, bool abandon);

/* Give back the connection's slot in max_connections and max_per_client. */
static void uncount(struct conn *c)
{
    if (!c->counted)
        return;
    c->counted = false;
    atomic_fetch_sub(&c->w->srv->nconns, 1);
    lh_iptable_release(c->w->srv->per_ip, &c->ip);
}

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    if (c->armed)
        event_del(&c->ev);
    if (c->parked)
        unpark(c, true);
    close(c->fd);
    if (c->file_fd >= 0)
        close(c->file_fd);
    in_release(c);
    free(c->out);
    uncount(c);
    if (c->state == C_LINGER)
        atomic_fetch_sub(&w->srv->nlinger, 1);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    conn_release(w, c);
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
    conn_free(c);
}

/* Our side is done: half-close and read until the client closes too, so that what
 * it still sends cannot turn into a reset that destroys our last response.
 *
 * The connection can carry no more requests, so it stops counting against
 * max_connections and max_per_client here, not when the client's FIN comes: a
 * client that uses one connection per request has often opened the next one by
 * then, and would get 503 far below its cap. Sockets refused over a cap linger
 * uncounted too. So that neither can take every descriptor the process has (a flood
 * past max_connections could), at most srv->linger_max connections linger at once,
 * all workers together: LINGER_MAX, or a quarter of the descriptor limit if that is
 * less (the limit is raised to leave room for them, see raise_fd_limit). Beyond it a
 * connection is closed at once, which costs only a client that is still sending. */
static void conn_linger(struct conn *c)
{
    struct server *srv = c->w->srv;
    uncount(c);
    if (c->w->stopping || atomic_fetch_add(&srv->nlinger, 1) >= srv->linger_max) {
        atomic_fetch_sub(&srv->nlinger, 1);
        close_now(c);
        return;
    }
    c->state = C_LINGER; /* conn_free gives the place back from here on */
    if (shutdown(c->fd, SHUT_WR) < 0) {
        conn_free(c);
        return;
    }
    in_release(c);
    c->deadline = now_mono() + LINGER_TIMEOUT; /* in all, however the client drips */
    arm(c, EV_READ, LINGER_TIMEOUT);
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
            arm(c, EV_READ, left);
            return;
        }
        break;
    }
    conn_free(c);
}

/* ---- output ------------------------------------------------------------------------ */

static enum step finish_request(struct conn *c);

/* Send what is pending (memory, then file). 1: all sent; 0: blocked; -1: failed. */
static int flush_out(struct conn *c)
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

/* Continue after a write attempt: on to the rest of the cycle, or wait to write. */
static enum step after_flush(struct conn *c, int rc)
{
    if (rc < 0) {
        conn_free(c);
        return DONE;
    }
    if (rc == 0) {
        c->state = C_WRITE;
        arm(c, EV_WRITE, SEND_TIMEOUT);
        return DONE;
    }
    if (c->after_write == AW_BODY) {
        c->state = C_BODY;
        return AGAIN;
    }
    return finish_request(c);
}

/* Try to send buf[0..n) then extra[0..extra_len); keep what the socket did not take.
 * Returns as flush_out does. */
static int send_now(struct conn *c, const char *buf, size_t n, const char *extra,
                    size_t extra_len)
{
    struct iovec iov[2] = {{(void *)buf, n}, {(void *)extra, extra_len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = extra_len ? 2 : 1};
    ssize_t w;
    do
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (c->file_rem ? MSG_MORE : 0));
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN)
        return -1;
    size_t sent = w < 0 ? 0 : (size_t)w;
    if (sent == n + extra_len)
        return flush_out(c); /* the file part, if any */
    size_t rest = n + extra_len - sent;
    c->out = malloc(rest);
    if (!c->out)
        return -1;
    if (sent < n) {
        memcpy(c->out, buf + sent, n - sent);
        if (extra_len)
            memcpy(c->out + (n - sent), extra, extra_len);
    } else {
        memcpy(c->out, extra + (sent - n), rest);
    }
    c->out_len = (uint32_t)rest;
    c->out_off = 0;
    return 0;
}

/* Render r and start sending it; the connection takes over what remains. */
static enum step send_response(struct conn *c, struct lh_response *r, int version,
                               bool keepalive)
{
    struct worker *w = c->w;
    time_t now = time(NULL);
    if (now != w->date_sec) {
        w->date_sec = now;
        lh_http_date(now, w->date);
    }
    c->close_after = !keepalive;
    c->after_write = AW_FINISH;
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
        n = lh_response_render_head(r, version, false, w->date, out, OUT_SCRATCH);
    }
    int64_t body = lh_response_body_bytes(r);
    const char *extra = NULL;
    size_t extra_len = 0;
    if (body > 0 && r->body_kind == LH_BODY_MEM) {
        if (n + (size_t)body <= OUT_SCRATCH) {
            memcpy(out + n, r->body, (size_t)body);
            n += (size_t)body;
        } else {
            extra = r->body;
            extra_len = (size_t)body;
        }
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
    return after_flush(c, rc);
}

/* ---- requests ----------------------------------------------------------------------- */

static void log_access(struct conn *c, const struct lh_request *req, int status,
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
static enum step send_error(struct conn *c, const struct lh_request *req, int status)
{
    struct lh_response *r = &c->w->resp;
    lh_response_init(r, status);
    lh_response_error(r, status);
    r->no_body = req && req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    log_access(c, req, status, lh_response_body_bytes(r));
    return send_response(c, r, req ? req->version : 11, false);
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

static bool is_loopback(const struct lh_ipkey *k)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t v6loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return (memcmp(k->b, v4mapped, 12) == 0 && k->b[12] == 127) ||
           memcmp(k->b, v6loop, 16) == 0;
}

/* --dev shows error detail to this machine only. A proxy or tunnel on this machine
 * makes every visitor a loopback peer, so the Host asked for must be this machine's
 * too (a tunnel's public name is not). */
static bool host_is_local(const struct lh_request *req)
{
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    if (!req->host)
        return false;
    const char *v = req->host->value;
    size_t n = req->host->value_len;
    const char *colon = n && v[0] == '[' ? memchr(v, ']', n) : v;
    colon = colon ? memchr(colon, ':', n - (size_t)(colon - v)) : NULL;
    if (colon)
        n = (size_t)(colon - v);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (n == strlen(names[i]) && strncasecmp(v, names[i], n) == 0)
            return true;
    return false;
}

/* The response to req is ready: log it and send it. */
static enum step respond(struct conn *c, const struct lh_request *req, struct lh_response *resp)
{
    log_access(c, req, resp->status, lh_response_body_bytes(resp));
    return send_response(c, resp, req->version, wants_keepalive(c, req, resp));
}

/* ---- paused Lua handlers: a run queue per worker ------------------------------------ */

static void schedule_resume(struct worker *w)
{
    static const struct timeval now = {0, 0};
    if (!evtimer_pending(w->resume_ev, NULL))
        evtimer_add(w->resume_ev, &now); /* after the next poll: I/O goes first */
}

static void enqueue(struct worker *w, struct conn *c)
{
    c->next_run = NULL;
    if (w->runq_tail)
        w->runq_tail->next_run = c;
    else
        w->runq = c;
    w->runq_tail = c;
    schedule_resume(w);
}

/* The request's handler paused: move what it needs off the worker's scratch space
 * (other requests will use it) and queue it. The request's bytes stay in c->in,
 * which is not read into while the connection waits. */
static enum step park(struct conn *c, const struct lh_ctx *ctx)
{
    struct worker *w = c->w;
    struct parked *p = calloc(1, sizeof *p);
    char *pathbuf = malloc(ctx->pathcap);
    if (!p || !pathbuf) {
        free(p);
        free(pathbuf);
        lh_lua_request_done(ctx->lua, (struct lh_ctx *)ctx);
        lh_response_free(ctx->resp); /* what the handler had made so far */
        return send_error(c, ctx->req, 500);
    }
    p->req = *ctx->req;
    if (ctx->req->host)
        p->req.host = &p->req.headers[ctx->req->host - ctx->req->headers];
    lh_response_move(&p->resp, ctx->resp);
    if (p->resp.body_kind == LH_BODY_MEM && !p->resp.body_owned && p->resp.body_len &&
        !(p->resp.body >= p->resp.page && p->resp.body < p->resp.page + sizeof p->resp.page)) {
        /* a body borrowed from the file cache may be gone when the request goes on */
        char *copy = malloc(p->resp.body_len);
        if (copy)
            memcpy(copy, p->resp.body, p->resp.body_len);
        lh_response_body(&p->resp, copy, copy ? p->resp.body_len : 0, copy);
    }
    memcpy(pathbuf, ctx->pathbuf, ctx->pathcap);
    snprintf(p->ip, sizeof p->ip, "%s", ctx->remote_addr);
    p->ctx = *ctx;
    p->ctx.req = &p->req;
    p->ctx.resp = &p->resp;
    p->ctx.remote_addr = p->ip;
    p->ctx.pathbuf = p->pathbuf = pathbuf;
    if (ctx->path >= ctx->pathbuf && ctx->path < ctx->pathbuf + ctx->pathcap)
        p->ctx.path = pathbuf + (ctx->path - ctx->pathbuf);
    p->set = w->set;
    atomic_fetch_add(&p->set->refs, 1);
    lh_lua_ctx_moved(p->ctx.lua, &p->ctx);
    c->parked = p;
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
        arm(c, EV_READ, PARKED_WATCH); /* a client that leaves abandons the handler */
    }
    enqueue(w, c);
    return DONE;
}

/* C_LUA and the socket is readable: the client closed (abandon the handler, which
 * the access log shows as nginx's 499), or it sent more, which stays in the socket
 * until this request is answered (a close behind it cannot be seen: stop watching). */
static void parked_read(struct conn *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        event_del(&c->ev);
        c->armed = 0;
        return;
    }
    log_access(c, &c->parked->req, 499, 0);
    conn_free(c);
}

/* Take the parked request off c (abandon: drop it, e.g. the connection is gone). */
static void unpark(struct conn *c, bool abandon)
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
    if (abandon) {
        lh_dispatch_abort(&p->ctx);
        lh_response_free(&p->resp);
    }
    free(p->pathbuf);
    settings_release(p->set);
    free(p);
}

/* One slice of the oldest paused handler; then the queue waits for the next poll. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct conn *c = w->runq;
    if (!c)
        return;
    w->runq = c->next_run;
    if (!w->runq)
        w->runq_tail = NULL;
    struct parked *p = c->parked;
    if (lh_dispatch(&p->ctx) == LH_DISPATCH_SUSPENDED) {
        enqueue(w, c);
        return;
    }
    c->state = C_HEAD;
    struct lh_request *req = &w->req; /* the head again, in the scratch; unpark frees p */
    *req = p->req;
    if (p->req.host)
        req->host = &req->headers[p->req.host - p->req.headers];
    struct lh_response *resp = &w->resp;
    lh_response_move(resp, &p->resp);
    unpark(c, false);
    if (w->runq)
        schedule_resume(w);
    if (respond(c, req, resp) == AGAIN)
        process(c);
}

/* The request in c->in is complete (its head parsed into w->req): answer it. */
static enum step answer(struct conn *c, const char *body, size_t body_len)
{
    struct worker *w = c->w;
    const struct lh_request *req = &w->req;
    if (w->pathcap < (size_t)req->target_len + 2) {
        size_t cap = (size_t)req->target_len + 2;
        char *p = realloc(w->path, cap);
        if (!p)
            return send_error(c, req, 500);
        w->path = p;
        w->pathcap = cap;
    }
    char ip[LH_IP_STRLEN];
    lh_ipkey_format(&c->ip, ip);
    struct lh_ctx ctx = {.req = req,
                         .resp = &w->resp,
                         .st = &w->set->st,
                         .fcache = w->fcache,
                         .lua = w->set->lua[w->id],
                         .body = body,
                         .body_len = body_len,
                         .remote_addr = ip,
                         .dev_loopback = w->set->dev && is_loopback(&c->ip) &&
                                         host_is_local(req),
                         .pathbuf = w->path,
                         .pathcap = w->pathcap};
    lh_dispatch_init(&ctx);
    if (lh_dispatch(&ctx) == LH_DISPATCH_SUSPENDED)
        return park(c, &ctx);
    return respond(c, req, &w->resp);
}

/* Bytes of the current request, so the next pipelined one can move to the front. */
static uint32_t request_extent(const struct conn *c)
{
    if (c->body_len < 0)
        return c->raw_pos;
    return c->head_len + (uint32_t)c->body_len;
}

static enum step finish_request(struct conn *c)
{
    c->nreq++;
    if (c->close_after) {
        conn_linger(c);
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

/* Make room for `need` bytes in total in c->in. 0 or -1. */
static int reserve(struct conn *c, size_t need)
{
    if (need <= c->in_cap)
        return 0;
    if (!c->in && c->w->spare_in && need <= IN_INITIAL) {
        c->in = c->w->spare_in;
        c->w->spare_in = NULL;
        c->in_cap = IN_INITIAL;
        return 0;
    }
    size_t cap = c->in_cap ? c->in_cap : IN_INITIAL;
    while (cap < need)
        cap *= 2;
    if (cap > UINT32_MAX)
        return -1;
    char *p = realloc(c->in, cap);
    if (!p)
        return -1;
    c->in = p;
    c->in_cap = (uint32_t)cap;
    return 0;
}

/* How many bytes the buffer may hold in the current state. */
static size_t in_limit(const struct conn *c)
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
static int fill(struct conn *c)
{
    size_t limit = in_limit(c);
    size_t want = c->in_len + IN_INITIAL;
    if (want > limit)
        want = limit;
    if (want <= c->in_len)
        return 1; /* full: let the parser decide */
    if (reserve(c, want) < 0)
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
    return 1;
}

/* Wait for more request bytes, within the request deadline. After the client's
 * half-close none can come: the incomplete request is dropped without an answer (as
 * nginx does) and the connection closed. */
static enum step wait_request(struct conn *c)
{
    if (c->eof) {
        conn_free(c);
        return DONE;
    }
    if (c->deadline == 0)
        c->deadline = now_mono() + cfg_of(c)->limits.request_timeout;
    arm(c, EV_READ, c->deadline - now_mono());
    return DONE;
}

/* Nothing buffered between requests: release the buffer and wait. */
static enum step go_idle(struct conn *c)
{
    const struct lh_config *cfg = cfg_of(c);
    in_release(c);
    if (c->w->stopping || c->eof) {
        conn_free(c);
        return DONE;
    }
    arm(c, EV_READ, c->nreq ? cfg->keepalive.timeout : cfg->limits.request_timeout);
    return DONE;
}

static enum step send_continue(struct conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->after_write = AW_BODY;
    return after_flush(c, send_now(c, msg, sizeof msg - 1, NULL, 0));
}

/* A head was parsed into w->req: set up reading its body, or answer it now. */
static enum step start_request(struct conn *c, int head_len)
{
    const struct lh_request *req = &c->w->req;
    c->head_len = (uint32_t)head_len;
    if (req->content_length > cfg_of(c)->limits.body_bytes)
        return send_error(c, req, 413);
    if (!req->chunked && req->content_length <= 0) {
        c->body_len = 0;
        return answer(c, "", 0);
    }
    c->body_len = req->chunked ? -1 : req->content_length;
    c->raw_pos = c->body_end = (uint32_t)head_len;
    memset(&c->chunk, 0, sizeof c->chunk);
    c->state = C_BODY;
    if (req->expect_continue && req->version == 11 && c->in_len == c->head_len)
        return send_continue(c);
    return AGAIN;
}

/* Parse the head of the request being read again: w->req is shared by the
 * worker's connections and may describe another one by now. */
static const struct lh_request *reparse(struct conn *c)
{
    size_t scanned = 0;
    lh_http_parse_head(c->in, c->head_len, &scanned, SIZE_MAX, &c->w->req);
    return &c->w->req;
}

static enum step answer_body(struct conn *c)
{
    reparse(c);
    size_t len = c->body_len >= 0 ? (size_t)c->body_len : c->body_end - c->head_len;
    return answer(c, c->in + c->head_len, len);
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
        return send_error(c, reparse(c), 400);
    if (c->body_end - c->head_len > (uint64_t)l->body_bytes)
        return send_error(c, reparse(c), 413);
    if (rc == 0)
        return wait_request(c);
    return answer_body(c);
}

/* Move the connection forward with what is buffered, request after request. */
static void process(struct conn *c)
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
                st = send_error(c, NULL, -n);
            else if (n == 0 && c->in_len >= in_limit(c))
                st = send_error(c, NULL, 431);
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
    if (c->state == C_LUA) /* the handler has its own time limit */
        arm(c, EV_READ, PARKED_WATCH);
    else if ((c->state == C_HEAD && c->in_len > 0) || c->state == C_BODY)
        send_error(c, NULL, 408);
    else
        conn_free(c); /* idle keep-alive, stalled reader, or lingering close */
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (what & EV_TIMEOUT) {
        on_timeout(c);
        return;
    }
    if (c->state == C_WRITE) {
        if (after_flush(c, flush_out(c)) == AGAIN)
            process(c);
        return;
    }
    if (c->state == C_LINGER) {
        linger_read(c);
        return;
    }
    if (c->state == C_LUA) {
        parked_read(c);
        return;
    }
    if (fill(c) < 0)
        conn_free(c);
    else
        process(c);
}

/* ---- accepting ---------------------------------------------------------------------- */

static void ipkey_of(const struct sockaddr_storage *ss, struct lh_ipkey *k)
{
    memset(k, 0, sizeof *k);
    if (ss->ss_family == AF_INET6) {
        memcpy(k->b, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else {
        k->b[10] = k->b[11] = 0xff;
        memcpy(k->b + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
}

static struct conn *conn_new(struct worker *w, int fd, const struct lh_ipkey *ip)
{
    struct conn *c = conn_alloc(w);
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

/* The caps a new connection may be over. */
enum cap { CAP_CONNECTIONS, CAP_PER_CLIENT };

/* Log the refusals counted since the last line, and keep quiet for a second. */
static void report_refusals(struct worker *w)
{
    static const struct timeval quiet = {1, 0};
    static const char *const names[2] = {"max_connections", "keepalive.max_per_client"};
    long total = w->refused[0] + w->refused[1];
    if (total == 0)
        return;
    char ip[LH_IP_STRLEN], caps[200] = "";
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        if (w->refused[i])
            n += (size_t)snprintf(caps + n, sizeof caps - n, "%s%ld over %s = %ld",
                                  n ? ", " : "", w->refused[i], names[i],
                                  w->refused_limit[i]);
    lh_log_error("warn", "refused %ld connection%s with 503 (%s), the last from %s", total,
                 total == 1 ? "" : "s", caps, lh_ipkey_format(&w->refused_ip, ip));
    w->refused[0] = w->refused[1] = 0;
    evtimer_add(w->refuse_ev, &quiet);
}

static void on_refuse_timer(evutil_socket_t fd, short what, void *arg)
{
    report_refusals(arg);
}

/* Count a refusal for the error log: the first one is logged at once, those that
 * follow within a second are summed up in one line when the second is over, so that
 * a flood writes at most a line a second per worker. */
static void note_refusal(struct worker *w, enum cap which, long limit,
                         const struct lh_ipkey *ip)
{
    w->refused[which]++;
    w->refused_limit[which] = limit;
    w->refused_ip = *ip;
    if (!evtimer_pending(w->refuse_ev, NULL))
        report_refusals(w);
}

/* Over a cap: answer 503 at once and close, without reading a request. The access
 * log gets the 503 with "-" for the request line, which was never read. */
static void reject(struct conn *c, enum cap which, long limit)
{
    static const char fmt[] = "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\n"
                              "Server: luahttpd/" LH_VERSION "\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 20\r\nConnection: close\r\n\r\n"
                              "too many connections";
    char buf[512], date[LH_HTTP_DATE_LEN + 1];
    lh_http_date(time(NULL), date);
    int n = snprintf(buf, sizeof buf, fmt, date);
    note_refusal(c->w, which, limit, &c->ip);
    if (send(c->fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
        conn_free(c);
        return;
    }
    log_access(c, NULL, 503, 20);
    conn_linger(c);
}

static void pause_accepting(struct worker *w)
{
    static atomic_long last_warned;
    long now = (long)time(NULL);
    if (atomic_exchange(&last_warned, now) != now)
        lh_log_error("warn", "accept: %s; pausing new connections briefly", strerror(errno));
    event_del(w->accept_ev);
    struct timeval tv = {0, 100000};
    evtimer_add(w->accept_retry, &tv);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    if (!w->stopping)
        event_add(w->accept_ev, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct worker *w = arg;
    const struct lh_config *cfg = &w->set->cfg;
    /* With several workers, one connection per wakeup: every idle worker is woken
     * for the shared socket, so a burst of connections is spread between them rather
     * than taken whole by the first (which then carries all their requests). */
    int batch = w->srv->nworkers > 1 ? 1 : 64;
    for (int i = 0; i < batch && !w->stopping; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(w);
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN: another worker took it, or none left */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct lh_ipkey ip;
        ipkey_of(&ss, &ip);
        struct conn *c = conn_new(w, fd, &ip);
        if (!c) {
            close(fd);
            continue;
        }
        struct server *srv = w->srv;
        if (atomic_fetch_add(&srv->nconns, 1) >= cfg->max_connections) {
            atomic_fetch_sub(&srv->nconns, 1);
            reject(c, CAP_CONNECTIONS, cfg->max_connections);
        } else if (lh_iptable_acquire(srv->per_ip, &ip, cfg->keepalive.max_per_client) < 0) {
            atomic_fetch_sub(&srv->nconns, 1);
            reject(c, CAP_PER_CLIENT, cfg->keepalive.max_per_client);
        } else {
            c->counted = true;
            arm(c, EV_READ, cfg->limits.request_timeout);
        }
    }
}

/* ---- workers -------------------------------------------------------------------------- */

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    event_base_loopbreak(w->base);
}

static void worker_stop(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    event_del(w->accept_ev);
    event_del(w->accept_retry);
    struct timeval tv = tv_of(w->set->cfg.shutdown_timeout);
    evtimer_add(w->stop_timer, &tv);
    /* idle keep-alive connections and lingering closes go now; requests in flight
     * finish, with Connection: close */
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if ((c->state == C_HEAD && c->in_len == 0) || c->state == C_LINGER)
            conn_free(c);
    }
    if (w->nconns == 0)
        event_base_loopbreak(w->base);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
        return;
    struct settings *s = atomic_exchange(&w->pending, NULL);
    if (s) {
        settings_release(w->set);
        w->set = s;
        lh_fcache_watch(w->fcache, s->root_fd);
    }
    if (atomic_load(&w->stop_requested))
        worker_stop(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    while (w->conns)
        conn_free(w->conns);
    report_refusals(w); /* those of its last second */
    return NULL;
}

static void notify(struct worker *w)
{
    uint64_t one = 1;
    if (write(w->notify_fd, &one, sizeof one) < 0)
        lh_log_error("error", "cannot wake worker: %s", strerror(errno));
}

static void on_docroot_change(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    lh_fcache_changed(w->fcache);
}

static int worker_init(struct worker *w, struct server *srv, int id)
{
    w->srv = srv;
    w->id = id;
    w->set = srv->current;
    atomic_fetch_add(&w->set->refs, 1);
    struct event_config *ec = event_config_new();
    if (!ec)
        return -1;
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    /* two priorities: news of the docroot (0) is read before any request (1) */
    if (w->base && event_base_priority_init(w->base, 2) < 0)
        return -1;
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->out = malloc(OUT_SCRATCH);
    w->fcache = lh_fcache_new();
    if (!w->base || w->notify_fd < 0 || !w->out || !w->fcache)
        return -1;
    w->accept_ev = event_new(w->base, srv->listen_fd, EV_READ | EV_PERSIST, on_accept, w);
    w->accept_retry = evtimer_new(w->base, on_accept_retry, w);
    w->refuse_ev = evtimer_new(w->base, on_refuse_timer, w);
    if (!w->refuse_ev)
        return -1;
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, on_notify, w);
    w->stop_timer = evtimer_new(w->base, on_stop_timer, w);
    w->resume_ev = evtimer_new(w->base, on_resume, w);
    if (!w->accept_ev || !w->accept_retry || !w->notify_ev || !w->stop_timer || !w->resume_ev)
        return -1;
    event_add(w->accept_ev, NULL);
    event_add(w->notify_ev, NULL);
    lh_fcache_watch(w->fcache, w->set->root_fd);
    int wfd = lh_fcache_watch_fd(w->fcache);
    if (wfd >= 0) {
        w->docroot_ev = event_new(w->base, wfd, EV_READ | EV_PERSIST, on_docroot_change, w);
        if (!w->docroot_ev || event_priority_set(w->docroot_ev, 0) < 0 ||
            event_add(w->docroot_ev, NULL) < 0)
            return -1;
    }
    return 0;
}

static void worker_free(struct worker *w)
{
    if (w->accept_ev)
        event_free(w->accept_ev);
    if (w->accept_retry)
        event_free(w->accept_retry);
    if (w->refuse_ev)
        event_free(w->refuse_ev);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->stop_timer)
        event_free(w->stop_timer);
    if (w->resume_ev)
        event_free(w->resume_ev);
    if (w->docroot_ev)
        event_free(w->docroot_ev);
    if (w->base)
        event_base_free(w->base);
    if (w->notify_fd > 0)
        close(w->notify_fd);
    settings_release(atomic_exchange(&w->pending, NULL));
    settings_release(w->set);
    free(w->out);
    free(w->path);
    lh_fcache_free(w->fcache);
    if (w->spare)
        munmap(w->spare, SLAB_BYTES);
    free(w->spare_in);
}

/* ---- configuration, listening, signals ------------------------------------------------ */

int lh_server_load_config(const struct lh_options *o, struct lh_config *c, char *err,
                          size_t errlen)
{
    if (o->config_path) {
        /* the same loading path as the workers' states: routes are checked too */
        struct lh_lua *lua = lh_lua_new(o->config_path, c, o->dev, err, errlen);
        if (!lua)
            return -1;
        lh_lua_free(lua);
    } else if (lh_config_defaults(c) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (o->port >= 0)
        c->port = o->port;
    if (o->workers > 0)
        c->workers = o->workers;
    if (o->docroot) {
        char *d = strdup(o->docroot);
        if (!d) {
            lh_config_free(c);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(c->docroot);
        c->docroot = d;
    }
    return 0;
}

/* Bind and listen on host:port. Returns the fd, or -1 with a message in err. */
static int open_listener(const char *host, int port, int *bound, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Let the soft descriptor limit reach what max_connections needs (each connection
 * may hold a socket and a file) and the lingering closes (LINGER_MAX), up to the hard
 * limit, as nginx's worker_rlimit_nofile does. Returns how many connections may
 * linger at once: LINGER_MAX, or a quarter of the limit if that is less. */
static long raise_fd_limit(long max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return LINGER_MAX / 4;
    rlim_t want = (rlim_t)max_connections * 2 + LINGER_MAX + 64;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < LINGER_MAX)
        return (long)(rl.rlim_cur / 4);
    return LINGER_MAX;
}

static void log_warnings(const struct lh_config *c)
{
    for (size_t i = 0; i < c->nwarnings; i++)
        lh_log_error("warn", "%s", c->warnings[i]);
}

/* SIGHUP: load the file again; switch only if all of it loads and opens. */
static void reload(struct server *srv)
{
    char err[1024];
    struct lh_config nc = {0};
    const struct lh_config *cur = &srv->current->cfg;
    if (lh_server_load_config(srv->opts, &nc, err, sizeof err) < 0) {
        lh_log_error("error", "reload failed, keeping the running configuration: %s", err);
        return;
    }
    if (nc.port != cur->port || strcmp(nc.host, cur->host) != 0 || nc.workers != cur->workers)
        lh_log_error("warn", "reload: port, host and workers change only on restart");
    nc.port = cur->port;
    nc.workers = cur->workers;
    log_warnings(&nc);
    struct settings *s = settings_new(&nc, srv->nworkers, srv->opts->dev, err, sizeof err);
    if (!s) {
        lh_log_error("error", "reload failed, keeping the running configuration: %s", err);
        return;
    }
    int efd = lh_log_open(s->cfg.error_log, STDERR_FILENO);
    if (efd >= 0)
        lh_log_set_error_fd(efd);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        atomic_fetch_add(&s->refs, 1);
        settings_release(atomic_exchange(&w->pending, s));
        notify(w);
    }
    settings_release(srv->current);
    srv->current = s;
    lh_log_error("notice", "configuration reloaded from %s",
                 s->cfg.path ? s->cfg.path : "(built-in defaults)");
}

/* ---- --dev: reload when a Lua file changes ------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 1099511628211ULL; }

/* Fold the size, modification and change time and inode of every *.lua file under dir
 * (a few levels deep) into h: config.lua, the modules in scripts/ and whatever sits
 * beside them. The change time catches an edit that keeps the size and puts the old
 * mtime back (cp -p, rsync -t, tar -x): nobody can set it. */
static uint64_t sign_lua_files(uint64_t h, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return h;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        size_t n = strlen(de->d_name);
        if (S_ISDIR(st.st_mode) && depth > 0)
            h = sign_lua_files(h, path, depth - 1);
        else if (S_ISREG(st.st_mode) && n > 4 && strcmp(de->d_name + n - 4, ".lua") == 0) {
            const uint64_t v[] = {(uint64_t)st.st_size,        (uint64_t)st.st_ino,
                                  (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec,
                                  (uint64_t)st.st_ctim.tv_sec, (uint64_t)st.st_ctim.tv_nsec};
            for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
                h = mix(h, v[i]);
        }
    }
    closedir(d);
    return h;
}

static uint64_t lua_files_signature(const struct server *srv)
{
    const struct lh_config *c = &srv->current->cfg;
    if (!c->path)
        return 0;
    uint64_t h = sign_lua_files(1469598103934665603ULL, c->dir, 0);
    char scripts[PATH_MAX];
    snprintf(scripts, sizeof scripts, "%s/scripts", c->dir);
    return sign_lua_files(h, scripts, 3);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    uint64_t sig = lua_files_signature(srv);
    if (sig == srv->watched)
        return;
    srv->watched = sig; /* a broken save is reported once, not at every poll */
    lh_log_error("notice", "--dev: a Lua file changed, reloading");
    reload(srv);
}

static int start_watching(struct server *srv)
{
    srv->watched = lua_files_signature(srv);
    srv->watch = event_new(srv->main_base, -1, EV_PERSIST, on_watch, srv);
    struct timeval every = {0, 250000};
    return srv->watch && event_add(srv->watch, &every) == 0 ? 0 : -1;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    if (sig == SIGHUP) {
        reload(srv);
        return;
    }
    lh_log_error("notice", "signal %d: stopping", (int)sig);
    /* stop accepting at once: new connections are refused, not left in the queue */
    shutdown(srv->listen_fd, SHUT_RDWR);
    for (int i = 0; i < srv->nworkers; i++) {
        atomic_store(&srv->workers[i].stop_requested, true);
        notify(&srv->workers[i]);
    }
    if (!srv->single) /* the lone worker stops its own loop once it has drained */
        event_base_loopbreak(srv->main_base);
}

static void print_listening(const char *host, int port)
{
    bool v6 = strchr(host, ':') != NULL;
    printf("listening on http://%s%s%s:%d/\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
    fflush(stdout);
}

static int init_workers(struct server *srv, int n)
{
    srv->workers = calloc((size_t)n, sizeof *srv->workers);
    if (!srv->workers)
        return -1;
    for (int i = 0; i < n; i++) {
        srv->nworkers = i + 1;
        if (worker_init(&srv->workers[i], srv, i) < 0)
            return -1;
    }
    return 0;
}

static int start_threads(struct server *srv)
{
    /* workers never take signals: the main thread's loop handles them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int started = 0;
    for (; started < srv->nworkers; started++)
        if (pthread_create(&srv->workers[started].thread, NULL, worker_main,
                           &srv->workers[started]) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started == srv->nworkers ? 0 : -1;
}

int lh_server_run(const struct lh_options *o, struct lh_config *cfg)
{
    char err[1024];
    int status = 1, port = 0;
    struct server srv = {.listen_fd = -1, .opts = o};
    struct event *sigs[3] = {NULL, NULL, NULL};
    signal(SIGPIPE, SIG_IGN);

    int efd = lh_log_open(cfg->error_log, STDERR_FILENO);
    if (efd < 0) {
        fprintf(stderr, "luahttpd: error_log %s: %s\n", cfg->error_log, strerror(errno));
        lh_config_free(cfg);
        return 1;
    }
    lh_log_set_error_fd(efd);
    log_warnings(cfg);
    srv.current = settings_new(cfg, cfg->workers, o->dev, err, sizeof err);
    if (!srv.current)
        goto fail;
    const struct lh_config *c = &srv.current->cfg;
    srv.linger_max = raise_fd_limit(c->max_connections);
    srv.per_ip = lh_iptable_new();
    srv.listen_fd = open_listener(c->host, c->port, &port, err, sizeof err);
    if (!srv.per_ip || srv.listen_fd < 0)
        goto fail;
    if (init_workers(&srv, c->workers) < 0) {
        snprintf(err, sizeof err, "cannot start %d workers", c->workers);
        goto fail;
    }
    /* One worker runs on the main thread: in a process with a single thread the
     * kernel skips the shared file-table reference on every socket call. */
    srv.single = srv.nworkers == 1;
    srv.main_base = srv.single ? srv.workers[0].base : event_base_new();
    if (!srv.main_base) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    const int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(srv.main_base, signums[i], on_signal, &srv);
        if (!sigs[i] || evsignal_add(sigs[i], NULL) < 0) {
            snprintf(err, sizeof err, "cannot handle signal %d", signums[i]);
            goto fail;
        }
    }
    if (o->dev && start_watching(&srv) < 0) {
        snprintf(err, sizeof err, "--dev: cannot watch the Lua files");
        goto fail;
    }
    if (!srv.single && start_threads(&srv) < 0) {
        snprintf(err, sizeof err, "cannot start %d workers", c->workers);
        goto fail;
    }
    print_listening(c->host, port);
    lh_log_error("notice", "luahttpd %s started: pid %d, %d worker(s), docroot %s, config %s",
                 LH_VERSION, (int)getpid(), c->workers, srv.current->root_real,
                 c->path ? c->path : "(built-in defaults)");
    if (srv.single)
        worker_main(&srv.workers[0]);
    else
        event_base_dispatch(srv.main_base);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "luahttpd: %s\n", err);
    lh_log_error("error", "%s", err);
    for (int i = 0; i < srv.nworkers; i++)
        if (srv.workers[i].thread) {
            atomic_store(&srv.workers[i].stop_requested, true);
            notify(&srv.workers[i]);
        }
out:
    for (int i = 0; i < srv.nworkers; i++)
        if (srv.workers[i].thread)
            pthread_join(srv.workers[i].thread, NULL);
    if (status == 0)
        lh_log_error("notice", "stopped");
    /* events of main_base go before it, and it may be a worker's base */
    for (int i = 0; i < 3; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (srv.watch)
        event_free(srv.watch);
    if (srv.main_base && !srv.single)
        event_base_free(srv.main_base);
    for (int i = 0; srv.workers && i < srv.nworkers; i++)
        worker_free(&srv.workers[i]);
    free(srv.workers);
    if (srv.listen_fd >= 0)
        close(srv.listen_fd);
    lh_iptable_free(srv.per_ip);
    settings_release(srv.current);
    return status;
}
