/* static.h - files under the docroot: confined, conditional, ranged; declines on a miss. */
#ifndef LH_STATIC_H
#define LH_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "response.h"

struct lh_static {
    int root_fd;            /* the docroot, opened O_DIRECTORY; owned by the caller */
    const char *root_path;  /* its canonical path: names it in the small-file cache */
    const char *index;      /* file served for a directory */
    bool autoindex;         /* list directories without an index file */
    bool dotfiles;          /* serve paths with a segment starting with '.' */
    bool compress;          /* gzip-coded copies of text files for clients that take them */
    bool dev;               /* --dev: Cache-Control: no-cache on files, and the small-file
                               cache checks the file at every request */
};

/*
 * A worker's cache of small files (up to 32 KiB, at most 512 of them): contents and
 * validators in memory, checked against the file system at most once a second (a
 * file changed within the same second may be served as it was for the rest of it;
 * in --dev, at every request).
 * Confinement holds: entries are only ever filled and checked through the docroot.
 */
struct lh_fcache;
struct lh_fcache *lh_fcache_new(void);
void lh_fcache_free(struct lh_fcache *c);

/*
 * The cache also remembers names missing at the top of the docroot (a 404 for
 * /favicon.ico, or no docroot/404.html) for as long as nothing in the docroot
 * directory changes, which inotify reports: lh_fcache_watch points the watch at a
 * docroot (call it again when the docroot changes); the caller polls
 * lh_fcache_watch_fd (-1: no inotify, so nothing is remembered missing) and calls
 * lh_fcache_changed when it is readable, before it answers any request.
 */
void lh_fcache_watch(struct lh_fcache *c, int root_fd);
int lh_fcache_watch_fd(const struct lh_fcache *c);
void lh_fcache_changed(struct lh_fcache *c);

/* Open the docroot for lh_static: returns an O_DIRECTORY fd, or -1 with errno set. */
int lh_static_open_root(const char *path);

/*
 * Answer a request for the normalised path (from lh_path_normalize) from the docroot,
 * through cache when it is not NULL.
 * query/query_len is the raw query string, kept in redirects. head: the request is
 * HEAD. Returns true when resp was filled (a file, a 301, 304, 206, 403, 405, 416,
 * a listing), false when there is nothing at that path (the caller goes on: 404).
 */
bool lh_static_serve(const struct lh_static *s, struct lh_fcache *cache, const char *path,
                     const char *query, size_t query_len, const struct lh_request *req,
                     struct lh_response *resp);

/* Fill resp with a 404 (a built-in error, resp->builtin): docroot/404.html when it
 * exists, else a built-in page; cache (may be NULL) remembers that there is none. */
void lh_static_not_found(const struct lh_static *s, struct lh_fcache *cache,
                         struct lh_response *resp);

/* Make the docroot's file at path (normalised, starting with '/') the body of resp,
 * with the Content-Type of its name; the status and the other headers stay. Returns
 * false, resp unchanged, when there is no regular file there that can be opened
 * (cache, which may be NULL, remembers a missing name at the top of the docroot). */
bool lh_static_error_page(const struct lh_static *s, struct lh_fcache *cache, const char *path,
                          struct lh_response *resp);

#endif
