/* master.c - the master process: the listening socket, the shared region, forking
 * and supervising the workers, signals and reload. See server.h.
 *
 * One listening socket, made before the workers are forked; each worker accepts from
 * it in its own event loop, so a worker that is stuck or gone leaves the queue to
 * the others (and with workers = 1 to its replacement). The master runs no
 * handlers: it forks `workers` workers, replaces one that dies within a second (and
 * backs off when one keeps dying at start), kills one whose heartbeat in the shared
 * region is older than limits.stall_timeout, and relays the signals: SIGTERM/SIGINT
 * drain and stop, SIGHUP reloads (checked here first), SIGUSR1 reopens the logs. */
#include "server_int.h"
#include "log.h"
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define QUICK_DEATH 1.0     /* a worker that dies this soon after its fork died at start */
#define QUICK_DEATHS_OK 3   /* how many of those in a row are restarted at once */
#define BACKOFF_MAX 32      /* seconds: the longest wait before the next try */

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

static void print_listening(const char *host, int port)
{
    bool v6 = strchr(host, ':') != NULL;
    printf("listening on http://%s%s%s:%d/\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
    fflush(stdout);
}

/* "signal 9 (SIGKILL, Killed)" or "status 1" for a wait status. */
static const char *describe_exit(int st, char *buf, size_t size)
{
    if (WIFSIGNALED(st)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(st));
        snprintf(buf, size, "signal %d (SIG%s, %s)%s", WTERMSIG(st), abbrev ? abbrev : "?",
                 strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
    } else {
        snprintf(buf, size, "status %d", WEXITSTATUS(st));
    }
    return buf;
}

/* ---- starting workers ------------------------------------------------------------- */

/* Fork the worker of slot i. All signals are blocked around the fork so that none
 * reaches the child through the master's handlers. 0 or -1. */
static int fork_worker(struct server *srv, int i)
{
    struct lh_shm_worker *slot = lh_shm_worker(srv->shm, i);
    atomic_store(&slot->beat_ms, mono_ms());
    atomic_store(&slot->running, 0);
    slot->what[0] = '\0';
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        lh_worker_run(srv, i);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return -1;
    atomic_store(&slot->pid, (int32_t)pid);
    struct child *ch = &srv->children[i];
    ch->pid = pid;
    ch->started = now_mono();
    ch->stalled = ch->killed_at_stop = false;
    ch->asked = ASK_NONE;
    return 0;
}

static void on_restart(evutil_socket_t fd, short what, void *arg);

/* Start slot i's worker now, or after a pause when they keep dying at start. */
static void start_or_wait(struct server *srv, int i)
{
    struct child *ch = &srv->children[i];
    int n = ch->quick_deaths - QUICK_DEATHS_OK;
    if (n < 0 && fork_worker(srv, i) == 0)
        return;
    int wait = n < 0 ? 1 : 1 << (n < 5 ? n : 5);
    if (wait > BACKOFF_MAX)
        wait = BACKOFF_MAX;
    if (n >= 0)
        lh_log_error("error", "worker %d died %d times in a row within %.0f s of starting; "
                     "next start in %d s", i + 1, ch->quick_deaths, QUICK_DEATH, wait);
    else
        lh_log_error("error", "cannot fork worker %d: %s; next try in %d s", i + 1,
                     strerror(errno), wait);
    struct timeval tv = {wait, 0};
    evtimer_add(ch->restart_ev, &tv);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct child *ch = arg;
    struct server *srv = ch->srv;
    if (srv->stopping)
        return;
    if (fork_worker(srv, (int)(ch - srv->children)) < 0)
        start_or_wait(srv, (int)(ch - srv->children));
}

/* ---- supervising ------------------------------------------------------------------ */

static int children_alive(const struct server *srv)
{
    int n = 0;
    for (int i = 0; i < srv->nworkers; i++)
        n += srv->children[i].pid > 0;
    return n;
}

/* A worker is gone: uncount its connections, say why, and start another. */
static void reap(struct server *srv, int i, int st)
{
    struct child *ch = &srv->children[i];
    char how[160];
    pid_t pid = ch->pid;
    ch->pid = 0;
    atomic_store(&lh_shm_worker(srv->shm, i)->pid, 0);
    lh_shm_conn_reclaim(srv->shm, i);
    describe_exit(st, how, sizeof how);
    if (srv->stopping) {
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            srv->status = 1;
            if (!ch->killed_at_stop)
                lh_log_error("warn", "worker %d (pid %d) ended with %s", i + 1, (int)pid, how);
        }
        return;
    }
    bool quick = now_mono() - ch->started < QUICK_DEATH;
    ch->quick_deaths = quick ? ch->quick_deaths + 1 : 0;
    lh_log_error("error", "worker %d (pid %d) %s %s%s; starting another", i + 1, (int)pid,
                 WIFSIGNALED(st) ? "was killed by" : "exited with", how,
                 ch->stalled ? " after it stalled" : "");
    start_or_wait(srv, i);
}

