/* devwatch.c - --dev: reload when a Lua file changes. See server_int.h. */
#include "server_int.h"
#include "log.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
    lh_master_reload(srv);
}

int lh_devwatch_start(struct server *srv)
{
    srv->watched = lua_files_signature(srv);
    srv->watch = event_new(srv->base, -1, EV_PERSIST, on_watch, srv);
    struct timeval every = {0, 250000};
    return srv->watch && event_add(srv->watch, &every) == 0 ? 0 : -1;
}
