/* Unit tests for client.c: URLs split, and exchanges on a real event loop against a
 * scripted server on 127.0.0.1 in the same loop (the answers, pooling, failures). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "wait.h"

/* ---- URLs ------------------------------------------------------------------------------ */

static void url_ok(const char *s, bool tls, const char *host, unsigned port, const char *auth,
                   const char *target, bool slash)
{
    struct lh_url u;
    const char *err = NULL;
    if (lh_url_parse(s, strlen(s), &u, &err) != 0)
        fail_msg("%s: %s", s, err);
    assert_int_equal(u.tls, tls);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.authority, auth);
    assert_int_equal(u.target_len, strlen(target));
    assert_memory_equal(u.target, target, u.target_len);
    assert_int_equal(u.slash, slash);
}

static void url_bad(const char *s, const char *why)
{
    struct lh_url u;
    const char *err = NULL;
    if (lh_url_parse(s, strlen(s), &u, &err) == 0)
        fail_msg("%s: taken", s);
    if (!strstr(err, why))
        fail_msg("%s: '%s', want '%s'", s, err, why);
}

static void test_urls(void **state)
{
    url_ok("http://example.com", false, "example.com", 80, "example.com", "/", false);
    url_ok("HTTPS://example.com/a/b?c=d", true, "example.com", 443, "example.com", "/a/b?c=d",
           false);
    url_ok("http://127.0.0.1:8080/x", false, "127.0.0.1", 8080, "127.0.0.1:8080", "/x", false);
    url_ok("http://a:80/", false, "a", 80, "a", "/", false); /* the default port left out */
    url_ok("https://[::1]:8443/", true, "::1", 8443, "[::1]:8443", "/", false);
    url_ok("http://[::1]/", false, "::1", 80, "[::1]", "/", false);
    url_ok("http://h?x=1", false, "h", 80, "h", "?x=1", true);
    url_bad("ftp://h/", "only http:// and https://");
    url_bad("http://user:pw@h/", "user:password@");
    url_bad("http:///x", "without a host");
    url_bad("http://h:/", "empty port");
    url_bad("http://h:0/", "1 to 65535");
    url_bad("http://h:65536/", "1 to 65535");
    url_bad("http://h:8a/", "1 to 65535");
    url_bad("http://h/#frag", "#fragment");
    url_bad("http://h/a b", "visible ASCII");
    url_bad("http://h/\r\nX: 1", "visible ASCII");
    url_bad("http://[::1/", "without its ]");
    url_bad("http://[::1]x/", "bad host");
}

/* ---- exchanges ------------------------------------------------------------------------- */

/* The scripted server: every connection it accepts gets `answer` once per request
 * head it reads (closing after it when close_after), in the test's own loop. */
struct server {
    struct event_base *base;
    int lfd;
    struct event *accept_ev;
    const char *answer;
    bool close_after;
    int accepted;
    struct peer *peers;
};

struct peer {
    struct server *s;
    struct peer *next;
    struct event *ev;
    int fd;
    char buf[8192];
    size_t len;
};

static void on_peer(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;
    ssize_t n = read(fd, p->buf + p->len, sizeof p->buf - p->len - 1);
    if (n <= 0)
        goto gone;
    p->len += (size_t)n;
    p->buf[p->len] = '\0';
    char *end;
    while ((end = strstr(p->buf, "\r\n\r\n"))) {
        size_t used = (size_t)(end + 4 - p->buf);
        memmove(p->buf, p->buf + used, p->len - used + 1);
        p->len -= used;
        if (write(fd, p->s->answer, strlen(p->s->answer)) < 0 || p->s->close_after)
            goto gone;
    }
    return;
gone:
    for (struct peer **q = &p->s->peers; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    event_free(p->ev);
    close(fd);
    free(p);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    int c = accept(fd, NULL, NULL);
    if (c < 0)
        return;
    s->accepted++;
    struct peer *p = calloc(1, sizeof *p);
    p->s = s;
    p->fd = c;
    p->ev = event_new(s->base, c, EV_READ | EV_PERSIST, on_peer, p);
    event_add(p->ev, NULL);
    p->next = s->peers;
    s->peers = p;
}

static int setup(void **state)
{
    struct server *s = calloc(1, sizeof *s);
    s->base = event_base_new();
    lh_wait_set_base(s->base);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 1024), 0);
    evutil_make_socket_nonblocking(s->lfd);
    s->accept_ev = event_new(s->base, s->lfd, EV_READ | EV_PERSIST, on_accept, s);
    event_add(s->accept_ev, NULL);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct server *s = *state;
    lh_client_free_all();
    lh_wait_set_base(NULL);
    event_free(s->accept_ev);
    close(s->lfd);
    while (s->peers) {
        struct peer *p = s->peers;
        s->peers = p->next;
        event_free(p->ev);
        close(p->fd);
        free(p);
    }
    event_base_free(s->base);
    free(s);
    return 0;
}