static void reap_all(struct server *srv)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (int i = 0; i < srv->nworkers; i++)
            if (srv->children[i].pid == pid) {
                reap(srv, i, st);
                break;
            }
    if (srv->stopping && children_alive(srv) == 0)
        event_base_loopbreak(srv->base);
}

/* Ask a worker what it runs: its SIGUSR2 handler writes it into the slot. */
static void ask_what_runs(struct server *srv, int i, int why)
{
    struct child *ch = &srv->children[i];
    atomic_store(&lh_shm_worker(srv->shm, i)->running, 0);
    ch->asked = why;
    kill(ch->pid, SIGUSR2);
}

/* What a worker asked with SIGUSR2 said it runs, or what is known without it. */
static const char *stall_report(struct lh_shm_worker *slot)
{
    return atomic_load(&slot->running) ? slot->what : "(it did not say what it runs)";
}

/* Every HEARTBEAT_SECS: a worker whose heartbeat is overdue by more than stall_timeout
 * is asked what it runs (SIGUSR2), and killed at the next look. */
static void on_supervise(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    if (srv->stopping)
        return;
    int64_t limit = (int64_t)(srv->current->cfg.limits.stall_timeout * 1000);
    int64_t now = mono_ms();
    for (int i = 0; i < srv->nworkers; i++) {
        struct child *ch = &srv->children[i];
        struct lh_shm_worker *slot = lh_shm_worker(srv->shm, i);
        /* counted from when its next beat was due: a worker idle in its loop beats
         * only every HEARTBEAT_SECS, and that is no time away */
        int64_t away = now - atomic_load(&slot->beat_ms) - (int64_t)(HEARTBEAT_SECS * 1000);
        if (ch->pid <= 0 || ch->stalled)
            continue; /* killed already, waiting to be reaped */
        if (away <= limit) {
            ch->asked = ASK_NONE; /* back in its loop (if it had been asked) */
        } else if (ch->asked == ASK_STALLED) {
            lh_log_error("error", "worker %d (pid %d) has not come back to its event loop "
                         "for %.1f s (limits.stall_timeout = %g), running %s; killing it",
                         i + 1, (int)ch->pid, (double)away / 1000,
                         srv->current->cfg.limits.stall_timeout, stall_report(slot));
            ch->stalled = true;
            kill(ch->pid, SIGKILL);
        } else {
            ask_what_runs(srv, i, ASK_STALLED);
        }
    }
}

/* ---- stopping --------------------------------------------------------------------- */

/* shutdown_timeout (and a little) is over: ask the workers still there what they run,
 * then, a moment later, kill them. */
static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    static const struct timeval moment = {0, 300000};
    bool asked = false;
    for (int i = 0; i < srv->nworkers; i++) {
        struct child *ch = &srv->children[i];
        struct lh_shm_worker *slot = lh_shm_worker(srv->shm, i);
        if (ch->pid <= 0 || ch->killed_at_stop || ch->stalled)
            continue; /* gone, or killed and not reaped yet */
        if (ch->asked != ASK_AT_STOP) {
            ask_what_runs(srv, i, ASK_AT_STOP);
            asked = true;
            continue;
        }
        lh_log_error("error", "worker %d (pid %d) did not finish within shutdown_timeout; "
                     "killing it and abandoning what it runs: %s", i + 1, (int)ch->pid,
                     stall_report(slot));
        ch->killed_at_stop = true;
        srv->status = 1;
        kill(ch->pid, SIGKILL);
    }
    if (asked)
        evtimer_add(srv->stop_ev, &moment);
}

static void master_stop(struct server *srv, int sig)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    lh_log_error("notice", "signal %d: stopping", sig);
    /* stop accepting at once: new connections are refused, not left in the queue */
    shutdown(srv->listen_fd, SHUT_RDWR);
    lh_devwatch_stop(srv); /* --dev: no more reloads, as for SIGHUP */
    for (int i = 0; i < srv->nworkers; i++) {
        struct child *ch = &srv->children[i];
        evtimer_del(ch->restart_ev);
        if (ch->pid > 0 && !ch->stalled)
            kill(ch->pid, SIGTERM);
    }
    /* the workers stop themselves at shutdown_timeout; this is for one that cannot */
    struct timeval tv = tv_of(srv->current->cfg.shutdown_timeout + 0.1);
    evtimer_add(srv->stop_ev, &tv);
    if (children_alive(srv) == 0)
        event_base_loopbreak(srv->base);
}

