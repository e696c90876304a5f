/* worker.c - a worker process: its event loop, accepting connections under the caps
 * (counted in the shared region for all workers), its signals, the heartbeat the
 * master watches, and switching to a new configuration. See server_int.h. */
#include "server_int.h"
#include "client.h"
#include "log.h"
#include "lua_host.h"
#include "lua_shared.h"
#include "lua_timer.h"
#include "static.h"
#include "wait.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The process's worker, for the SIGUSR2 handler. */
static struct worker *this_worker;

/* The signal a worker gets when its master dies (PR_SET_PDEATHSIG): one that nobody
 * else sends (the Lua watch's timer sends LH_LUA_WATCH_SIGNAL, SIGRTMIN + 1). */
#define SIG_MASTER_GONE SIGRTMIN

/* How long a worker whose master died may take to stop, in ms: shutdown_timeout and a
 * half second to log what it abandons. For on_master_gone; set at start and reload. */
static volatile sig_atomic_t orphan_stop_ms;

static void set_orphan_stop(const struct lh_config *c)
{
    orphan_stop_ms = (sig_atomic_t)(c->shutdown_timeout * 1000) + 500;
}

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
        lh_conn_free(c);
        return;
    }
    lh_send_log_access(c, NULL, 503, 20);
    lh_conn_linger(c);
}

static void pause_accepting(struct worker *w)
{
    static time_t last_warned;
    time_t now = time(NULL);
    if (last_warned != now) {
        last_warned = now;
        lh_log_error("warn", "accept: %s; pausing new connections briefly", strerror(errno));
    }
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

/* One connection per wakeup. The listening socket is level-triggered, so the loop
 * comes straight back while more wait; and with several workers, every idle one is
 * woken for it, so a burst of connections is spread between them rather than taken
 * whole by the first (which would then carry all their requests). */
static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct worker *w = arg;
    const struct lh_config *cfg = &w->set->cfg;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            pause_accepting(w);
        return; /* EAGAIN: another worker took it; else a waiting one wakes the loop again */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct lh_ipkey ip;
    ipkey_of(&ss, &ip);
    struct conn *c = lh_conn_new(w, fd, &ip);
    if (!c) {
        close(fd);
        return;
    }
    switch (lh_shm_conn_acquire(w->srv->shm, w->id, &ip, cfg->max_connections,
                                cfg->keepalive.max_per_client, &c->ticket)) {
    case LH_SHM_OVER_CONNECTIONS:
        reject(c, CAP_CONNECTIONS, cfg->max_connections);
        break;
    case LH_SHM_OVER_PER_CLIENT:
        reject(c, CAP_PER_CLIENT, cfg->keepalive.max_per_client);
        break;
    case LH_SHM_OK:
        c->counted = true;
        lh_conn_arm(c, EV_READ, cfg->limits.request_timeout);
        break;
    }
}


/* ---- stopping --------------------------------------------------------------------- */

/* shutdown_timeout is over: what is still in flight is abandoned, each named in the
 * error log, and the worker exits 1. */
static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    for (struct conn *c = w->conns; c; c = c->next) {
        const struct lh_request *r = c->parked ? &c->parked->req : NULL;
        char ip[LH_IP_STRLEN];
        lh_ipkey_format(&c->ip, ip);
        if (r)
            lh_log_error("warn", "shutdown_timeout: abandoning %.*s %.*s from %s (%s)",
                         (int)r->method_len, r->method, (int)r->target_len, r->target, ip,
                         c->parked->stream ? "a streamed response" : "a paused handler");
        else
            lh_log_error("warn", "shutdown_timeout: abandoning a %s connection from %s",
                         c->state == C_WRITE ? "response being sent on a" : "request on a", ip);
        w->status = 1;
    }
    event_base_loopbreak(w->base);
}

