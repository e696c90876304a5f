/* server_int.h - what the pieces of the server share: the settings, the master, a
 * worker, the connections, and the functions one piece calls in another. Private to
 * src/; the public face is include/server.h.
 *
 * master.c forks the workers and supervises them. In a worker, worker.c accepts a
 * connection (under the caps, counted in shm.c for all workers) and conn.c reads,
 * parses and has it answered (dispatch.c); send.c puts the response on the wire and
 * logs it; a Lua handler that pauses waits in runq.c; conn_mem.c is where
 * connections and their buffers live; settings.c the configuration they use;
 * devwatch.c reloads for --dev. */
#ifndef LH_SERVER_INT_H
#define LH_SERVER_INT_H

#include "cond.h"
#include "config.h"
#include "dispatch.h"
#include "front.h"
#include "http.h"
#include "ipkey.h"
#include "live.h"
#include "response.h"
#include "server.h"
#include "shm.h"
#include "static.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#define OUT_SCRATCH (64 * 1024)      /* per-worker render buffer */
#define IN_INITIAL 4096              /* first allocation of a connection's buffer */
#define LINGER_MAX 1024              /* lingering closes at once, per worker (see
                                        lh_conn_linger) */
#define PARKED_WATCH 3600.0          /* a paused handler's socket: re-armed when it fires */
#define HALF_CLOSE_SECS 0.1          /* a close this soon after the client's last bytes is
                                        a half-close (printf | nc -N), not its leaving */
#define HEARTBEAT_SECS 0.25          /* how often a worker's loop tells the master it lives */

/* A configuration and what was opened for it. Each process has its own: the master
 * loads one to check a file and to hand it to the workers it forks; a worker loads
 * its own on reload. */
struct settings {
    int refs;
    struct lh_config cfg;
    int root_fd;
    char *root_real;
    int access_fd;            /* -1 when the access log is off */
    struct lh_static st;
    struct lh_front front;    /* cors, fallback, error_pages, from cfg */
    bool dev;
    struct lh_lua *lua;       /* the state config.lua ran in: its routes and hooks */
};

struct conn;
struct slab;

/* The master's view of one worker slot. */
struct child {
    struct server *srv;
    pid_t pid;                /* 0: none running */
    double started;           /* monotonic time of its fork */
    int quick_deaths;         /* deaths in a row within a second of starting */
    enum { ASK_NONE, ASK_STALLED, ASK_AT_STOP } asked; /* SIGUSR2 sent: what it runs? */
    bool stalled;             /* killed for not coming back to its event loop */
    bool killed_at_stop;      /* killed when shutdown_timeout was over */
    struct event *restart_ev; /* a delayed start (back-off) */
};

/* One per process. In the master: the listening socket, the shared region and the
 * workers; in a worker, its copy tells it where to accept and count. */
struct server {
    int listen_fd;
    int nworkers;
    struct lh_shm *shm;
    struct settings *current;     /* the master's: what the next worker starts with;
                                     a worker takes it over (NULL there) */
    const struct lh_options *opts;
    long linger_max;              /* lingering closes at once, per worker */
    long max_connections;         /* what the shared region was sized for */
    pid_t master_pid;
    int64_t started_ns;           /* CLOCK_REALTIME at the master's start: with the pid,
                                     what --dev pages tell a restarted server by */
    /* master only */
    struct event_base *base;
    struct child *children;
    struct event *sigs[6];
    struct event *supervise_ev;   /* heartbeats, every HEARTBEAT_SECS */
    struct event *stop_ev;        /* shutdown_timeout is over */
    bool stopping;
    int status;                   /* the exit status so far */
    struct event *watch;          /* --dev: a save settled: compare the Lua files */
    struct event *watch_ev;       /* --dev: news on watch_fd */
    int watch_fd;                 /* --dev: inotify on the Lua files' folders, or -1 */
    uint64_t watched;             /* signature of the Lua files at the last look */
};

