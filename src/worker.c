/* worker.c - a worker: its event loop, accepting connections under the caps, and
 * switching to a new configuration. See server_int.h. */
#include "server_int.h"
#include "log.h"
#include "static.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

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
        struct conn *c = lh_conn_new(w, fd, &ip);
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
            lh_conn_arm(c, EV_READ, cfg->limits.request_timeout);
        }
    }
}

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
            lh_conn_free(c);
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
        lh_settings_release(w->set);
        w->set = s;
        lh_fcache_watch(w->fcache, s->root_fd);
    }
    if (atomic_load(&w->stop_requested))
        worker_stop(w);
}

void *lh_worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    while (w->conns)
        lh_conn_free(w->conns);
    report_refusals(w); /* those of its last second */
    return NULL;
}

void lh_worker_notify(struct worker *w)
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

int lh_worker_init(struct worker *w, struct server *srv, int id)
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
    w->resume_ev = evtimer_new(w->base, lh_runq_on_resume, w);
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

void lh_worker_free(struct worker *w)
{
    struct event *evs[] = {w->accept_ev, w->accept_retry, w->refuse_ev, w->notify_ev,
                           w->stop_timer, w->resume_ev, w->docroot_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) /* before their base */
        if (evs[i])
            event_free(evs[i]);
    if (w->base)
        event_base_free(w->base);
    if (w->notify_fd > 0)
        close(w->notify_fd);
    lh_settings_release(atomic_exchange(&w->pending, NULL));
    lh_settings_release(w->set);
    free(w->out);
    free(w->path);
    lh_fcache_free(w->fcache);
    lh_conn_mem_worker_free(w);
}