static void wake_flag(void *arg) { *(bool *)arg = true; }

/* GET path from the server; the loop runs until the exchange is over. */
static struct lh_fetch *fetch_within(struct server *s, const char *path, size_t max_body,
                                    double timeout)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    char url[64], head[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)ntohs(a.sin_port), path);
    struct lh_url u;
    const char *err;
    assert_int_equal(lh_url_parse(url, strlen(url), &u, &err), 0);
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    struct lh_fetch_opts o = {.timeout = timeout, .max_body = max_body, .idempotent = true};
    struct lh_fetch *f = lh_fetch_start(&u, head, (size_t)n, NULL, 0, &o);
    assert_non_null(f);
    bool woke = false;
    if (lh_wait_hold(lh_fetch_wait(f), wake_flag, &woke))
        while (!woke)
            event_base_loop(s->base, EVLOOP_ONCE);
    return f;
}

static struct lh_fetch *fetch(struct server *s, const char *path, size_t max_body)
{
    return fetch_within(s, path, max_body, 5);
}

static void expect_body(struct lh_fetch *f, int status, const char *body)
{
    const char *err = NULL;
    int st = 0;
    const struct lh_response_head *h = lh_fetch_head(f, &err, &st);
    if (!h)
        fail_msg("failed: %s", err);
    assert_int_equal(h->status, status);
    size_t n;
    const char *b = lh_fetch_body(f, &n);
    assert_int_equal(n, strlen(body));
    assert_memory_equal(b, body, n);
    lh_fetch_free(f);
}

static void expect_failure(struct lh_fetch *f, int status, const char *why)
{
    const char *err = NULL;
    int st = 0;
    assert_null(lh_fetch_head(f, &err, &st));
    assert_int_equal(st, status);
    if (!strstr(err, why))
        fail_msg("'%s', want '%s'", err, why);
    lh_fetch_free(f);
}

static void test_pooled(void **state)
{
    struct server *s = *state;
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    uint64_t before = lh_client_opened();
    for (int i = 0; i < 5; i++)
        expect_body(fetch(s, "/", 0), 200, "hello");
    assert_int_equal(lh_client_opened() - before, 1);
    assert_int_equal(s->accepted, 1);
}

static void test_chunked_with_interim_head(void **state)
{
    struct server *s = *state;
    s->answer = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: "
                "chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n";
    for (int i = 0; i < 3; i++)
        expect_body(fetch(s, "/", 0), 201, "abcde");
    assert_int_equal(s->accepted, 1);
}

static void test_close_delimited_is_not_pooled(void **state)
{
    struct server *s = *state;
    s->answer = "HTTP/1.0 200 OK\r\n\r\nto the end";
    s->close_after = true;
    for (int i = 0; i < 3; i++)
        expect_body(fetch(s, "/", 0), 200, "to the end");
    assert_int_equal(s->accepted, 3);
}

static void test_connection_close_is_not_pooled(void **state)
{
    struct server *s = *state;
    s->answer = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    expect_body(fetch(s, "/", 0), 204, "");
    expect_body(fetch(s, "/", 0), 204, "");
    assert_int_equal(s->accepted, 2);
}

static void test_failures(void **state)
{
    struct server *s = *state;
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    expect_failure(fetch(s, "/", 0), 502, "malformed response head");
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
    s->close_after = true;
    expect_failure(fetch(s, "/", 0), 502, "before the response body ended");
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    s->close_after = false;
    expect_failure(fetch(s, "/", 4), 502, "larger than max_body (4 bytes)");
    s->answer = "";
    /* a server that never answers */
    expect_failure(fetch_within(s, "/", 0, 0.2), 504, "timeout after 0.2 s (waiting for the response)");
}

static void test_refused(void **state)
{
    struct server *s = *state;
    close(s->lfd); /* nobody listens there now */
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->lfd, (struct sockaddr *)&a, sizeof a); /* a port, not listened on */
    expect_failure(fetch(s, "/", 0), 502, "cannot connect to 127.0.0.1:");
}

/* ---- lifecycles: exchanges stopped in every phase, pools, retries ------------------------- */

static void loop_for(struct server *s, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(s->base, &tv);
    event_base_dispatch(s->base);
}

static unsigned server_port(struct server *s)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    return ntohs(a.sin_port);
}