struct worker {
    struct server *srv;
    int id;                       /* slot in the shared region */
    struct lh_shm_worker *slot;
    struct event_base *base;
    struct event *accept_ev;
    struct event *accept_retry;   /* re-enables accepting after EMFILE */
    struct event *refuse_ev;      /* pending while refusals are not logged at once */
    long refused[2];              /* refusals not logged yet, per enum cap */
    long refused_limit[2];        /* the value of that cap at the last one */
    struct lh_ipkey refused_ip;   /* the client refused last */
    struct event *sigs[4];        /* SIGTERM, SIGINT, SIGHUP, SIGUSR1 */
    struct event *beat_ev;        /* the heartbeat */
    struct event *stop_timer;
    struct event *resume_ev;      /* runs the next slice of a paused Lua handler */
    struct event *docroot_ev;     /* the docroot changed (fcache's inotify), or NULL */
    struct conn *runq, *runq_tail;/* connections whose handler paused, oldest first */
    uint32_t run_seq;             /* counts the run queue's entries */
    struct settings *set;
    struct conn *conns;           /* every open connection, for shutdown */
    long nconns;
    long nlinger;                 /* connections in a lingering close */
    bool stopping;
    int status;                   /* exit status: 1 when requests were abandoned */
    const struct lh_ctx *running; /* the request being dispatched, for a stall report */
    time_t date_sec;
    char date[LH_HTTP_DATE_LEN + 1];
    struct lh_request req;        /* scratch: the request being answered */
    struct lh_response resp;      /* scratch: its response */
    char *out;                    /* scratch: OUT_SCRATCH bytes to render into */
    char *path;                   /* scratch: normalised paths */
    struct lh_fcache *fcache;     /* small files in memory */
    struct lh_live *live;         /* --dev: live reload (live.c), else NULL */
    size_t pathcap;
    struct slab *slabs;           /* slabs with a free connection slot */
    struct slab *spare;           /* an empty slab kept for the next connection */
    char *spare_in;               /* an IN_INITIAL request buffer kept for the next */
};

enum conn_state {
    C_HEAD,      /* waiting for (the rest of) a request head */
    C_BODY,      /* head parsed, reading the body */
    C_WRITE,     /* a response is waiting for the socket to drain */
    C_LINGER,    /* we closed our side; reading until the client closes */
    C_LUA,       /* a Lua handler paused; the request waits in the worker's run queue */
    C_STREAM,    /* a streamed body: the next call of its function waits in the run
                    queue (the connection is in C_WRITE while a piece is unsent) */
    C_EVENTS,    /* --dev: a page's live-reload event stream (live.c) */
};

enum after_write { AW_FINISH, AW_BODY, AW_STREAM };

/* A request whose Lua handler paused, moved off the worker's scratch space. It keeps
 * its settings (and so its Lua state) alive across a reload. */
struct parked {
    struct lh_ctx ctx;
    struct lh_request req;
    struct lh_response resp;
    struct settings *set;
    char ip[LH_IP_STRLEN];
    char *pathbuf;
    bool stream;              /* its body streams (send.c): the head is out */
    int status;               /* stream: the status sent, for the access log */
    int64_t sent;             /* stream: body bytes sent so far (without framing) */
    int version;              /* stream: 10 (close-delimited) or 11 (chunked) */
    int64_t length;           /* stream: >= 0: its Content-Length, which went out with
                               * the head: the pieces go as they are, and the body ends
                               * after length bytes */
    bool live_tag;            /* stream, --dev: LH_LIVE_TAG is still to go out */
    bool live_split;          /* ... and a "</body" came split across pieces (send.c) */
    struct lh_live_tail live_tail;
    struct event *wake;       /* a wait the handler asked for (sleep), or NULL */
};

