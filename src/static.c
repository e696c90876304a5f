/* static.c - docroot-confined static files. See static.h.
 *
 * Confinement is by construction: the path is decoded and normalised before it gets
 * here (path.c), and every open is resolved by the kernel beneath the docroot fd with
 * openat2(RESOLVE_BENEATH), which refuses "..", absolute symlinks and symlinks that
 * lead out. What it refuses, and everything where openat2 is missing, is opened by
 * following the links and then checking where the opened file really is (see
 * open_checked). A directory listing shows only the entries that open that way. */
#include "static.h"

#include "cond.h"
#include "gzip.h"
#include "listing.h"
#include "live.h"
#include "mime.h"
#include "path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int lh_static_open_root(const char *path)
{
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* How every file is opened for a request: read-only, never waiting on a FIFO, never
 * becoming a controlling terminal. */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* The path fd really has now, as /proc/self/fd tells: its length, or -1 when there is
 * no /proc or the path does not fit (callers then refuse). */
static ssize_t fd_path(int fd, char *out, size_t size)
{
    char link[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, size);
    if (n < 0 || (size_t)n >= size)
        return -1;
    out[n] = '\0';
    return n;
}

/* Is fd the docroot or below it? Both paths are read now, from the open fds, so the
 * answer is about the very file that will be served, and a docroot renamed since
 * startup is still the one compared with (as openat2 sees it). */
static bool fd_is_beneath(int fd, int root_fd)
{
    char root[PATH_MAX], real[PATH_MAX];
    ssize_t rl = fd_path(root_fd, root, sizeof root);
    if (rl < 0 || fd_path(fd, real, sizeof real) < 0 || root[0] != '/')
        return false;
    if (rl == 1)
        rl = 0; /* the docroot is "/" */
    return strncmp(real, root, (size_t)rl) == 0 && (real[rl] == '\0' || real[rl] == '/');
}

/*
 * The slow way to open rel: follow every link, wherever it leads, then check where the
 * result really is. Used for what openat2 refused (an absolute link, which may well
 * point inside the docroot, or a link leading out) and on kernels without openat2.
 *
 * The lookup is an O_PATH open: it opens nothing (no device, no FIFO, no tape rewound,
 * no permission asked), it only names the file. The check then reads the path of that
 * very fd, and the file is reopened through the same fd (/proc/self/fd/N reopens the
 * file the fd names, not a path looked up again), so a link swapped after the lookup
 * changes nothing: what was checked is what is served. Returns an fd or -1 with errno
 * (EXDEV for a file outside the docroot).
 */
static int open_checked(const struct lh_static *s, const char *rel)
{
    int pfd = openat(s->root_fd, rel, O_PATH | O_CLOEXEC);
    if (pfd < 0)
        return -1;
    int fd = -1;
    if (fd_is_beneath(pfd, s->root_fd)) {
        char self[32];
        snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
        fd = open(self, OPEN_FLAGS);
    } else {
        errno = EXDEV;
    }
    int err = errno;
    close(pfd);
    errno = err;
    return fd;
}

/* Set once a kernel answers ENOSYS for openat2 (old kernels, valgrind 3.19). Workers
 * share it; it only ever goes from false to true, so relaxed order is enough. */
static atomic_bool no_openat2;

/* Open rel (no leading '/') beneath the docroot. Returns an fd or -1 with errno.
 *
 * openat2(RESOLVE_BENEATH) does it in one call and is what nearly every request takes.
 * It refuses every absolute link, even one into the docroot, and every link leading
 * out, with EXDEV (ELOOP for a loop or a /proc magic link): only then, and where there
 * is no openat2, does the slower open_checked decide. Both ways serve exactly the files
 * whose real place is beneath the docroot; rel itself has no ".." (path.c). */
static int open_beneath(const struct lh_static *s, const char *rel)
{
    if (rel[0] == '\0')
        rel = ".";
    if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
        struct open_how how = {.flags = (unsigned)OPEN_FLAGS,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        int fd = (int)syscall(SYS_openat2, s->root_fd, rel, &how, sizeof how);
        if (fd >= 0 || (errno != ENOSYS && errno != EXDEV && errno != ELOOP))
            return fd;
        if (errno == ENOSYS)
            atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
    }
    return open_checked(s, rel);
}

static void method_not_allowed(struct lh_response *resp)
{
    lh_response_error(resp, 405);
    lh_response_header(resp, "Allow", "GET, HEAD");
}

static bool is_get_or_head(const struct lh_request *req)
{
    return (req->method_len == 3 && memcmp(req->method, "GET", 3) == 0) ||
           (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0);
}

static const char *hdr(const struct lh_request *req, const char *name, size_t *len)
{
    const struct lh_header *h = lh_http_header(req, name);
    *len = h ? h->value_len : 0;
    return h ? h->value : NULL;
}

/* What the response to a file depends on. */
struct file_meta {
    int64_t size;
    time_t mtime;
    long mtime_nsec;
    struct timespec ctime;  /* moves at every write, and at every utime that hides one */
    dev_t dev;
    ino_t ino;
    const char *type;
    const char *encoding;   /* Content-Encoding the file is stored in, or NULL */
    char etag[48];
    char date[LH_HTTP_DATE_LEN + 1];
};

/*
 * The ETag is made of the size and the change time, not the modification time: an
 * edit that keeps the size and puts the old mtime back (cp -p, rsync -t, tar -x) must
 * change the tag, or a client holding the old one would get a 304 for new content, or
 * a 206 spliced from both. Nobody can set the change time; it also moves on chmod,
 * chown or a new hard link, which costs a client one download and never a stale file.
 */
static void meta_of(const char *name, const struct stat *st, struct file_meta *m)
{
    m->size = st->st_size;
    m->mtime = st->st_mtim.tv_sec;
    m->mtime_nsec = st->st_mtim.tv_nsec;
    m->ctime = st->st_ctim;
    m->dev = st->st_dev;
    m->ino = st->st_ino;
    m->type = lh_mime_type(name);
    m->encoding = lh_mime_encoding(name);
    lh_etag(st->st_size, st->st_ctim.tv_sec, st->st_ctim.tv_nsec, m->etag);
    lh_http_date(st->st_mtim.tv_sec, m->date);
}

/*
 * The headers for a file: 304, 416, or 200/206 with validators. Returns true when a
 * body goes with them: bytes [*first, *first + *len) of the file.
 */
/* How a file goes out, when compress = true: whether it could be gzip-coded (then
 * responses say Vary: Accept-Encoding either way), and for this request its coded
 * bytes and their entity tag, or NULL to send it as it is. */
struct coded {
    bool vary;
    const char *data;           /* owned by the cache: copied when sent */
    size_t len;
    char etag[48 + LH_GZIP_ETAG_EXTRA + 1];
};

static bool wants_gzip(const struct lh_request *req);

/* --dev: is m a page that send.c gzip-codes on its way out (compress = true), after
 * the live-reload script went in? */
static bool live_page_coded(const struct lh_static *s, const struct file_meta *m)
{
    size_t tlen = strlen(m->type);
    return s->dev && s->compress && !m->encoding && lh_live_is_html(m->type, tlen) &&
           lh_gzip_type_ok(m->type, tlen) &&
           m->size + (int64_t)sizeof LH_LIVE_TAG - 1 >= (int64_t)LH_GZIP_MIN;
}

static bool answer_file(const struct lh_static *s, const struct file_meta *m,
                        const struct coded *cd, const struct lh_request *req,
                        struct lh_response *resp, int64_t *first, int64_t *len)
{
    const char *etag = cd->data ? cd->etag : m->etag;
    /* a page coded later carries the coded tag then (send.c): a client revalidates
     * with that one, and its 304 varies as the 200 did */
    bool coded_later = live_page_coded(s, m);
    char later_tag[sizeof cd->etag];
    if (coded_later && wants_gzip(req) &&
        lh_gzip_etag(m->etag, strlen(m->etag), later_tag, sizeof later_tag) > 0)
        etag = later_tag;
    size_t inm_len, ims_len, range_len, ifr_len;
    const char *inm = hdr(req, "if-none-match", &inm_len);
    const char *ims = hdr(req, "if-modified-since", &ims_len);
    const char *range = hdr(req, "range", &range_len);
    const char *ifr = hdr(req, "if-range", &ifr_len);

    if (lh_not_modified(inm, inm_len, ims, ims_len, etag, m->mtime)) {
        lh_response_init(resp, 304);
        lh_response_header(resp, "ETag", etag);
        lh_response_header(resp, "Last-Modified", m->date);
        if (cd->vary || coded_later)
            lh_response_header(resp, "Vary", "Accept-Encoding");
        if (s->dev)
            lh_response_header(resp, "Cache-Control", "no-cache");
        return false;
    }
    /* --dev: a page goes out with the live-reload script in it (live.c), and a range
     * of the file's own bytes would not fit that page (a download resumed with
     * If-Range would be spliced from both): a page is sent whole */
    bool live = s->dev && lh_live_is_html(m->type, strlen(m->type));
    int64_t a = 0, b = m->size - 1;
    enum lh_range_result rr = LH_RANGE_NONE;
    if (range && !live && (!ifr || lh_if_range_ok(ifr, ifr_len, m->etag, m->mtime)))
        rr = lh_range_parse(range, range_len, m->size, &a, &b);
    char cr[96];
    if (rr == LH_RANGE_UNSATISFIABLE) {
        lh_response_error(resp, 416);
        snprintf(cr, sizeof cr, "bytes */%lld", (long long)m->size);
        lh_response_header(resp, "Content-Range", cr);
        return false;
    }
    lh_response_init(resp, rr == LH_RANGE_OK ? 206 : 200);
    lh_response_header(resp, "Content-Type", m->type);
    if (m->encoding || cd->data)
        lh_response_header(resp, "Content-Encoding", cd->data ? "gzip" : m->encoding);
    if (cd->vary)
        lh_response_header(resp, "Vary", "Accept-Encoding");
    lh_response_header(resp, "Last-Modified", m->date);
    lh_response_header(resp, "ETag", cd->data ? cd->etag : m->etag); /* send.c may code it */
    lh_response_header(resp, "Accept-Ranges", "bytes");
    if (s->dev) /* the browser asks every time: an edit shows at the next load */
        lh_response_header(resp, "Cache-Control", "no-cache");
    if (rr == LH_RANGE_OK) {
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)a, (long long)b,
                 (long long)m->size);
        lh_response_header(resp, "Content-Range", cr);
    }
    *first = a;
    *len = b - a + 1;
    return true;
}

