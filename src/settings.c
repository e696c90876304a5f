/* settings.c - a configuration with what it opened (docroot, access log, a Lua state
 * per worker), shared by reference count: workers switch to a new one on reload while
 * requests in flight finish on the old. See server_int.h. */
#include "server_int.h"
#include "log.h"
#include "lua_host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lh_settings_release(struct settings *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->root_fd >= 0)
        close(s->root_fd);
    if (s->access_fd >= 0)
        close(s->access_fd);
    free(s->root_real);
    for (int i = 0; i < s->nlua; i++)
        lh_lua_free(s->lua[i]);
    free(s->lua);
    lh_config_free(&s->cfg);
    free(s);
}

/* The worker Lua states: config.lua run once more for each, here, so that a file
 * that fails to load is noticed before anything switches to it. */
static int make_states(struct settings *s, int n, char *err, size_t errlen)
{
    s->lua = calloc((size_t)n, sizeof *s->lua);
    if (!s->lua) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (; s->nlua < n; s->nlua++) {
        struct lh_config scratch = {0};
        s->lua[s->nlua] = lh_lua_new(s->cfg.path, &scratch, s->dev, err, errlen);
        if (!s->lua[s->nlua])
            return -1;
        lh_config_free(&scratch);
    }
    return 0;
}

/* Open what cfg names and make a Lua state per worker. Takes ownership of cfg's
 * contents. NULL with err on failure. */
struct settings *lh_settings_new(struct lh_config *cfg, int nworkers, bool dev,
                                     char *err, size_t errlen)
{
    struct settings *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        lh_config_free(cfg);
        return NULL;
    }
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->access_fd = -1;
    s->dev = dev;
    atomic_init(&s->refs, 1);
    s->root_fd = lh_static_open_root(s->cfg.docroot);
    s->root_real = s->root_fd >= 0 ? realpath(s->cfg.docroot, NULL) : NULL;
    if (!s->root_real) {
        snprintf(err, errlen, "docroot %s: %s", s->cfg.docroot, strerror(errno));
        goto fail;
    }
    if (s->cfg.access_log) {
        s->access_fd = lh_log_open(s->cfg.access_log, STDOUT_FILENO);
        if (s->access_fd < 0) {
            snprintf(err, errlen, "access_log %s: %s", s->cfg.access_log, strerror(errno));
            goto fail;
        }
    }
    s->st = (struct lh_static){.root_fd = s->root_fd,
                               .root_path = s->root_real,
                               .index = s->cfg.index,
                               .autoindex = s->cfg.autoindex,
                               .dotfiles = s->cfg.dotfiles};
    if (make_states(s, nworkers, err, errlen) < 0)
        goto fail;
    return s;
fail:
    lh_settings_release(s);
    return NULL;
}

int lh_server_load_config(const struct lh_options *o, struct lh_config *c, char *err,
                          size_t errlen)
{
    if (o->config_path) {
        /* the same loading path as the workers' states: routes are checked too */
        struct lh_lua *lua = lh_lua_new(o->config_path, c, o->dev, err, errlen);
        if (!lua)
            return -1;
        lh_lua_free(lua);
    } else if (lh_config_defaults(c) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (o->port >= 0)
        c->port = o->port;
    if (o->workers > 0)
        c->workers = o->workers;
    if (o->docroot) {
        char *d = strdup(o->docroot);
        if (!d) {
            lh_config_free(c);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(c->docroot);
        c->docroot = d;
    }
    return 0;
}

void lh_settings_log_warnings(const struct lh_config *c)
{
    for (size_t i = 0; i < c->nwarnings; i++)
        lh_log_error("warn", "%s", c->warnings[i]);
}