struct conn {
    struct event ev;
    struct worker *w;
    struct slab *slab;       /* where it was allocated (NULL: calloc) */
    struct conn *prev, *next;
    int fd;
    uint8_t state;
    uint8_t after_write;     /* what a completed C_WRITE leads to */
    bool counted;            /* holds a slot in the caps (ticket) */
    bool close_after;        /* close once the current response is out */
    bool eof;                /* the client will send nothing more */
    double in_at;            /* monotonic (coarse) time of the last bytes read */
    short armed;             /* EV_READ or EV_WRITE the event watches, 0 before */
    struct lh_ipkey ip;
    uint32_t ticket;         /* what shm.c counted for it */
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
    uint32_t run_seq;        /* C_LUA: when it was queued (worker's run_seq then) */
    uint32_t nreq;           /* responses sent on this connection */
    double deadline;         /* monotonic time the current request must be in by */
    char *out;               /* unsent bytes of the response (owned) */
    uint32_t out_len, out_off;
    int file_fd;             /* unsent file part of the response */
    int64_t file_off, file_rem;
};

static inline double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CLOCK_MONOTONIC in µs: the run queue's budget. */
static inline int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* CLOCK_MONOTONIC in ms: the heartbeat's clock, the same in every process. */
static inline int64_t mono_ms(void) { return mono_us() / 1000; }

static inline struct timeval tv_of(double secs)
{
    if (secs < 0.001)
        secs = 0.001;
    struct timeval tv = {.tv_sec = (time_t)secs};
    tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
    return tv;
}

static inline const struct lh_config *cfg_of(const struct conn *c) { return &c->w->set->cfg; }

/* What a step of the request cycle leaves: the connection waits for an event (or is
 * gone), or it is back in C_HEAD and the next buffered request can be looked at. */
enum step { DONE = 0, AGAIN = 1 };

/* ---- settings.c ---- */

/* Run the config file o names (or take the defaults), apply o's overrides and open
 * what the result names. NULL with a one-line message (file:line) in err. */
struct settings *lh_settings_load(const struct lh_options *o, char *err, size_t errlen);
/* Drop a reference; the last one frees. Safe on NULL. */
void lh_settings_release(struct settings *s);
/* SIGUSR1: the access log's file opened again under the same fd. 0 or -1. */
int lh_settings_reopen_access_log(struct settings *s);
/* The config's warnings to the error log. */
void lh_settings_log_warnings(const struct lh_config *c);

/* ---- conn_mem.c ---- */

/* A zeroed connection of w's, or NULL. */
struct conn *lh_conn_alloc(struct worker *w);
/* Give c's memory back (c is no longer used). */
void lh_conn_release(struct worker *w, struct conn *c);
/* The connection is done with its request buffer for now. */
void lh_conn_release_input(struct conn *c);
/* Make room for `need` bytes in total in c->in. 0 or -1. */
int lh_conn_reserve_input(struct conn *c, size_t need);
/* What w keeps for the next connection, at its end. */
void lh_conn_mem_worker_free(struct worker *w);

/* ---- conn.c ---- */

/* A new connection of w's on fd (taken over), listed in w->conns; NULL if out of memory. */
struct conn *lh_conn_new(struct worker *w, int fd, const struct lh_ipkey *ip);
/* Watch c's socket for `what` (EV_READ or EV_WRITE) with a timeout in seconds. */
void lh_conn_arm(struct conn *c, short what, double timeout);
/* Move c forward with what is buffered, request after request. */
void lh_conn_process(struct conn *c);
/* The current request's response is out: on to the next, or close. */
enum step lh_conn_finish_request(struct conn *c);
/* Whether bytes of a next (pipelined) request are buffered behind the current one. */
bool lh_conn_has_next(const struct conn *c);
/* Our side is done: half-close and read until the client closes too. */
void lh_conn_linger(struct conn *c);
/* Close c and free it (a paused request included). */
void lh_conn_free(struct conn *c);

/* ---- send.c ---- */

/* Send what is pending (memory, then file). 1: all sent; 0: blocked; -1: failed. */
int lh_send_flush(struct conn *c);
/* Go on after a write attempt with result rc: the rest of the cycle, or wait. */
enum step lh_send_after_flush(struct conn *c, int rc);
/* The response to req is ready: log it and send it. */
enum step lh_send_respond(struct conn *c, const struct lh_request *req,
                          struct lh_response *resp);
