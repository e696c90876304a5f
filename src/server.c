/* server.c - the listening socket, the workers, signals and reload. See server.h.
 *
 * One listening socket; `workers` threads, each with its own event loop, accept from
 * it. A connection belongs to the worker that accepted it for its whole life. The
 * connection caps (max_connections, keepalive.max_per_client) are counted across all
 * workers. The main thread only waits for signals: SIGHUP loads a new configuration
 * and hands it to every worker; SIGINT/SIGTERM make the workers stop accepting, close
 * idle connections, finish what is in flight and exit. The pieces: settings.c,
 * worker.c, conn.c (with conn_mem.c), send.c, runq.c, devwatch.c; server_int.h holds
 * what they share. */
#include "server_int.h"
#include "log.h"

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
#include <unistd.h>

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

/* SIGHUP: load the file again; switch only if all of it loads and opens. */
void lh_server_reload(struct server *srv)
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
    lh_settings_log_warnings(&nc);
    struct settings *s = lh_settings_new(&nc, srv->nworkers, srv->opts->dev, err, sizeof err);
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
        lh_settings_release(atomic_exchange(&w->pending, s));
        lh_worker_notify(w);
    }
    lh_settings_release(srv->current);
    srv->current = s;
    lh_log_error("notice", "configuration reloaded from %s",
                 s->cfg.path ? s->cfg.path : "(built-in defaults)");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    if (sig == SIGHUP) {
        lh_server_reload(srv);
        return;
    }
    lh_log_error("notice", "signal %d: stopping", (int)sig);
    /* stop accepting at once: new connections are refused, not left in the queue */
    shutdown(srv->listen_fd, SHUT_RDWR);
    for (int i = 0; i < srv->nworkers; i++) {
        atomic_store(&srv->workers[i].stop_requested, true);
        lh_worker_notify(&srv->workers[i]);
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
        if (lh_worker_init(&srv->workers[i], srv, i) < 0)
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
        if (pthread_create(&srv->workers[started].thread, NULL, lh_worker_main,
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
    lh_settings_log_warnings(cfg);
    srv.current = lh_settings_new(cfg, cfg->workers, o->dev, err, sizeof err);
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
    if (o->dev && lh_devwatch_start(&srv) < 0) {
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
        lh_worker_main(&srv.workers[0]);
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
            lh_worker_notify(&srv.workers[i]);
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
        lh_worker_free(&srv.workers[i]);
    free(srv.workers);
    if (srv.listen_fd >= 0)
        close(srv.listen_fd);
    lh_iptable_free(srv.per_ip);
    lh_settings_release(srv.current);
    return status;
}