/* ---- reload and the other signals ----------------------------------------------- */

/* --dev: a reload failed; the workers show why on the pages open in a browser
 * (live.c reads it from the shared region when SIGURG comes). */
static void dev_tell(struct server *srv, const char *why)
{
    if (!srv->opts->dev)
        return;
    lh_shm_dev_set(srv->shm, why);
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->children[i].pid > 0)
            kill(srv->children[i].pid, SIGURG);
}

void lh_master_reload(struct server *srv)
{
    char err[1024];
    struct settings *s = lh_settings_load(srv->opts, err, sizeof err);
    if (!s) {
        lh_log_error("error", "reload failed, keeping the running configuration: %s", err);
        dev_tell(srv, err);
        return;
    }
    struct lh_config *nc = &s->cfg;
    const struct lh_config *cur = &srv->current->cfg;
    /* as at start, an error log that cannot be opened is an error in the file */
    int efd = -1;
    if (strcmp(nc->error_log, cur->error_log) != 0 &&
        (efd = lh_log_open(nc->error_log, STDERR_FILENO)) < 0) {
        lh_log_error("error", "reload failed, keeping the running configuration: "
                     "error_log %s: %s", nc->error_log, strerror(errno));
        dev_tell(srv, "the error_log cannot be opened");
        lh_settings_release(s);
        return;
    }
    if (nc->port != cur->port || strcmp(nc->host, cur->host) != 0 || nc->workers != cur->workers)
        lh_log_error("warn", "reload: port, host and workers change only on restart");
    if (nc->max_connections > srv->max_connections || nc->limits.shared_mb != cur->limits.shared_mb)
        lh_log_error("warn", "reload: max_connections above %ld and limits.shared_mb change "
                     "only on restart", srv->max_connections);
    nc->port = cur->port;
    nc->workers = cur->workers;
    if (nc->max_connections > srv->max_connections)
        nc->max_connections = srv->max_connections;
    lh_settings_log_warnings(nc);
    if (efd >= 0)
        lh_log_set_error_fd(efd);
    lh_settings_release(srv->current);
    srv->current = s;
    if (srv->opts->dev)
        lh_shm_dev_set(srv->shm, NULL); /* before the workers reload: their pages do too */
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->children[i].pid > 0)
            kill(srv->children[i].pid, SIGHUP);
    lh_log_error("notice", "configuration reloaded from %s",
                 nc->path ? nc->path : "(built-in defaults)");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    switch (sig) {
    case SIGHUP:
        if (!srv->stopping)
            lh_master_reload(srv);
        break;
    case SIGUSR1:
        /* the access log too: a worker forked from now on writes to the master's */
        if (lh_log_reopen_error(srv->current->cfg.error_log) < 0 ||
            lh_settings_reopen_access_log(srv->current) < 0)
            lh_log_error("error", "cannot reopen the logs: %s", strerror(errno));
        for (int i = 0; i < srv->nworkers; i++)
            if (srv->children[i].pid > 0)
                kill(srv->children[i].pid, SIGUSR1);
        break;
    case SIGCHLD:
        reap_all(srv);
        break;
    default:
        master_stop(srv, (int)sig);
    }
}

/* ---- the process ------------------------------------------------------------------ */

