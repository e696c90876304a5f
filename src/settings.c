/* settings.c - a configuration with what it opened (docroot, access log, the Lua state
 * config.lua ran in), shared by reference count: a worker switches to a new one on
 * reload while its requests in flight finish on the old. See server_int.h. */
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
    if (!s || --s->refs > 0)
        return;
    if (s->root_fd >= 0)
        close(s->root_fd);
    if (s->access_fd >= 0)
        close(s->access_fd);
    free(s->root_real);
    lh_front_free(&s->front);
    lh_lua_free(s->lua);
    lh_config_free(&s->cfg);
    free(s);
}

/* What the command line asked for wins over config.lua. --dev only changes the
 * defaults: folders are listed unless config.lua set autoindex. 0 or -1. */
static int apply_options(const struct lh_options *o, struct lh_config *c)
{
    if (o->dev && !c->autoindex_set)
        c->autoindex = true;
    if (o->port >= 0)
        c->port = o->port;
    if (o->workers > 0)
        c->workers = o->workers;
    if (o->docroot) {
        char *d = strdup(o->docroot);
        if (!d)
            return -1;
        free(c->docroot);
        c->docroot = d;
    }
    return 0;
}

/* Open what s->cfg names. 0, or -1 with err. */
static int open_files(struct settings *s, char *err, size_t errlen)
{
    s->root_fd = lh_static_open_root(s->cfg.docroot);
    s->root_real = s->root_fd >= 0 ? realpath(s->cfg.docroot, NULL) : NULL;
    if (!s->root_real) {
        snprintf(err, errlen, "docroot %s: %s", s->cfg.docroot, strerror(errno));
        return -1;
    }
    if (s->cfg.access_log) {
        s->access_fd = lh_log_open(s->cfg.access_log, STDOUT_FILENO);
        if (s->access_fd < 0) {
            snprintf(err, errlen, "access_log %s: %s", s->cfg.access_log, strerror(errno));
            return -1;
        }
    }
    s->st = (struct lh_static){.root_fd = s->root_fd,
                               .root_path = s->root_real,
                               .index = s->cfg.index,
                               .autoindex = s->cfg.autoindex,
                               .dotfiles = s->cfg.dotfiles,
                               .compress = s->cfg.compress,
                               .dev = s->dev};
    if (lh_front_init(&s->front, &s->cfg) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

struct settings *lh_settings_load(const struct lh_options *o, char *err, size_t errlen)
{
    struct settings *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->refs = 1;
    s->root_fd = s->access_fd = -1;
    s->dev = o->dev;
    s->lua = lh_lua_new(o->config_path, &s->cfg, o->dev, err, errlen);
    if (!s->lua)
        goto fail;
    if (apply_options(o, &s->cfg) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (open_files(s, err, errlen) < 0)
        goto fail;
    return s;
fail:
    lh_settings_release(s);
    return NULL;
}

int lh_settings_reopen_access_log(struct settings *s)
{
    return s->access_fd < 0 ? 0 : lh_log_reopen(s->cfg.access_log, s->access_fd);
}

int lh_server_load_config(const struct lh_options *o, struct lh_config *c, char *err,
                          size_t errlen)
{
    /* the same loading path as the server's: routes are checked too */
    struct lh_lua *lua = lh_lua_new(o->config_path, c, o->dev, err, errlen);
    if (!lua)
        return -1;
    lh_lua_free(lua);
    if (apply_options(o, c) < 0) {
        lh_config_free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void lh_settings_log_warnings(const struct lh_config *c)
{
    for (size_t i = 0; i < c->nwarnings; i++)
        lh_log_error("warn", "%s", c->warnings[i]);
}