/* Refuse the request (req may be NULL) with status; close after the response. */
enum step lh_send_error(struct conn *c, const struct lh_request *req, int status);
/* 100 Continue, then back to reading the body. */
enum step lh_send_continue(struct conn *c);
/* One access-log line for c (req may be NULL: the request line was not read). */
void lh_send_log_access(struct conn *c, const struct lh_request *req, int status,
                        int64_t bytes);

/* The response to the parked request's (c->parked) is a stream: send its head and
 * go on with its pieces, one call of the function per turn of the run queue. */
enum step lh_send_stream_start(struct conn *c);
/* C_STREAM, from the run queue: the next call (or slice of one) of the function. */
void lh_send_stream_step(struct conn *c);

/* ---- runq.c ---- */

/* ctx's handler paused: move the request off w's scratch space and queue it. */
enum step lh_runq_park(struct conn *c, const struct lh_ctx *ctx);
/* Move ctx's request off w's scratch space into c->parked (not queued). 0 or -1
 * (then the request is dropped and nothing is parked). */
int lh_runq_keep(struct conn *c, const struct lh_ctx *ctx);
/* Queue c (parked) for a turn of the run queue, or, when its Lua code asked to wait
 * (ctx.wait_asked, sleep()), for one once the wait is over. */
void lh_runq_enqueue(struct conn *c);
/* Take the parked request off c (abandon: drop it, e.g. the connection is gone; a
 * stream's access-log line is written here, once, with the bytes it sent). */
void lh_runq_unpark(struct conn *c, bool abandon);
/* A paused request's socket is readable (see runq.c). */
void lh_runq_watch(struct conn *c);
/* Event callback: one slice of the oldest paused handler. */
void lh_runq_on_resume(evutil_socket_t fd, short what, void *arg);
/* Free the parked-request structures kept for reuse (a worker's exit). */
void lh_runq_free_spares(void);

/* ---- worker.c ---- */

/* The body of a worker process forked for slot id: serve until told to stop, then
 * exit (never returns). */
void lh_worker_run(struct server *srv, int id) __attribute__((noreturn));
/* A Lua handler is running or done (ctx NULL), for the stall report. */
static inline void lh_worker_running(struct worker *w, const struct lh_ctx *ctx)
{
    w->running = ctx;
}

/* ---- live.c (--dev) ---- */

/* Start live reload for w (its docroot watched); 0 or -1. Stop: close the event
 * streams and free it (safe when never started). */
int lh_live_start(struct worker *w);
void lh_live_stop(struct worker *w);
/* Shutdown: the event streams go now (a page would hold the worker to the end). */
void lh_live_close_streams(struct worker *w);
/* The worker loaded the Lua files again: the pages reload (and the docroot is
 * watched again if it moved). */
void lh_live_reloaded(struct worker *w);
/* SIGURG from the master: a reload failed (its message is in the shared region). */
void lh_live_news(struct worker *w);
/* GET /__luahttpd/events: c becomes an event stream (C_EVENTS). local: the page is on
 * this machine (as for a Lua error's page), so it is told why a reload failed. */
enum step lh_live_attach(struct conn *c, const struct lh_request *req, bool local);
/* Socket news on an event stream: the page went away, or time for a ping. */
void lh_live_on_event(struct conn *c, short what);
/* c (C_EVENTS) is being freed. */
void lh_live_forget(struct conn *c);
/* The live-reload tag into an HTML response (memory or whole-file body). */
void lh_live_inject_response(struct lh_response *r);
/* Does r, a streamed body, get the tag (send.c: before the "</body" of the first
 * piece with one, or at the end when it came split across pieces)? */
bool lh_live_stream_takes_tag(const struct lh_response *r);

/* ---- master.c, devwatch.c ---- */

/* SIGHUP: load the file again; if all of it loads and opens, keep it for the workers
 * forked from now on and tell the running ones to load it too. */
void lh_master_reload(struct server *srv);
/* --dev: watch the Lua files and reload when one changes. 0 or -1. Stop: no more
 * reloads (at shutdown), and free what it holds (safe when never started). */
int lh_devwatch_start(struct server *srv);
void lh_devwatch_stop(struct server *srv);

#endif