/* ---- the small-file cache ----------------------------------------------------------- */

#define CACHE_SLOTS 512          /* direct-mapped: a new file takes its slot over */
#define CACHE_FILE_MAX (32 * 1024)
#define GZ_CACHE_BYTES (16 << 20) /* gzip-coded copies of larger files, per worker */

struct cached {
    char *key;                   /* docroot path, '\n', request path */
    char *data;                  /* the whole file */
    char *gz;                    /* its gzip-coded copy, made on first use; NULL when
                                    not made yet or not worth it (gz_tried) */
    size_t gz_len;
    bool gz_tried;
    time_t checked;              /* the second it was last found unchanged */
    struct file_meta meta;
};

/* Names found missing at the top of the docroot. An entry holds while `epoch` has not
 * moved: every creation, removal or rename in the docroot directory moves it (inotify),
 * and the worker reads those events before it reads any request (higher priority), so
 * a file created before a request is never answered with a stale 404. */
#define MISS_SLOTS 64
#define MISS_NAME 48

struct missing {
    uint64_t epoch;              /* 0: empty */
    char name[MISS_NAME];        /* the request path without its '/' */
};

struct lh_fcache {
    struct cached slot[CACHE_SLOTS];
    struct lh_gzcache *gz;       /* gzip-coded copies of larger files, made on first use */
    int inotify_fd;              /* -1 when inotify is unavailable: nothing is missing */
    int wd;                      /* the watch on the docroot, -1 when none */
    int watched_root;            /* the docroot fd it watches, -1 when none */
    uint64_t epoch;              /* moves at every change in that directory */
    struct missing miss[MISS_SLOTS];
};