/* Start METHOD url without waiting. */
static struct lh_fetch *start_url(const char *method, const char *url, double timeout,
                                  bool stream)
{
    struct lh_url u;
    const char *err;
    assert_int_equal(lh_url_parse(url, strlen(url), &u, &err), 0);
    char head[256];
    int n = snprintf(head, sizeof head, "%s / HTTP/1.1\r\nHost: x\r\n\r\n", method);
    struct lh_fetch_opts o = {.timeout = timeout, .verify = true, .stream = stream,
                              .idempotent = !strcmp(method, "GET")};
    struct lh_fetch *f = lh_fetch_start(&u, head, (size_t)n, NULL, 0, &o);
    assert_non_null(f);
    return f;
}

static struct lh_fetch *start_on(struct server *s, const char *scheme, const char *method,
                                 double timeout)
{
    char url[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:%u/", scheme, server_port(s));
    return start_url(method, url, timeout, false);
}

static void wait_done(struct server *s, struct lh_fetch *f)
{
    bool woke = false;
    if (lh_wait_hold(lh_fetch_wait(f), wake_flag, &woke))
        while (!woke)
            event_base_loop(s->base, EVLOOP_ONCE);
}

/* A kept-alive connection the server closed right after its answer: a GET is sent
 * again on a new connection, a POST fails. */
static void test_stale_pooled_connection(void **state)
{
    struct server *s = *state;
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    s->close_after = true;
    expect_body(fetch(s, "/", 0), 200, "ok");
    expect_body(fetch(s, "/", 0), 200, "ok"); /* on the closed one, then again */
    assert_int_equal(s->accepted, 2);
    struct lh_fetch *f = start_on(s, "http", "POST", 5);
    wait_done(s, f);
    expect_failure(f, 502, "closed the connection before the response head");
    expect_body(fetch(s, "/", 0), 200, "ok");
}

/* Exchanges freed in each phase, some before libevent's deferred callbacks ran; then
 * the pool still serves. */
static void test_freed_in_every_phase(void **state)
{
    struct server *s = *state;
    s->answer = ""; /* nothing is answered */
    /* connecting: TLS to a server that never speaks it */
    struct lh_fetch *f = start_on(s, "https", "GET", 5);
    loop_for(s, 20);
    lh_fetch_free(f);
    f = start_on(s, "https", "GET", 5);
    lh_fetch_free(f); /* before the connect is seen */
    /* exchanging: the request is out, no answer */
    f = start_on(s, "http", "GET", 5);
    loop_for(s, 20);
    lh_fetch_free(f);
    /* resolving: a name no resolver knows (never /etc/hosts) */
    f = start_url("GET", "http://no-such-name.invalid/", 5, false);
    lh_fetch_free(f);
    loop_for(s, 20);
    /* mid-body, streamed (a body over 64 KiB: smaller ones come whole) */
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npart";
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", server_port(s));
    f = start_url("GET", url, 5, true);
    wait_done(s, f);
    const char *data, *err;
    size_t n;
    int st;
    assert_non_null(lh_fetch_head(f, &err, &st));
    assert_int_equal(lh_fetch_next(f, &data, &n), 1);
    assert_int_equal(lh_fetch_next(f, &data, &n), 2);
    lh_fetch_free(f);
    loop_for(s, 20);
    /* all of those were closed, none pooled: a new exchange opens a new connection */
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    uint64_t before = lh_client_opened();
    expect_body(fetch(s, "/", 0), 200, "ok");
    assert_int_equal(lh_client_opened() - before, 1);
}

/* A streamed exchange hands a small body of a known length over whole, with the
 * head; a long one comes piece by piece, and lh_fetch_left says what is still to be
 * handed out (-1 for a chunked one). */
static void test_stream_small_body_comes_whole(void **state)
{
    struct server *s = *state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", server_port(s));
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    struct lh_fetch *f = start_url("GET", url, 5, true);
    wait_done(s, f);
    assert_true(lh_fetch_complete(f));
    size_t n;
    assert_memory_equal(lh_fetch_body(f, &n), "hello", 5);
    assert_int_equal(n, 5);
    lh_fetch_free(f);
    s->answer = "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\nstart";
    f = start_url("GET", url, 5, true);
    wait_done(s, f);
    assert_false(lh_fetch_complete(f)); /* woken at the head: the rest never comes */
    assert_int_equal(lh_fetch_left(f), 70000);
    const char *data;
    assert_int_equal(lh_fetch_next(f, &data, &n), 1);
    assert_memory_equal(data, "start", 5);
    assert_int_equal(lh_fetch_left(f), 69995);
    lh_fetch_free(f);
    s->answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nstart\r\n";
    f = start_url("GET", url, 5, true);
    wait_done(s, f);
    assert_false(lh_fetch_complete(f));
    assert_int_equal(lh_fetch_left(f), -1);
    lh_fetch_free(f);
}

/* A refused connect is reported by a deferred callback: freeing first is safe. */
static void test_freed_before_refused(void **state)
{
    struct server *s = *state;
    close(s->lfd);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->lfd, (struct sockaddr *)&a, sizeof a);
    for (int i = 0; i < 3; i++) {
        struct lh_fetch *f = start_on(s, i == 1 ? "https" : "http", "GET", 5);
        lh_fetch_free(f);
    }
    loop_for(s, 20);
}

