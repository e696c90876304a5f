/* config.h - run config.lua in a fresh Lua state, validate it, produce a C struct. */
#ifndef LH_CONFIG_H
#define LH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define LH_VERSION "0.1.0"

struct lh_keepalive {
    bool enabled;          /* false: Connection: close after every response */
    double timeout;        /* seconds an idle persistent connection is kept */
    long max_requests;     /* requests on one connection */
    long max_per_client;   /* open connections from one client IP */
};

struct lh_limits {
    long header_bytes;       /* request line + headers; over: 431 (414 for the URI) */
    long body_bytes;         /* request body; over: 413 */
    double request_timeout;  /* seconds to receive a whole request once started */
    long handler_timeout_ms; /* Lua run time of one request (summed over its resumes) */
    long lua_memory_mb;      /* memory of one Lua state */
    double stall_timeout;    /* seconds a worker may stay away from its event loop */
    long shared_mb;          /* memory of the shared store */
};

/* cors = true or a table (CONTRACT 8): the Access-Control-* headers front.c adds.
 * A list is kept as config.lua gave it, joined with ", " (the form a header takes). */
struct lh_cors {
    bool enabled;        /* first member: `cors = true/false` sets it; a table sets true */
    char *origins;       /* "https://a.example, https://b.example"; NULL: any origin (*) */
    char *methods;       /* Access-Control-Allow-Methods; NULL: the server's default list,
                          * "" (an empty array): none sent */
    char *headers;       /* Access-Control-Allow-Headers; NULL: echo the preflight's
                          * Access-Control-Request-Headers (none asked: "*", or
                          * "Content-Type" with credentials), "": none sent */
    bool credentials;    /* Access-Control-Allow-Credentials: true (only with origins) */
    long max_age;        /* Access-Control-Max-Age of a preflight's answer, seconds */
};

/* error_pages keys: the statuses of errors */
#define LH_ERROR_PAGE_MIN 400
#define LH_ERROR_PAGE_MAX 599

/* Every string is owned by the struct (malloc'd) and freed by lh_config_free. */
struct lh_config {
    char *path;          /* the config file that was loaded, NULL for built-in defaults */
    char *dir;           /* its folder ("." for defaults); relative settings start here */
    int port;            /* 0..65535; 0 picks a free port */
    char *host;          /* bind address */
    char *docroot;       /* resolved against dir, not yet checked for existence */
    int workers;         /* >= 1 ("auto" resolved to the number of online CPUs) */
    char *index;         /* file served for a directory */
    bool autoindex;      /* as set, else the default: false (true under --dev, applied
                          * with the command line's options, see server.h) */
    bool autoindex_set;  /* config.lua set autoindex: --dev leaves it as it is */
    bool dotfiles;
    bool unsafe_libs;    /* handlers get os.execute, io.popen, debug.*, binary chunks,
                          * C modules */
    char *access_log;    /* path, "-" for stdout, NULL for off */
    char *error_log;     /* path or "-" for stderr */
    double shutdown_timeout;
    struct lh_keepalive keepalive;
    long max_connections;
    struct lh_limits limits;
    struct lh_cors cors;
    char *fallback;      /* a file in docroot, relative ("index.html"), served with 200 for
                          * a page that is not found (single-page apps); NULL: off */
    bool compress;       /* gzip text responses (validated here, used by the response path) */
    /* error_pages: the docroot file (relative) whose body an error of status s gets, at
     * [s - LH_ERROR_PAGE_MIN]; NULL: the built-in page */
    char *error_pages[LH_ERROR_PAGE_MAX - LH_ERROR_PAGE_MIN + 1];
    char **warnings;     /* non-fatal messages (unknown globals, ...), nwarnings of them */
    size_t nwarnings;
};

/* Fill c with the built-in defaults (the values documented in config.lua).
 * c must be zeroed or freed before. Returns 0, or -1 if out of memory. */
int lh_config_defaults(struct lh_config *c);

/*
 * Load `path`: run it as a Lua 5.4 text chunk in a fresh state, read and validate the
 * settings into c (which starts from the defaults). On failure returns -1 and writes
 * a one-line message into err naming the file and line ("config.lua:3: port must be
 * an integer from 0 to 65535, got string \"abc\"") and leaves c freed (all NULL).
 * Returns 0 on success.
 */
int lh_config_load(struct lh_config *c, const char *path, char *err, size_t errlen);

struct lua_State;

/* Like lh_config_load, but run the file in L, which the caller created and prepared
 * (libraries open, the functions config.lua may call installed). Whatever the chunk
 * defines stays in L. */
int lh_config_load_in(struct lh_config *c, const char *path, struct lua_State *L,
                      char *err, size_t errlen);

/* Free everything c owns and zero it. Safe on a zeroed struct. */
void lh_config_free(struct lh_config *c);

/* Deep-copy src into dst (dst must be zeroed). Returns 0 or -1. */
int lh_config_copy(struct lh_config *dst, const struct lh_config *src);

#endif