struct lh_fcache *lh_fcache_new(void)
{
    struct lh_fcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    c->wd = c->watched_root = -1;
    c->epoch = 1;
    return c;
}

int lh_fcache_watch_fd(const struct lh_fcache *c) { return c->inotify_fd; }

void lh_fcache_watch(struct lh_fcache *c, int root_fd)
{
    c->epoch++;
    if (c->inotify_fd < 0)
        return;
    if (c->wd >= 0)
        inotify_rm_watch(c->inotify_fd, c->wd);
    c->wd = c->watched_root = -1;
    /* by the open fd, so the watch is on the very directory that requests open from */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", root_fd);
    c->wd = inotify_add_watch(c->inotify_fd, path,
                              IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                                  IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
    if (c->wd >= 0)
        c->watched_root = root_fd;
}

void lh_fcache_changed(struct lh_fcache *c)
{
    _Alignas(struct inotify_event) char buf[4096];
    ssize_t n;
    while ((n = read(c->inotify_fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            /* the watch is gone (not the one lh_fcache_watch replaced, whose IN_IGNORED
             * comes later), or events were lost: stop trusting misses */
            if ((ev->mask & IN_Q_OVERFLOW) ||
                ((ev->mask & (IN_IGNORED | IN_UNMOUNT)) && ev->wd == c->wd))
                c->wd = c->watched_root = -1;
            p += sizeof *ev + ev->len;
        }
    }
    c->epoch++;
}

/* The miss slot for path ("/name"), or NULL when path is not a short top-level name. */
static struct missing *miss_slot(struct lh_fcache *c, const struct lh_static *s,
                                 const char *path)
{
    if (c->watched_root < 0 || c->watched_root != s->root_fd)
        return NULL;
    const char *name = path + 1;
    size_t len = strlen(name);
    if (len == 0 || len >= MISS_NAME || memchr(name, '/', len))
        return NULL;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    return &c->miss[h % MISS_SLOTS];
}

static bool known_missing(struct lh_fcache *c, const struct lh_static *s, const char *path)
{
    struct missing *m = c ? miss_slot(c, s, path) : NULL;
    return m && m->epoch == c->epoch && strcmp(m->name, path + 1) == 0;
}

/* path was just found missing by an open that started at `epoch` (0: no watch then). A
 * dangling symbolic link is not remembered: its target can appear anywhere. */
static void note_missing(struct lh_fcache *c, const struct lh_static *s, const char *path,
                         uint64_t epoch)
{
    struct missing *m = c && epoch ? miss_slot(c, s, path) : NULL;
    struct stat st;
    if (!m || fstatat(s->root_fd, path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        return;
    m->epoch = epoch;
    strcpy(m->name, path + 1);
}

/* The epoch a lookup of path starts in, 0 when a miss could not be remembered. */
static uint64_t miss_epoch(const struct lh_fcache *c, const struct lh_static *s)
{
    return c && c->watched_root >= 0 && c->watched_root == s->root_fd ? c->epoch : 0;
}

void lh_fcache_free(struct lh_fcache *c)
{
    if (!c)
        return;
    if (c->inotify_fd >= 0)
        close(c->inotify_fd);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(c->slot[i].key);
        free(c->slot[i].data);
        free(c->slot[i].gz);
    }
    lh_gzcache_free(c->gz);
    free(c);
}

static struct cached *cache_slot(struct lh_fcache *c, const char *root, const char *path,
                                 bool *hit)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = root; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '\n') * 1099511628211ULL;
    for (const char *p = path; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    struct cached *e = &c->slot[h % CACHE_SLOTS];
    size_t rl = strlen(root);
    *hit = e->key && strncmp(e->key, root, rl) == 0 && e->key[rl] == '\n' &&
           strcmp(e->key + rl + 1, path) == 0;
    return e;
}

/* Keep fd's contents in slot e (the file is small). Returns false if it can't. */
static bool cache_fill(struct cached *e, const char *root, const char *path, int fd,
                       const struct file_meta *m, time_t now)
{
    char *data = malloc(m->size ? (size_t)m->size : 1);
    size_t klen = strlen(root) + strlen(path) + 2;
    char *key = malloc(klen);
    if (!data || !key || pread(fd, data, (size_t)m->size, 0) != m->size) {
        free(data);
        free(key);
        return false;
    }
    snprintf(key, klen, "%s\n%s", root, path);
    free(e->key);
    free(e->data);
    free(e->gz);
    e->gz = NULL;
    e->gz_tried = false;
    e->key = key;
    e->data = data;
    e->meta = *m;
    e->checked = now;
    return true;
}

/* ---- compression (compress = true) ---------------------------------------------------- */

/* Could m go out gzip-coded? In --dev a page is coded after the live-reload script
 * goes in (send.c), so not here. */
static bool compressible(const struct lh_static *s, const struct file_meta *m)
{
    size_t tlen = strlen(m->type);
    return s->compress && !m->encoding && m->size >= (int64_t)LH_GZIP_MIN &&
           m->size <= LH_GZIP_FILE_MAX && lh_gzip_type_ok(m->type, tlen) &&
           !(s->dev && lh_live_is_html(m->type, tlen));
}

/* Does this request get a coded body: it accepts gzip and asks no range (a range is
 * of the identity bytes)? */
static bool wants_gzip(const struct lh_request *req)
{
    size_t n, rn;
    const char *ae = hdr(req, "accept-encoding", &n);
    return ae && !hdr(req, "range", &rn) && lh_gzip_accepted(ae, n);
}

/* cd for m, whose coded bytes are data (NULL: not worth it, send it as it is). */
static void coded_as(const struct file_meta *m, const char *data, size_t len, struct coded *cd)
{
    cd->data = data;
    cd->len = len;
    if (data && lh_gzip_etag(m->etag, strlen(m->etag), cd->etag, sizeof cd->etag) == 0)
        cd->data = NULL;
}

/* A small file in the cache: its coded copy is made once and kept beside it. */
static void code_cached(const struct lh_static *s, struct cached *e,
                        const struct lh_request *req, struct coded *cd)
{
    cd->vary = compressible(s, &e->meta);
    cd->data = NULL;
    if (!cd->vary || !wants_gzip(req))
        return;
    if (!e->gz_tried) {
        e->gz_tried = true;
        char *out;
        size_t n;
        if (lh_gzip_compress(e->data, (size_t)e->meta.size, LH_GZIP_LEVEL, &out, &n) == 0) {
            if (n < (size_t)e->meta.size) {
                e->gz = out;
                e->gz_len = n;
            } else {
                free(out);
            }
        }
    }
    coded_as(&e->meta, e->gz, e->gz_len, cd);
}

/* A larger file: from the worker's cache of coded copies. */
static void code_file(const struct lh_static *s, struct lh_fcache *cache,
                      const struct file_meta *m, const struct stat *st, int fd,
                      const struct lh_request *req, struct coded *cd)
{
    cd->vary = cache && compressible(s, m);
    cd->data = NULL;
    if (!cd->vary || !wants_gzip(req))
        return;
    if (!cache->gz && !(cache->gz = lh_gzcache_new(GZ_CACHE_BYTES)))
        return;
    struct lh_gzkey key;
    lh_gzkey_of(st, &key);
    const char *data;
    size_t len;
    if (lh_gzcache_get(cache->gz, &key, fd, &data, &len) == 0)
        coded_as(m, data, len, cd);
}

/* Answer from memory; the body points into the cache (copied when sent). */
static void serve_cached(const struct lh_static *s, struct cached *e,
                         const struct lh_request *req, struct lh_response *resp)
{
    int64_t first, len;
    struct coded cd;
    code_cached(s, e, req, &cd);
    if (!answer_file(s, &e->meta, &cd, req, resp, &first, &len))
        return;
    if (cd.data)
        lh_response_body(resp, cd.data, cd.len, NULL);
    else
        lh_response_body(resp, e->data + first, (size_t)len, NULL);
}


/* Unchanged: the change time is compared too, since the size and the modification
 * time can be kept across an edit (cp -p) and the inode is kept by a rewrite in place. */
static bool same_file(const struct file_meta *a, const struct file_meta *b)
{
    return a->size == b->size && a->mtime == b->mtime && a->mtime_nsec == b->mtime_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec &&
           a->ino == b->ino && a->dev == b->dev;
}

/* A regular file: from the cache when it is small, else from fd. Takes ownership of
 * fd. `name` gives the Content-Type; `path` is the cache key. */
static void serve_file(const struct lh_static *s, struct lh_fcache *cache, const char *name,
                       const char *path, int fd, const struct stat *st,
                       const struct lh_request *req, struct lh_response *resp)
{
    struct file_meta m;
    meta_of(name, st, &m);
    if (s->dev && strncmp(m.type, "text/html", 9) == 0) {
        /* the page will carry the live-reload script (live.c): a tag of its own, so
         * that neither version is ever taken for the other */
        size_t n = strlen(m.etag);
        if (n >= 2 && n + 5 < sizeof m.etag)
            memcpy(m.etag + n - 1, "-live\"", 7);
    }
    if (cache && st->st_size <= CACHE_FILE_MAX) {
        bool hit;
        struct cached *e = cache_slot(cache, s->root_path, path, &hit);
        time_t now = time(NULL);
        if ((hit && same_file(&e->meta, &m)) || cache_fill(e, s->root_path, path, fd, &m, now)) {
            e->checked = now;
            close(fd);
            serve_cached(s, e, req, resp);
            return;
        }
    }
    int64_t first, len;
    struct coded cd;
    code_file(s, cache, &m, st, fd, req, &cd);
    if (answer_file(s, &m, &cd, req, resp, &first, &len) && !cd.data) {
        lh_response_file(resp, fd, first, len);
        return;
    }
    if (cd.data && resp->status == 200)
        lh_response_body(resp, cd.data, cd.len, NULL);
    close(fd);
}

/* 301 to the same path with a slash, the query kept. */
static void redirect_slash(const char *path, const char *query, size_t query_len,
                           struct lh_response *resp)
{
    char loc[LH_RESP_STORE / 2];
    size_t n = lh_url_escape_path(path, loc, sizeof loc - 2);
    if (n == (size_t)-1 || n + 2 + query_len >= sizeof loc) {
        lh_response_error(resp, 414);
        return;
    }
    loc[n++] = '/';
    if (query) {
        loc[n++] = '?';
        memcpy(loc + n, query, query_len);
        n += query_len;
    }
    loc[n] = '\0';
    lh_response_error(resp, 301);
    lh_response_header(resp, "Location", loc);
}

/* ---- directory listings ---------------------------------------------------- */

/*
 * Whether a request for the entry `name` of the listed directory (rel: its path from
 * the docroot) would be served, and then its type, size and time in *st. It is opened the
 * way a request opens it, so a link is shown only when it stays inside the docroot,
 * with what it leads to; a link leading out, a dangling link, a FIFO or a device is
 * left out, and nothing of what lies outside shows. Entries that are neither files,
 * directories nor links are not opened at all.
 */
static bool entry_served(const struct lh_static *s, int dirfd, const char *name,
                         const char *rel, struct stat *st)
{
    if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode) || S_ISLNK(st->st_mode)))
        return false;
    int fd = open_beneath(s, rel);
    if (fd < 0)
        return false;
    bool ok = fstat(fd, st) == 0 && (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode));
    close(fd);
    return ok;
}