/* Over POOL_OPEN (512) connections an exchange waits in line; a connection that
 * closes lets it start. */
static void test_queue(void **state)
{
    struct server *s = *state;
    s->answer = "";
    enum { N = 513 };
    struct lh_fetch *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = start_on(s, "http", "GET", 30);
    loop_for(s, 200);
    assert_int_equal(s->accepted, N - 1);
    lh_fetch_free(fs[0]);
    loop_for(s, 100);
    assert_int_equal(s->accepted, N);
    for (int i = 1; i < N; i++)
        lh_fetch_free(fs[i]);
    /* one in line that gives up: its timeout says so */
    for (int i = 0; i < N; i++)
        fs[i] = start_on(s, "http", "GET", i == N - 1 ? 0.1 : 30);
    wait_done(s, fs[N - 1]);
    expect_failure(fs[N - 1], 504, "waiting for a connection");
    for (int i = 0; i < N - 1; i++)
        lh_fetch_free(fs[i]);
}

/* A name server on 127.0.0.1 in the test's loop: every A question gets 127.0.0.1,
 * other questions no answer. Lookups through it complete later, as real ones do. */
static void on_dns(evutil_socket_t fd, short what, void *arg)
{
    unsigned char q[512], r[600];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n < 12)
        return;
    size_t i = 12;
    while (i < (size_t)n && q[i])
        i += q[i] + 1u;
    i += 5; /* the root label, type and class */
    if (i > (size_t)n)
        return;
    bool a = q[i - 4] == 0 && q[i - 3] == 1;
    memcpy(r, q, i);
    r[2] = 0x81, r[3] = 0x80;       /* an answer, recursion available, no error */
    r[6] = 0, r[7] = a ? 1 : 0;     /* answers */
    r[8] = r[9] = r[10] = r[11] = 0;
    size_t len = i;
    if (a) {
        static const unsigned char rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
        memcpy(r + len, rr, sizeof rr);
        len += sizeof rr;
    }
    sendto(fd, r, len, 0, (struct sockaddr *)&from, fl);
}

/* Exchanges whose lookups end after others have opened connections still keep to
 * POOL_OPEN: the one over it waits in line. */
static void test_queue_after_lookups(void **state)
{
    struct server *s = *state;
    s->answer = "";
    int ufd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ufd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(ufd, (struct sockaddr *)&a, &al);
    evutil_make_socket_nonblocking(ufd);
    struct event *dns_ev = event_new(s->base, ufd, EV_READ | EV_PERSIST, on_dns, NULL);
    event_add(dns_ev, NULL);
    struct evdns_base *dns = lh_wait_dns();
    evdns_base_clear_nameservers_and_suspend(dns);
    char ns[32];
    snprintf(ns, sizeof ns, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    assert_int_equal(evdns_base_nameserver_ip_add(dns, ns), 0);
    evdns_base_resume(dns);
    enum { N = 513 };
    struct lh_fetch *fs[N];
    char url[64];
    snprintf(url, sizeof url, "http://pool.test:%u/", server_port(s));
    for (int i = 0; i < N; i++)
        fs[i] = start_url("GET", url, 30, false);
    loop_for(s, 300);
    assert_int_equal(s->accepted, N - 1);
    lh_fetch_free(fs[0]);
    loop_for(s, 100);
    assert_int_equal(s->accepted, N);
    for (int i = 1; i < N; i++)
        lh_fetch_free(fs[i]);
    event_free(dns_ev);
    close(ufd);
}

/* lh_client_free_all while exchanges are held; they are freed after it. */
static void test_free_all_then_free(void **state)
{
    struct server *s = *state;
    s->answer = "";
    struct lh_fetch *a = start_on(s, "http", "GET", 5);
    struct lh_fetch *b = start_on(s, "https", "GET", 5);
    struct lh_fetch *c = start_url("GET", "http://no-such-name.invalid/", 5, false);
    loop_for(s, 20);
    lh_client_free_all();
    loop_for(s, 20);
    lh_fetch_free(a);
    lh_fetch_free(b);
    lh_fetch_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test_setup_teardown(test_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_with_interim_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_delimited_is_not_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close_is_not_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_pooled_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_in_every_phase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_small_body_comes_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_before_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_after_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_all_then_free, setup, teardown),
    };
    return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