static void worker_stop(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    lh_timer_stop(w->set->lua); /* timer.after/every: pending ones never fire */
    event_del(w->accept_ev);
    event_del(w->accept_retry);
    struct timeval tv = tv_of(w->set->cfg.shutdown_timeout);
    evtimer_add(w->stop_timer, &tv);
    /* idle keep-alive connections and lingering closes go now; requests in flight
     * finish, with Connection: close */
    lh_live_close_streams(w);
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if ((c->state == C_HEAD && c->in_len == 0) || c->state == C_LINGER)
            lh_conn_free(c);
    }
    if (w->nconns == 0)
        event_base_loopbreak(w->base);
}

/* ---- signals from the master ------------------------------------------------------- */

/* SIGHUP: the master has loaded and checked the file; load it here too. Requests in
 * flight keep the settings they started with. */
static void worker_reload(struct worker *w)
{
    char err[1024];
    const struct lh_options *o = w->srv->opts;
    struct settings *s = lh_settings_load(o, err, sizeof err);
    if (!s) {
        lh_log_error("error", "worker %d: reload failed, keeping the running configuration: %s",
                     w->id + 1, err);
        return;
    }
    if (lh_lua_set_worker(s->lua, w->id, w->srv->nworkers) < 0) {
        lh_log_error("error", "worker %d: reload failed, keeping the running configuration: "
                     "out of memory", w->id + 1);
        lh_settings_release(s);
        return;
    }
    int efd = -1;
    if (strcmp(s->cfg.error_log, w->set->cfg.error_log) != 0 &&
        (efd = lh_log_open(s->cfg.error_log, STDERR_FILENO)) < 0) {
        lh_log_error("error", "worker %d: reload failed, keeping the running configuration: "
                     "error_log %s: %s", w->id + 1, s->cfg.error_log, strerror(errno));
        lh_settings_release(s);
        return;
    }
    if (efd >= 0)
        lh_log_set_error_fd(efd);
    /* what only a restart changes, as the master keeps it */
    s->cfg.port = w->set->cfg.port;
    s->cfg.workers = w->set->cfg.workers;
    if (s->cfg.max_connections > w->srv->max_connections)
        s->cfg.max_connections = w->srv->max_connections;
    /* the old state's timers stop (its paused requests go on); the new one's start */
    lh_timer_stop(w->set->lua);
    if (lh_timer_start(s->lua) < 0)
        lh_log_error("error", "worker %d: reload: some timers could not be started",
                     w->id + 1);
    lh_settings_release(w->set);
    w->set = s;
    set_orphan_stop(&s->cfg);
    lh_fcache_watch(w->fcache, s->root_fd);
    lh_live_reloaded(w);
}

/* SIGUSR1: logrotate moved the files; open them again under the same fds. */
static void worker_reopen_logs(struct worker *w)
{
    if (lh_log_reopen_error(w->set->cfg.error_log) < 0 ||
        lh_settings_reopen_access_log(w->set) < 0)
        lh_log_error("error", "worker %d: cannot reopen the logs: %s", w->id + 1,
                     strerror(errno));
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP)
            worker_reload(w);
        else if (si.ssi_signo == SIGUSR1)
            worker_reopen_logs(w);
        else if (si.ssi_signo == SIGURG)
            lh_live_news(w);
        else
            worker_stop(w); /* SIGTERM from the master, or a Ctrl-C to the group */
    }
}

/* ---- the heartbeat and the stall report ------------------------------------------- */

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    atomic_store_explicit(&w->slot->beat_ms, mono_ms(), memory_order_relaxed);
}

static size_t append_text(char *out, size_t at, const char *s, size_t len)
{
    while (len-- && *s && at + 1 < LH_SHM_WHAT_LEN)
        out[at++] = *s++;
    out[at] = '\0';
    return at;
}

/* SIGUSR2: the master found this worker away from its loop for too long and asks
 * what it runs before it kills it. Runs in the middle of whatever that is: only
 * reads what the dispatch left in ctx and copies bytes. */
