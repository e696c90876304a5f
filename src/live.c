/* live.c - --dev live reload in a worker: the script every HTML page gets, the
 * Server-Sent Events connections at /__luahttpd/events, and the news that goes out
 * on them: a file saved under the docroot (inotify), a reload of the Lua files (the
 * master's SIGHUP), a reload that failed (the master's SIGURG, with the message in
 * the shared region). See live.h and server_int.h.
 *
 * The events: "hello" (data: the master's pid and start time, so that a page
 * reloads once a restarted server is back, pid 1 in a container included), "reload", "css" (data: the path of a stylesheet to swap
 * in), "config-error" (data: the message, one line per data line). */
#include "live.h"
#include "server_int.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the parts without I/O (live.h) --------------------------------------------- */

const char lh_live_js[] =
    "// luahttpd --dev: reloads this page when a file changes (see the README)\n"
    "(() => {\n"
    "  if (window.__luahttpd_live) return;\n"
    "  window.__luahttpd_live = true;\n"
    "  let boot = null, overlay = null, error = null, leader = false;\n"
    "  const on = {\n"
    "    hello(data) {\n"
    "      if (boot !== null && boot !== data) location.reload();\n"
    "      boot = data;\n"
    "    },\n"
    "    reload() { location.reload(); },\n"
    "    css(data) {\n"
    "      let found = false;\n"
    "      for (const link of document.querySelectorAll('link[rel~=\"stylesheet\"]')) {\n"
    "        const url = new URL(link.href, location.href);\n"
    "        let path = url.pathname; // percent-encoded; the file's path is not\n"
    "        try { path = decodeURIComponent(path); } catch (e) {}\n"
    "        if (url.origin !== location.origin || path !== data) continue;\n"
    "        url.searchParams.set('__luahttpd', Date.now());\n"
    "        const next = link.cloneNode();\n"
    "        next.href = url.href;\n"
    "        next.onload = next.onerror = () => link.remove();\n"
    "        link.after(next);\n"
    "        found = true;\n"
    "      }\n"
    "      if (!found) location.reload();\n"
    "    },\n"
    "    'config-error'(data) {\n"
    "      error = data;\n"
    "      if (!overlay) {\n"
    "        overlay = document.createElement('div');\n"
    "        overlay.id = '__luahttpd_overlay';\n"
    "        overlay.style.cssText = 'position:fixed;inset:0;z-index:2147483647;margin:0;"
    "padding:2em;overflow:auto;background:rgba(24,0,0,.94);color:#fdd;"
    "font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap';\n"
    "        (document.body || document.documentElement).appendChild(overlay);\n"
    "      }\n"
    "      overlay.textContent = 'luahttpd: the Lua files did not load, the server runs the '\n"
    "        + 'last good ones\\n\\n' + data + '\\n\\nFix the file and save: this page reloads.';\n"
    "    },\n"
    "  };\n"
    "  const has = (name) => Object.prototype.hasOwnProperty.call(on, name);\n"
    "  // A browser opens at most 6 connections to a server over HTTP/1.1: a stream for\n"
    "  // every tab and frame would leave the pages none. One window of the site (the one\n"
    "  // holding the lock) listens and tells the others; without Web Locks (a page not\n"
    "  // on localhost or https) each window listens for itself.\n"
    "  const listen = (relay) => {\n"
    "    const events = new EventSource('/__luahttpd/events');\n"
    "    for (const name of Object.keys(on))\n"
    "      events.addEventListener(name, (e) => {\n"
    "        if (relay) relay.postMessage({ name, data: e.data });\n"
    "        on[name](e.data);\n"
    "      });\n"
    "  };\n"
    "  let channel = null;\n"
    "  try {\n"
    "    if (navigator.locks && window.BroadcastChannel)\n"
    "      channel = new BroadcastChannel('__luahttpd_live');\n"
    "  } catch (e) {}\n"
    "  if (!channel) return listen(null);\n"
    "  channel.onmessage = (m) => {\n"
    "    const name = m.data && m.data.name, data = m.data && m.data.data;\n"
    "    if (name === 'ask' && leader) {\n"
    "      if (boot !== null) channel.postMessage({ name: 'hello', data: boot });\n"
    "      if (error !== null) channel.postMessage({ name: 'config-error', data: error });\n"
    "    } else if (typeof name === 'string' && has(name) && typeof data === 'string') {\n"
    "      on[name](data);\n"
    "    }\n"
    "  };\n"
    "  navigator.locks.request('__luahttpd_live', () => {\n"
    "    leader = true;\n"
    "    listen(channel);\n"
    "    return new Promise(() => {}); // held while this window lives\n"
    "  }).catch(() => { if (!leader) listen(null); });\n"
    "  channel.postMessage({ name: 'ask' });\n"
    "})();\n";

