/* server_int.h - what the pieces of the server share: the settings, the workers, the
 * connections, and the functions one piece calls in another. Private to src/; the
 * public face is include/server.h.
 *
 * A request's way through them: worker.c accepts a connection (under the caps) and
 * conn.c reads, parses and has it answered (dispatch.c); send.c puts the response
 * on the wire and logs it; a Lua handler that pauses waits in runq.c; conn_mem.c is
 * where connections and their buffers live; settings.c the configuration they use;
 * server.c starts it all and takes the signals; devwatch.c reloads for --dev. */
#ifndef LH_SERVER_INT_H
#define LH_SERVER_INT_H

#include "cond.h"
#include "config.h"
#include "dispatch.h"
#include "http.h"
#include "iptable.h"
#include "response.h"
#include "server.h"
#include "static.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#define OUT_SCRATCH (64 * 1024)      /* per-worker render buffer */
#define IN_INITIAL 4096              /* first allocation of a connection's buffer */
#define LINGER_MAX 1024              /* lingering closes at once, all workers (see
                                        lh_conn_linger) */
#define PARKED_WATCH 3600.0          /* a paused handler's socket: re-armed when it fires */

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
    long linger_max;              /* most of those at once (see lh_conn_linger) */
    struct lh_iptable *per_ip;
    struct settings *current;
    const struct lh_options *opts;
    struct event_base *main_base; /* signals, --dev polling; workers[0].base if single */
    bool single;                  /* one worker, run on the main thread */
    struct event *watch;          /* --dev: polls the Lua files for changes */
    uint64_t watched;             /* signature of what the last poll saw */
};

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

static inline double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

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

/* Open what cfg names and make a Lua state per worker. Takes ownership of cfg's
 * contents. NULL with err on failure. */
struct settings *lh_settings_new(struct lh_config *cfg, int nworkers, bool dev, char *err,
                                 size_t errlen);
/* Drop a reference; the last one frees. Safe on NULL. */
void lh_settings_release(struct settings *s);
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

/* ---- runq.c ---- */

/* ctx's handler paused: move the request off w's scratch space and queue it. */
enum step lh_runq_park(struct conn *c, const struct lh_ctx *ctx);
/* Take the parked request off c (abandon: drop it, e.g. the connection is gone). */
void lh_runq_unpark(struct conn *c, bool abandon);
/* A paused request's socket is readable (see runq.c). */
void lh_runq_watch(struct conn *c);
/* Event callback: one slice of the oldest paused handler. */
void lh_runq_on_resume(evutil_socket_t fd, short what, void *arg);

/* ---- worker.c ---- */

int lh_worker_init(struct worker *w, struct server *srv, int id);
void lh_worker_free(struct worker *w);
/* The worker's event loop; returns when the worker has stopped. */
void *lh_worker_main(void *arg);
/* Wake w to look at its pending settings and stop request. */
void lh_worker_notify(struct worker *w);

/* ---- server.c, devwatch.c ---- */

/* SIGHUP: load the file again; switch only if all of it loads and opens. */
void lh_server_reload(struct server *srv);
/* --dev: poll the Lua files and reload when one changes. 0 or -1. */
int lh_devwatch_start(struct server *srv);

#endif