static int add_master_events(struct server *srv, char *err, size_t errlen)
{
    static const int signums[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGCHLD};
    static const struct timeval every = {0, (suseconds_t)(HEARTBEAT_SECS * 1e6)};
    for (size_t i = 0; i < sizeof signums / sizeof signums[0]; i++) {
        srv->sigs[i] = evsignal_new(srv->base, signums[i], on_signal, srv);
        if (!srv->sigs[i] || evsignal_add(srv->sigs[i], NULL) < 0) {
            snprintf(err, errlen, "cannot handle signal %d", signums[i]);
            return -1;
        }
    }
    srv->supervise_ev = event_new(srv->base, -1, EV_PERSIST, on_supervise, srv);
    srv->stop_ev = evtimer_new(srv->base, on_stop_timeout, srv);
    if (!srv->supervise_ev || !srv->stop_ev || event_add(srv->supervise_ev, &every) < 0)
        goto oom;
    for (int i = 0; i < srv->nworkers; i++) {
        srv->children[i].srv = srv;
        srv->children[i].restart_ev = evtimer_new(srv->base, on_restart, &srv->children[i]);
        if (!srv->children[i].restart_ev)
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* The region the workers share, sized by the configuration they start with. */
static struct lh_shm *make_shm(struct server *srv)
{
    const struct lh_config *c = &srv->current->cfg;
    srv->max_connections = c->max_connections;
    struct lh_shm_sizes sz = {.workers = srv->nworkers,
                              .max_connections = c->max_connections,
                              .arena_bytes = (size_t)c->limits.shared_mb << 20};
    struct lh_shm *shm = lh_shm_create(&sz);
    size_t bytes;
    void *arena = shm ? lh_shm_arena(shm, &bytes) : NULL;
    if (arena && lh_store_init(arena, bytes) < 0) {
        lh_shm_destroy(shm);
        errno = EINVAL;
        return NULL;
    }
    return shm;
}

static void free_server(struct server *srv)
{
    for (size_t i = 0; i < sizeof srv->sigs / sizeof srv->sigs[0]; i++)
        if (srv->sigs[i])
            event_free(srv->sigs[i]);
    if (srv->supervise_ev)
        event_free(srv->supervise_ev);
    if (srv->stop_ev)
        event_free(srv->stop_ev);
    lh_devwatch_stop(srv);
    for (int i = 0; srv->children && i < srv->nworkers; i++)
        if (srv->children[i].restart_ev)
            event_free(srv->children[i].restart_ev);
    free(srv->children);
    if (srv->base)
        event_base_free(srv->base);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    lh_shm_destroy(srv->shm);
    lh_settings_release(srv->current);
}

int lh_server_run(const struct lh_options *o)
{
    char err[1024];
    int port = 0;
    struct server srv = {.listen_fd = -1, .watch_fd = -1, .opts = o, .master_pid = getpid()};
    struct timespec boot;
    clock_gettime(CLOCK_REALTIME, &boot);
    srv.started_ns = (int64_t)boot.tv_sec * 1000000000 + boot.tv_nsec;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR2, SIG_IGN); /* what workers answer; a stray one must not end the master */
    srv.current = lh_settings_load(o, err, sizeof err);
    if (!srv.current) {
        fprintf(stderr, "luahttpd: %s\n", err);
        return 1;
    }
    const struct lh_config *c = &srv.current->cfg;
    int efd = lh_log_open(c->error_log, STDERR_FILENO);
    if (efd < 0) {
        fprintf(stderr, "luahttpd: error_log %s: %s\n", c->error_log, strerror(errno));
        lh_settings_release(srv.current);
        return 1;
    }
    lh_log_set_error_fd(efd);
    lh_settings_log_warnings(c);
    srv.nworkers = c->workers;
    srv.linger_max = raise_fd_limit(c->max_connections);
    srv.listen_fd = open_listener(c->host, c->port, &port, err, sizeof err);
    if (srv.listen_fd < 0)
        goto fail;
    srv.shm = make_shm(&srv);
    srv.children = calloc((size_t)srv.nworkers, sizeof *srv.children);
    srv.base = event_base_new();
    if (!srv.shm || !srv.children || !srv.base) {
        snprintf(err, sizeof err, "cannot make the shared region: %s", strerror(errno));
        goto fail;
    }
    if (add_master_events(&srv, err, sizeof err) < 0)
        goto fail;
    if (o->dev && lh_devwatch_start(&srv) < 0) {
        snprintf(err, sizeof err, "--dev: cannot watch the Lua files");
        goto fail;
    }
    print_listening(c->host, port);
    for (int i = 0; i < srv.nworkers; i++)
        if (fork_worker(&srv, i) < 0) {
            snprintf(err, sizeof err, "cannot start %d workers: %s", c->workers, strerror(errno));
            goto fail;
        }
    lh_log_error("notice", "luahttpd %s started: pid %d, %d worker(s), docroot %s, config %s",
                 LH_VERSION, (int)getpid(), c->workers, srv.current->root_real,
                 c->path ? c->path : "(built-in defaults)");
    event_base_dispatch(srv.base);
    lh_log_error("notice", srv.status ? "stopped, with requests abandoned" : "stopped");
    free_server(&srv);
    return srv.status;
fail:
    fprintf(stderr, "luahttpd: %s\n", err);
    lh_log_error("error", "%s", err);
    for (int i = 0; srv.children && i < srv.nworkers; i++)
        if (srv.children[i].pid > 0) {
            kill(srv.children[i].pid, SIGKILL);
            waitpid(srv.children[i].pid, NULL, 0);
        }
    free_server(&srv);
    return 1;
}