enum lh_live_path lh_live_path_of(const char *target, size_t len)
{
    static const char prefix[] = "/__luahttpd/";
    size_t plen = sizeof prefix - 1;
    if (len < plen || memcmp(target, prefix, plen) != 0)
        return LH_LIVE_NONE;
    const char *name = target + plen;
    const char *q = memchr(name, '?', len - plen);
    size_t n = q ? (size_t)(q - name) : len - plen;
    if (n == 7 && memcmp(name, "live.js", 7) == 0)
        return LH_LIVE_SCRIPT;
    if (n == 6 && memcmp(name, "events", 6) == 0)
        return LH_LIVE_EVENTS;
    return LH_LIVE_OTHER;
}

bool lh_live_is_html(const char *type, size_t len)
{
    static const char html[] = "text/html";
    size_t n = sizeof html - 1;
    while (len > 0 && (*type == ' ' || *type == '\t'))
        type++, len--;
    if (len < n || strncasecmp(type, html, n) != 0)
        return false;
    return len == n || type[n] == ';' || type[n] == ' ' || type[n] == '\t';
}

size_t lh_live_tag_at(const char *html, size_t len)
{
    for (size_t i = len; i >= 6; i--)
        if (html[i - 6] == '<' && html[i - 5] == '/' && strncasecmp(html + i - 4, "body", 4) == 0)
            return i - 6;
    return len;
}

bool lh_live_tail_feed(struct lh_live_tail *t, const char *piece, size_t len)
{
    /* a "</body" across the seam has at most 5 bytes on either side of it; one that
     * starts in those before it cannot end there too */
    char seam[10];
    size_t head = len < 5 ? len : 5, n = t->n + head;
    memcpy(seam, t->b, t->n);
    memcpy(seam + t->n, piece, head);
    bool split = lh_live_tag_at(seam, n) < t->n;
    size_t keep = n < 5 ? n : 5;
    if (len >= 5)
        memcpy(t->b, piece + len - 5, 5);
    else /* a short piece: the seam holds all of it */
        memcpy(t->b, seam + n - keep, keep);
    t->n = (unsigned char)keep;
    return split;
}

