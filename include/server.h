/* server.h - the server: a master process, its worker processes, signals, reload. */
#ifndef LH_SERVER_H
#define LH_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* What the command line asked for; it wins over config.lua, on reload too. */
struct lh_options {
    const char *config_path;  /* NULL: built-in defaults */
    int port;                 /* -1: from the config */
    const char *docroot;      /* NULL: from the config */
    int workers;              /* 0: from the config */
    bool dev;                 /* development mode */
};

/* Load the configuration o names (or the defaults) and apply o's overrides; --dev
 * also makes autoindex true when config.lua does not set it (as the server does).
 * Returns 0, or -1 with a one-line message (file:line for config errors) in err. */
int lh_server_load_config(const struct lh_options *o, struct lh_config *c, char *err,
                          size_t errlen);

/*
 * Load the configuration, then serve as the master of `workers` worker processes
 * until SIGINT/SIGTERM. Prints "listening on http://HOST:PORT/" once listening.
 * Returns the process exit status: 0 after a clean shutdown, 1 when requests had to
 * be abandoned, or the configuration, docroot, a log or the port is unusable.
 */
int lh_server_run(const struct lh_options *o);

#endif