static void on_report(int sig)
{
    struct worker *w = this_worker;
    if (!w)
        return;
    char *out = w->slot->what;
    const struct lh_ctx *ctx = w->running;
    size_t n = 0;
    if (!ctx) {
        n = append_text(out, 0, "no request", SIZE_MAX);
    } else {
        if (ctx->what_method && ctx->what_pattern) { /* both set, or a signal between */
            n = append_text(out, n, "route ", SIZE_MAX);
            n = append_text(out, n, ctx->what_method, SIZE_MAX);
            n = append_text(out, n, " ", 1);
            n = append_text(out, n, ctx->what_pattern, SIZE_MAX);
        } else if (ctx->what_kind) {
            char num[4] = {(char)('0' + ctx->what_index / 10 % 10),
                           (char)('0' + ctx->what_index % 10), 0, 0};
            n = append_text(out, n, ctx->what_kind, SIZE_MAX);
            n = append_text(out, n, " hook ", SIZE_MAX);
            n = append_text(out, n, num[0] == '0' ? num + 1 : num, SIZE_MAX);
        } else {
            n = append_text(out, n, "the built-in steps", SIZE_MAX);
        }
        n = append_text(out, n, " for ", SIZE_MAX);
        n = append_text(out, n, ctx->req->method, ctx->req->method_len);
        n = append_text(out, n, " ", 1);
        append_text(out, n, ctx->req->target, ctx->req->target_len);
    }
    atomic_store(&w->slot->running, 1);
}

/* The master is gone: nobody will kill this worker if it is stuck in a handler, so it
 * sets its own deadline (SIGALRM, on_orphan_deadline); then it stops as the master's
 * SIGTERM would have it (through the signalfd, if it gets back to its loop). Only
 * system calls. */
static void on_master_gone(int sig)
{
    int saved = errno;
    long ms = orphan_stop_ms;
    struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    kill(getpid(), SIGTERM);
    errno = saved;
}

/* The deadline is over: the worker goes as the master would have ended it, with
 * SIGKILL (under valgrind, which reports other fatal signals as errors, too). */
static void on_orphan_deadline(int sig)
{
    kill(getpid(), SIGKILL);
}

/* ---- the process ------------------------------------------------------------------ */

static void on_docroot_change(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    lh_fcache_changed(w->fcache);
}

static struct event_base *new_base(void)
{
    struct event_base *base = event_base_new();
    /* two priorities: news of the docroot (0) is read before any request (1) */
    if (base && event_base_priority_init(base, 2) < 0) {
        event_base_free(base);
        return NULL;
    }
    return base;
}

/* The events of w; 0 or -1. sigfd: the signalfd of the signals the master sends. */
static int add_events(struct worker *w, int sigfd)
{
    static const struct timeval beat = {0, (suseconds_t)(HEARTBEAT_SECS * 1e6)};
    w->accept_ev = event_new(w->base, w->srv->listen_fd, EV_READ | EV_PERSIST, on_accept, w);
    w->accept_retry = evtimer_new(w->base, on_accept_retry, w);
    w->refuse_ev = evtimer_new(w->base, on_refuse_timer, w);
    w->sigs[0] = event_new(w->base, sigfd, EV_READ | EV_PERSIST, on_signal, w);
    w->beat_ev = event_new(w->base, -1, EV_PERSIST, on_beat, w);
    w->stop_timer = evtimer_new(w->base, on_stop_timer, w);
    w->resume_ev = evtimer_new(w->base, lh_runq_on_resume, w);
    if (!w->accept_ev || !w->accept_retry || !w->refuse_ev || !w->sigs[0] || !w->beat_ev ||
        !w->stop_timer || !w->resume_ev || event_add(w->accept_ev, NULL) < 0 ||
        event_priority_set(w->beat_ev, 0) < 0 || /* not starved by docroot news */
        event_add(w->sigs[0], NULL) < 0 || event_add(w->beat_ev, &beat) < 0)
        return -1;
    int wfd = lh_fcache_watch_fd(w->fcache);
    if (wfd >= 0) {
        w->docroot_ev = event_new(w->base, wfd, EV_READ | EV_PERSIST, on_docroot_change, w);
        if (!w->docroot_ev || event_priority_set(w->docroot_ev, 0) < 0 ||
            event_add(w->docroot_ev, NULL) < 0)
            return -1;
    }
    return 0;
}