char *lh_live_inject(const char *html, size_t len, size_t *out_len)
{
    static const char tag[] = LH_LIVE_TAG;
    size_t tlen = sizeof tag - 1;
    size_t at = lh_live_tag_at(html, len);
    if (at == len)
        return NULL;
    char *out = malloc(len + tlen);
    if (!out)
        return NULL;
    memcpy(out, html, at);
    memcpy(out + at, tag, tlen);
    memcpy(out + at + tlen, html + at, len - at);
    *out_len = len + tlen;
    return out;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

enum lh_live_change lh_live_change_of(const char *name)
{
    /* vim's swap files and its "4913" write test, emacs's #autosave# and lock files,
     * backups ending in ~, SQLite's journals (a database under the docroot must not
     * reload the page at every write), hidden files */
    static const char *const ignored[] = {".swp", ".swx", ".swo", "~", "-journal", "-wal",
                                          "-shm", ".tmp", ".part", ".crdownload"};
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.' || name[0] == '#' || strcmp(name, "4913") == 0)
        return LH_LIVE_IGNORE;
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (ends_with(name, n, ignored[i]))
            return LH_LIVE_IGNORE;
    return ends_with(name, n, ".css") ? LH_LIVE_CSS : LH_LIVE_RELOAD;
}

/* ---- the worker's side ------------------------------------------------------------ */

#define LIVE_CLIENTS_MAX 256    /* event streams at once, per worker */
#define LIVE_WATCHES_MAX 4096   /* folders watched under the docroot */
#define LIVE_CSS_MAX 8          /* stylesheets swapped at once; more: reload */
#define LIVE_SETTLE_US 40000    /* a save's events come together within this */
#define LIVE_PING_SECS 15.0     /* a comment line keeps proxies and the peer check awake */
/* what a failed reload says to a page not on this machine (as a Lua error's page, its
 * detail is for this machine only: server_int.h, lh_live_attach) */
#define LIVE_ERROR_FAR "(the error is in the server's error log; its detail is shown to " \
                       "pages on the server's machine only)"

struct watched_dir {
    int wd;
    char *rel;                  /* "" for the docroot, else "a/b" */
};

struct lh_live {
    struct worker *w;
    int ifd;                    /* inotify on the docroot's folders, -1 when none */
    struct event *ifd_ev;
    struct event *settle_ev;
    struct watched_dir *dirs;
    int ndirs;
    char root[PATH_MAX];        /* the docroot watched */
    bool reload;                /* what the settled events ask */
    bool rescan;                /* events were lost (the queue overflowed): folders made
                                   meanwhile are not watched, so watch them all again */
    int ncss;
    char *css[LIVE_CSS_MAX];
    struct conn **clients;
    bool *local;                /* clients[i] is a page on this machine: it may see the
                                   detail of a failed reload */
    int nclients;
    uint32_t error_sets;        /* lh_shm_dev_get's count last seen */
    char error[LH_SHM_DEV_LEN]; /* the reload error the pages show, "" when none */
};

static void unwatch_all(struct lh_live *l)
{
    for (int i = 0; i < l->ndirs; i++)
        free(l->dirs[i].rel);
    free(l->dirs);
    l->dirs = NULL;
    l->ndirs = 0;
    if (l->ifd_ev)
        event_free(l->ifd_ev);
    l->ifd_ev = NULL;
    if (l->ifd >= 0)
        close(l->ifd);
    l->ifd = -1;
}

/* Watch the folder rel of the docroot and the folders under it (not hidden ones, not
 * node_modules), up to LIVE_WATCHES_MAX in all. */
static void watch_tree(struct lh_live *l, const char *rel)
{
    char path[PATH_MAX];
    if (l->ndirs >= LIVE_WATCHES_MAX ||
        snprintf(path, sizeof path, "%s%s%s", l->root, *rel ? "/" : "", rel) >= (int)sizeof path)
        return;
    int wd = inotify_add_watch(l->ifd, path, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                                 IN_CREATE | IN_DELETE | IN_ONLYDIR);
    int known = 0;
    while (wd >= 0 && known < l->ndirs && l->dirs[known].wd != wd)
        known++;
    if (wd >= 0 && known < l->ndirs) {
        /* watched already under another name (the kernel gives one watch per folder):
         * it goes by this one now */
        char *copy = strdup(rel);
        if (!copy)
            return;
        free(l->dirs[known].rel);
        l->dirs[known].rel = copy;
    } else {
        struct watched_dir *d =
            wd < 0 ? NULL : realloc(l->dirs, (size_t)(l->ndirs + 1) * sizeof *d);
        if (d)
            l->dirs = d; /* moved or not, the old block is gone */
        char *copy = d ? strdup(rel) : NULL;
        if (!copy)
            return;
        l->dirs[l->ndirs++] = (struct watched_dir){wd, copy};
    }
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        char sub[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.' || strcmp(de->d_name, "node_modules") == 0 ||
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= (int)sizeof sub ||
            lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        watch_tree(l, sub);
    }
    closedir(dir);
}

/* The kernel dropped the watch wd (its folder was removed): forget it, so that a
 * build that makes its output folders again and again does not fill the list. */
static void forget_watch(struct lh_live *l, int wd)
{
    for (int i = 0; i < l->ndirs; i++)
        if (l->dirs[i].wd == wd) {
            free(l->dirs[i].rel);
            l->dirs[i] = l->dirs[--l->ndirs];
            return;
        }
}

/* The folder rel was renamed away (maybe out of the docroot): stop watching it and
 * the folders under it; where it went, if under the docroot, is watched anew. */
static void unwatch_tree(struct lh_live *l, const char *rel)
{
    size_t n = strlen(rel);
    for (int i = 0; i < l->ndirs;) {
        const char *r = l->dirs[i].rel;
        if (strncmp(r, rel, n) == 0 && (r[n] == '\0' || r[n] == '/')) {
            inotify_rm_watch(l->ifd, l->dirs[i].wd);
            free(l->dirs[i].rel);
            l->dirs[i] = l->dirs[--l->ndirs];
        } else {
            i++;
        }
    }
}

static const char *rel_of(const struct lh_live *l, int wd)
{
    for (int i = 0; i < l->ndirs; i++)
        if (l->dirs[i].wd == wd)
            return l->dirs[i].rel;
    return NULL;
}

/* ---- the event streams ---- */

/* Send an event to one stream. A stream whose socket does not take it at once
 * (a page that stopped reading) is closed: it would only fall further behind. */
static bool tell(struct conn *c, const char *msg, size_t len)
{
    ssize_t n = send(c->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == (ssize_t)len)
        return true;
    lh_conn_free(c); /* lh_live_forget takes it off the list */
    return false;
}

/* "event: NAME" and data, one "data:" line per line of it. NULL if out of memory. */
static char *event_text(const char *name, const char *data, size_t *len)
{
    size_t cap = strlen(name) + strlen(data) * 2 + 32, n = 0;
    for (const char *p = data; *p; p++)
        cap += *p == '\n' ? 6 : 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    n += (size_t)sprintf(out, "event: %s\ndata: ", name);
    for (const char *p = data; *p; p++) {
        if (*p == '\r')
            continue;
        if (*p == '\n') {
            memcpy(out + n, "\ndata: ", 7);
            n += 7;
        } else {
            out[n++] = *p;
        }
    }
    memcpy(out + n, "\n\n", 2);
    *len = n + 2;
    return out;
}

/* The event to every stream: with data, or far_data (when not NULL) for the pages
 * that are not on this machine. */
static void broadcast_to(struct lh_live *l, const char *name, const char *data,
                         const char *far_data)
{
    size_t len, far_len = 0;
    char *msg = event_text(name, data, &len);
    char *far = far_data ? event_text(name, far_data, &far_len) : NULL;
    if (msg && (far || !far_data))
        for (int i = l->nclients - 1; i >= 0; i--) /* tell() may take clients[i] away */
            if (i < l->nclients) {
                bool near = !far || l->local[i];
                tell(l->clients[i], near ? msg : far, near ? len : far_len);
            }
    free(msg);
    free(far);
}

static void broadcast(struct lh_live *l, const char *name, const char *data)
{
    broadcast_to(l, name, data, NULL);
}

void lh_live_forget(struct conn *c)
{
    struct lh_live *l = c->w->live;
    for (int i = 0; l && i < l->nclients; i++)
        if (l->clients[i] == c) {
            l->clients[i] = l->clients[--l->nclients];
            l->local[i] = l->local[l->nclients];
            return;
        }
}

enum step lh_live_attach(struct conn *c, const struct lh_request *req, bool local)
{
    struct lh_live *l = c->w->live;
    /* stopping: a stream would only hold the worker until shutdown_timeout */
    if (!l || c->w->stopping || l->nclients >= LIVE_CLIENTS_MAX)
        return lh_send_error(c, req, 503);
    char head[512];
    char date[LH_HTTP_DATE_LEN + 1];
    lh_http_date(time(NULL), date);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nDate: %s\r\nServer: luahttpd/" LH_VERSION "\r\n"
                     "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "Connection: close\r\n\r\nretry: 500\n\nevent: hello\ndata: %d.%lld\n\n",
                     date, (int)c->w->srv->master_pid, (long long)c->w->srv->started_ns);
    lh_send_log_access(c, req, 200, 0);
    c->state = C_EVENTS;
    c->close_after = true;
    lh_conn_release_input(c);
    l->local[l->nclients] = local;
    l->clients[l->nclients++] = c;
    if (!tell(c, head, (size_t)n))
        return DONE;
    if (l->error[0]) {
        size_t len;
        char *msg = event_text("config-error", local ? l->error : LIVE_ERROR_FAR, &len);
        if (msg && !tell(c, msg, len)) {
            free(msg);
            return DONE;
        }
        free(msg);
    }
    lh_conn_arm(c, EV_READ, LIVE_PING_SECS);
    return DONE;
}

