/* devwatch.c - --dev: reload when a Lua file changes (inotify on the config file's
 * folder and the folders under it, where require finds modules). See server_int.h. */
#include "server_int.h"
#include "log.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* How deep under the config file's folder Lua files count: scripts/a/b/c.lua for
 * require("a.b.c"), lib/util.lua for require("lib.util"). Hidden folders and
 * node_modules are not looked into; at most WATCH_DIRS_MAX folders are watched. */
#define LUA_DEPTH 4
#define WATCH_DIRS_MAX 1024

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 1099511628211ULL; }

static bool skipped(const char *name)
{
    return name[0] == '.' || strcmp(name, "node_modules") == 0;
}

/* Fold the size, modification and change time and inode of every *.lua file under dir
 * (depth levels deep) into h: config.lua and the modules it may require. The change time catches an edit that keeps the size and puts the old
 * mtime back (cp -p, rsync -t, tar -x): nobody can set it. */
static uint64_t sign_lua_files(uint64_t h, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return h;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (skipped(de->d_name))
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
    return sign_lua_files(1469598103934665603ULL, c->dir, LUA_DEPTH);
}

/* The signature moved: reload (a broken save is reported once, not at every event). */
static void check(struct server *srv)
{
    uint64_t sig = lua_files_signature(srv);
    if (sig == srv->watched)
        return;
    srv->watched = sig;
    lh_log_error("notice", "--dev: a Lua file changed, reloading");
    lh_master_reload(srv);
}

/* Watch dir and, depth levels down, its folders for what a save does: a write that
 * ends, a rename into place, a creation or a removal. *left: watches still allowed. */
static void watch_dirs(int ifd, const char *dir, int depth, int *left)
{
    if (*left <= 0 ||
        inotify_add_watch(ifd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                        IN_DELETE | IN_ATTRIB | IN_ONLYDIR) < 0)
        return;
    static bool told;
    if (--*left == 0 && !told) {
        told = true;
        lh_log_error("warn", "--dev: watching the first %d folders for Lua files only",
                     WATCH_DIRS_MAX);
    }
    if (depth == 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[PATH_MAX];
        struct stat st;
        if (skipped(de->d_name) ||
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
            stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        watch_dirs(ifd, path, depth - 1, left);
    }
    closedir(d);
}

/* Watches on the config file's folder and the folders under it, made again at every
 * event that may matter (a new folder, a folder renamed into place). */
static void rewatch(struct server *srv)
{
    const struct lh_config *c = &srv->current->cfg;
    close(srv->watch_fd);
    srv->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (srv->watch_fd < 0 || !c->path)
        return;
    int left = WATCH_DIRS_MAX;
    watch_dirs(srv->watch_fd, c->dir, LUA_DEPTH, &left);
}

/* inotify news: wait a moment for the rest of the save (an editor writes a backup,
 * renames, sets the mode), then compare. */
static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    _Alignas(struct inotify_event) char buf[4096];
    bool lua = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            size_t len = ev->len ? strlen(ev->name) : 0;
            lua |= (len > 4 && strcmp(ev->name + len - 4, ".lua") == 0) ||
                   (ev->mask & (IN_ISDIR | IN_Q_OVERFLOW | IN_IGNORED));
            p += sizeof *ev + ev->len;
        }
    if (lua) {
        struct timeval settle = {0, 30000};
        event_add(srv->watch, &settle);
    }
}

static void on_settled(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    if (srv->watch_ev)
        event_free(srv->watch_ev);
    srv->watch_ev = NULL;
    rewatch(srv);
    if (srv->watch_fd >= 0) {
        srv->watch_ev = event_new(srv->base, srv->watch_fd, EV_READ | EV_PERSIST, on_inotify, srv);
        if (srv->watch_ev)
            event_add(srv->watch_ev, NULL);
    }
    check(srv);
    if (!srv->watch_ev) { /* no inotify: look every quarter second */
        struct timeval every = {0, 250000};
        event_add(srv->watch, &every);
    }
}

int lh_devwatch_start(struct server *srv)
{
    srv->watched = lua_files_signature(srv);
    srv->watch_fd = -1;
    srv->watch = evtimer_new(srv->base, on_settled, srv);
    if (!srv->watch)
        return -1;
    struct timeval now = {0, 0};
    return event_add(srv->watch, &now) == 0 ? 0 : -1; /* sets the watches up */
}

void lh_devwatch_stop(struct server *srv)
{
    if (srv->watch)
        event_free(srv->watch);
    if (srv->watch_ev)
        event_free(srv->watch_ev);
    if (srv->watch_fd >= 0)
        close(srv->watch_fd);
    srv->watch = srv->watch_ev = NULL;
    srv->watch_fd = -1;
}