/* Append to *v (n entries, room for *cap) the entry `name` with st's type, size and
 * modification time. Returns false when out of memory. */
static bool add_entry(struct lh_listing_entry **v, size_t n, size_t *cap, const char *name,
                      const struct stat *st)
{
    if (n == *cap) {
        size_t c = *cap ? *cap * 2 : 32;
        struct lh_listing_entry *nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
        *cap = c;
    }
    (*v)[n] = (struct lh_listing_entry){.name = strdup(name), .dir = S_ISDIR(st->st_mode),
                                        .size = st->st_size, .mtime = st->st_mtim.tv_sec};
    return (*v)[n].name != NULL;
}

/* Read the entries of dirfd, the directory at path (ending in '/'), that a request
 * would be served (dotfiles only when allowed). */
static struct lh_listing_entry *read_entries(const struct lh_static *s, const char *path,
                                             int dirfd, size_t *count)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct lh_listing_entry *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!s->dotfiles || !strcmp(de->d_name, ".") ||
                                     !strcmp(de->d_name, "..")))
            continue;
        if (strchr(de->d_name, '\\'))
            continue; /* no request can name it: path.c refuses backslashes */
        char rel[PATH_MAX];
        struct stat st;
        int len = snprintf(rel, sizeof rel, "%s%s", path + 1, de->d_name);
        if (len >= (int)sizeof rel || !entry_served(s, dirfd, de->d_name, rel, &st))
            continue;
        if (!add_entry(&v, n, &cap, de->d_name, &st))
            break;
        n++;
    }
    closedir(d);
    *count = n;
    return v;
}