void lh_live_on_event(struct conn *c, short what)
{
    if (what & EV_TIMEOUT) {
        if (tell(c, ": ping\n\n", 8))
            lh_conn_arm(c, EV_READ, LIVE_PING_SECS);
        return;
    }
    char buf[512];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        lh_conn_free(c); /* the page went away */
}

/* ---- news ---- */

static void watch_docroot(struct lh_live *l);

static void on_settled(evutil_socket_t fd, short what, void *arg)
{
    struct lh_live *l = arg;
    if (l->rescan) {
        l->rescan = false;
        l->root[0] = '\0'; /* not the one watched: all of it again */
        watch_docroot(l);
    }
    if (l->reload)
        broadcast(l, "reload", "");
    else
        for (int i = 0; i < l->ncss; i++)
            broadcast(l, "css", l->css[i]);
    for (int i = 0; i < l->ncss; i++)
        free(l->css[i]);
    l->ncss = 0;
    l->reload = false;
}

static void note_css(struct lh_live *l, const char *rel, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "/%s%s%s", rel, *rel ? "/" : "", name);
    for (int i = 0; i < l->ncss; i++)
        if (strcmp(l->css[i], path) == 0)
            return;
    if (l->ncss == LIVE_CSS_MAX || !(l->css[l->ncss] = strdup(path)))
        l->reload = true;
    else
        l->ncss++;
}