static int worker_init(struct worker *w, struct server *srv, int id, int sigfd)
{
    w->srv = srv;
    w->id = id;
    w->slot = lh_shm_worker(srv->shm, id);
    lh_shared_attach(srv->shm);
    /* the master's reference, copied with the fork, is this worker's now: a reload
     * frees the configuration here (its files, its Lua state) */
    w->set = srv->current;
    srv->current = NULL;
    if (lh_lua_set_worker(w->set->lua, id, srv->nworkers) < 0)
        return -1;
    w->base = new_base();
    lh_wait_set_base(w->base);
    w->out = malloc(OUT_SCRATCH);
    w->fcache = lh_fcache_new();
    if (!w->base || !w->out || !w->fcache)
        return -1;
    lh_fcache_watch(w->fcache, w->set->root_fd);
    set_orphan_stop(&w->set->cfg);
    if (add_events(w, sigfd) < 0 || lh_timer_start(w->set->lua) < 0)
        return -1;
    return w->set->dev ? lh_live_start(w) : 0;
}

static void worker_free(struct worker *w)
{
    lh_live_stop(w);
    struct event *evs[] = {w->accept_ev, w->accept_retry, w->refuse_ev, w->sigs[0],
                           w->beat_ev,   w->stop_timer,   w->resume_ev, w->docroot_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) /* before their base */
        if (evs[i])
            event_free(evs[i]);
    if (w->set)
        lh_timer_stop(w->set->lua); /* their events, before their base */
    lh_client_free_all(); /* outbound connections and exchanges, before their base */
    lh_runq_free_spares();
    lh_wait_set_base(NULL); /* the resolver, before its base */
    if (w->base)
        event_base_free(w->base);
    lh_settings_release(w->set);
    free(w->out);
    free(w->path);
    lh_fcache_free(w->fcache);
    lh_conn_mem_worker_free(w);
}

/* The signals as a worker takes them: what the master sends (SIGTERM, SIGINT, SIGHUP,
 * SIGUSR1, and SIGURG in --dev) through a signalfd, read by the event loop; SIGUSR2,
 * SIG_MASTER_GONE and SIGALRM at once, whatever the worker is doing. The master's handlers,
 * inherited with the fork, are undone first (all signals are blocked until then).
 * LH_LUA_WATCH_SIGNAL is left unblocked too: the Lua host installs its handler with
 * its timer, on the first handler call (lua_call.c). Returns the signalfd, or -1. */
static int take_signals(void)
{
    static const int relayed[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGURG, SIGCHLD};
    for (size_t i = 0; i < sizeof relayed / sizeof relayed[0]; i++)
        signal(relayed[i], SIG_DFL);
    struct sigaction sa = {.sa_handler = on_report, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = on_master_gone;
    sigaction(SIG_MASTER_GONE, &sa, NULL);
    sa.sa_handler = on_orphan_deadline;
    sigaction(SIGALRM, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < 5; i++)
        sigaddset(&set, relayed[i]);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    sigprocmask(SIG_SETMASK, &set, NULL); /* the rest unblocked */
    return fd;
}

void lh_worker_run(struct server *srv, int id)
{
    static struct worker w;
    /* a worker does not outlive its master: it drains and goes (on_master_gone) */
    prctl(PR_SET_PDEATHSIG, SIG_MASTER_GONE);
    int sigfd = take_signals();
    if (getppid() != srv->master_pid)
        exit(0);
    if (sigfd < 0 || worker_init(&w, srv, id, sigfd) < 0) {
        lh_log_error("error", "worker %d: cannot start: %s", id + 1, strerror(errno));
        exit(1);
    }
    this_worker = &w;
    event_base_dispatch(w.base);
    this_worker = NULL;
    while (w.conns)
        lh_conn_free(w.conns);
    report_refusals(&w); /* those of its last second */
    int status = w.status;
    worker_free(&w);
    close(sigfd);
    exit(status);
}