static void serve_listing(const struct lh_static *s, const char *path, int dirfd,
                          struct lh_response *resp)
{
    size_t n = 0, len = 0;
    struct lh_listing_entry *v = read_entries(s, path, dirfd, &n);
    lh_listing_sort(v, n);
    char *page = lh_listing_page(path, v, n, &len);
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    if (!page) {
        lh_response_error(resp, 500);
        return;
    }
    lh_response_init(resp, 200);
    lh_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    lh_response_body(resp, page, len, page);
}

/* A directory asked for with its trailing slash: index, listing, or 403. */
static void serve_dir(const struct lh_static *s, struct lh_fcache *cache, const char *path,
                      int dirfd, const struct lh_request *req, struct lh_response *resp)
{
    char rel[PATH_MAX];
    int n = snprintf(rel, sizeof rel, "%s%s", path + 1, s->index);
    int fd = n < (int)sizeof rel ? open_beneath(s, rel) : -1;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        serve_file(s, cache, s->index, path, fd, &st, req, resp);
        return;
    }
    if (fd >= 0)
        close(fd);
    if (s->autoindex)
        serve_listing(s, path, dirfd, resp);
    else
        lh_response_error(resp, 403);
}

bool lh_static_serve(const struct lh_static *s, struct lh_fcache *cache, const char *path,
                     const char *query, size_t query_len, const struct lh_request *req,
                     struct lh_response *resp)
{
    if (!s->dotfiles && lh_path_has_dotfile(path))
        return false;
    if (cache && is_get_or_head(req)) {
        /* checked this second already: no system call at all */
        bool hit;
        struct cached *e = cache_slot(cache, s->root_path, path, &hit);
        if (hit && !s->dev && e->checked == time(NULL)) {
            serve_cached(s, e, req, resp);
            return true;
        }
    }
    if (known_missing(cache, s, path))
        return false;
    uint64_t epoch = miss_epoch(cache, s);
    int fd = open_beneath(s, path + 1);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            note_missing(cache, s, path, epoch);
        if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG)
            return false;
        lh_response_error(resp, err == EMFILE || err == ENFILE ? 503 : 403);
        return true;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        close(fd);
        lh_response_error(resp, 403);
        return true;
    }
    if (!is_get_or_head(req)) {
        close(fd);
        method_not_allowed(resp);
        return true;
    }
    if (S_ISREG(st.st_mode)) {
        serve_file(s, cache, path, path, fd, &st, req, resp);
        return true;
    }
    size_t len = strlen(path);
    if (path[len - 1] != '/')
        redirect_slash(path, query, query_len, resp);
    else
        serve_dir(s, cache, path, fd, req, resp);
    close(fd);
    return true;
}

bool lh_static_error_page(const struct lh_static *s, struct lh_fcache *cache, const char *path,
                          struct lh_response *resp)
{
    if (known_missing(cache, s, path))
        return false;
    uint64_t epoch = miss_epoch(cache, s);
    int fd = open_beneath(s, path + 1);
    if (fd < 0 && errno == ENOENT)
        note_missing(cache, s, path, epoch);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        lh_response_unset(resp, "Content-Type");
        lh_response_header(resp, "Content-Type", lh_mime_type(path));
        lh_response_file(resp, fd, 0, st.st_size);
        return true;
    }
    if (fd >= 0)
        close(fd);
    return false;
}

void lh_static_not_found(const struct lh_static *s, struct lh_fcache *cache,
                         struct lh_response *resp)
{
    lh_response_error(resp, 404);
    lh_static_error_page(s, cache, "/404.html", resp);
}