static void note_event(struct lh_live *l, const struct inotify_event *ev)
{
    if (ev->mask & IN_IGNORED) {
        forget_watch(l, ev->wd);
        return;
    }
    const char *rel = rel_of(l, ev->wd);
    if (ev->mask & IN_Q_OVERFLOW) {
        l->reload = l->rescan = true;
        return;
    }
    if (!rel || ev->len == 0)
        return;
    if ((ev->mask & IN_ISDIR) && (ev->mask & IN_MOVED_FROM)) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", ev->name);
        unwatch_tree(l, sub);
        l->reload = true;
        return;
    }
    if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->name[0] != '.') {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", ev->name);
        watch_tree(l, sub);
        l->reload = true;
        return;
    }
    if (ev->mask & IN_CREATE) /* a file: its IN_CLOSE_WRITE follows */
        return;
    switch (lh_live_change_of(ev->name)) {
    case LH_LIVE_IGNORE:
        return;
    case LH_LIVE_CSS:
        if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
            note_css(l, rel, ev->name);
            return;
        }
        l->reload = true; /* a stylesheet removed or renamed away */
        return;
    case LH_LIVE_RELOAD:
        l->reload = true;
        return;
    }
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct lh_live *l = arg;
    _Alignas(struct inotify_event) char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            note_event(l, ev);
            p += sizeof *ev + ev->len;
        }
    if ((l->reload || l->ncss) && !evtimer_pending(l->settle_ev, NULL)) {
        struct timeval settle = {0, LIVE_SETTLE_US};
        evtimer_add(l->settle_ev, &settle);
    }
}

/* Watch the docroot of the worker's settings, unless it is watched already. */
static void watch_docroot(struct lh_live *l)
{
    const char *root = l->w->set->root_real;
    if (l->ifd >= 0 && strcmp(root, l->root) == 0)
        return;
    unwatch_all(l);
    snprintf(l->root, sizeof l->root, "%s", root);
    l->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (l->ifd < 0) {
        lh_log_error("warn", "--dev: cannot watch the docroot for live reload: %s",
                     strerror(errno));
        return;
    }
    watch_tree(l, "");
    l->ifd_ev = event_new(l->w->base, l->ifd, EV_READ | EV_PERSIST, on_inotify, l);
    if (!l->ifd_ev || event_add(l->ifd_ev, NULL) < 0)
        unwatch_all(l);
}

int lh_live_start(struct worker *w)
{
    struct lh_live *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->w = w;
    l->ifd = -1;
    l->clients = calloc(LIVE_CLIENTS_MAX, sizeof *l->clients);
    l->local = calloc(LIVE_CLIENTS_MAX, sizeof *l->local);
    l->settle_ev = evtimer_new(w->base, on_settled, l);
    if (!l->clients || !l->local || !l->settle_ev) {
        if (l->settle_ev)
            event_free(l->settle_ev);
        free(l->clients);
        free(l->local);
        free(l);
        return -1;
    }
    w->live = l;
    l->error_sets = lh_shm_dev_get(w->srv->shm, l->error, sizeof l->error);
    watch_docroot(l);
    return 0;
}

void lh_live_stop(struct worker *w)
{
    struct lh_live *l = w->live;
    if (!l)
        return;
    while (l->nclients)
        lh_conn_free(l->clients[l->nclients - 1]);
    unwatch_all(l);
    for (int i = 0; i < l->ncss; i++)
        free(l->css[i]);
    event_free(l->settle_ev);
    free(l->clients);
    free(l->local);
    free(l);
    w->live = NULL;
}

void lh_live_close_streams(struct worker *w)
{
    struct lh_live *l = w->live;
    while (l && l->nclients)
        lh_conn_free(l->clients[l->nclients - 1]);
}

void lh_live_reloaded(struct worker *w)
{
    struct lh_live *l = w->live;
    if (!l)
        return;
    l->error[0] = '\0';
    watch_docroot(l);
    broadcast(l, "reload", "");
}

void lh_live_news(struct worker *w)
{
    struct lh_live *l = w->live;
    if (!l)
        return;
    char error[LH_SHM_DEV_LEN];
    uint32_t sets = lh_shm_dev_get(w->srv->shm, error, sizeof error);
    if (sets == l->error_sets)
        return;
    l->error_sets = sets;
    memcpy(l->error, error, sizeof error);
    if (error[0])
        broadcast_to(l, "config-error", error, LIVE_ERROR_FAR);
}

/* ---- HTML responses ---- */

#define LIVE_PAGE_MAX (16 * 1024 * 1024) /* a larger page is sent as it is */

/* An HTML page, whole and as it is: not a part of one, not coded (the tag would go
 * into compressed bytes), not a status without a body. */
static bool takes_tag(const struct lh_response *r)
{
    const char *type = lh_response_get(r, "Content-Type");
    return type && lh_live_is_html(type, strlen(type)) && r->status != 206 &&
           r->status != 304 && r->status != 204 && !lh_response_get(r, "Content-Encoding");
}

bool lh_live_stream_takes_tag(const struct lh_response *r)
{
    /* a stream of a known length (proxy()'s) goes as it is: its Content-Length went
     * out with the head, and the pieces are held to it */
    return r->known_length < 0 && takes_tag(r);
}

/* The tag into r's body (memory, or a whole file read into memory), the ETag made
 * distinct from the file's own. */
void lh_live_inject_response(struct lh_response *r)
{
    if (!takes_tag(r))
        return;
    char *file = NULL;
    const char *body = r->body;
    size_t len = r->body_len;
    if (r->body_kind == LH_BODY_FILE) {
        if (r->file_len > LIVE_PAGE_MAX || !(file = malloc((size_t)r->file_len + 1)) ||
            pread(r->fd, file, (size_t)r->file_len, r->file_off) != r->file_len) {
            free(file);
            return;
        }
        body = file;
        len = (size_t)r->file_len;
    } else if (r->body_kind != LH_BODY_MEM) {
        return; /* a streamed page gets it piece by piece (send.c) */
    }
    size_t out_len;
    char *out = lh_live_inject(body, len, &out_len);
    free(file);
    if (!out)
        return;
    lh_response_body(r, out, out_len, out);
    const char *etag = lh_response_get(r, "ETag");
    size_t elen = etag ? strlen(etag) : 0;
    bool tagged_already = elen >= 7 && memcmp(etag + elen - 6, "-live", 5) == 0; /* static.c */
    if (elen >= 2 && etag[elen - 1] == '"' && !tagged_already) {
        char tagged[128];
        if (snprintf(tagged, sizeof tagged, "%.*s-live\"", (int)(elen - 1), etag) <
            (int)sizeof tagged) {
            lh_response_unset(r, "ETag");
            lh_response_header(r, "ETag", tagged);
        }
    }
}
