/* router.c - a segment trie of routes. See router.h.
 *
 * Each node stands for a path prefix. Its children are the exact segments that may
 * follow, plus at most one "capture" child for a ":name" segment (names belong to the
 * routes, so "/u/:id" and "/u/:name/x" share the node). Routes hang on the node where
 * their pattern ends, or, for a final "*", on the node before it. Matching walks the
 * path with backtracking in precedence order and allocates nothing. */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct route {
    char *method;
    char *pattern;
    int handler;
    size_t nnames;
    char *names[LH_ROUTE_MAX_PARAMS];  /* capture names in path order ("*" last) */
};

struct node {
    char *segment;                /* the exact segment leading here; NULL for captures */
    struct node **kids;           /* exact children */
    size_t nkids;
    struct node *capture;         /* the ":name" child */
    struct route **ends;          /* routes whose pattern ends here, declaration order */
    size_t nends;
    struct route **rests;         /* routes ending with "*" here */
    size_t nrests;
};

struct lh_router {
    struct node root;
    struct route **all;           /* every route, declaration order, for freeing */
    size_t count;
};

struct lh_router *lh_router_new(void)
{
    return calloc(1, sizeof(struct lh_router));
}

static void node_free(struct node *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        free(n->kids[i]);
    }
    if (n->capture) {
        node_free(n->capture);
        free(n->capture);
    }
    free(n->kids);
    free(n->ends);
    free(n->rests);
    free(n->segment);
}

static void route_free(struct route *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nnames; i++)
        free(r->names[i]);
    free(r->method);
    free(r->pattern);
    free(r);
}

void lh_router_free(struct lh_router *r)
{
    if (!r)
        return;
    node_free(&r->root);
    for (size_t i = 0; i < r->count; i++)
        route_free(r->all[i]);
    free(r->all);
    free(r);
}

size_t lh_router_count(const struct lh_router *r) { return r->count; }

/* The segment at p after any slashes; its length in *len (0 at the end). */
static const char *next_segment(const char *p, size_t *len)
{
    while (*p == '/')
        p++;
    const char *e = p;
    while (*e && *e != '/')
        e++;
    *len = (size_t)(e - p);
    return p;
}

/* ---- adding ---------------------------------------------------------------------------- */

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(*s >= 'A' && *s <= 'Z') && !(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9') &&
            !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static int push(void *arrp, size_t *n, void *item)
{
    void ***arr = arrp;
    void **p = realloc(*arr, (*n + 1) * sizeof *p);
    if (!p)
        return -1;
    p[(*n)++] = item;
    *arr = p;
    return 0;
}

static struct node *child(struct node *n, const char *seg, size_t len, bool capture)
{
    if (capture) {
        if (!n->capture)
            n->capture = calloc(1, sizeof *n->capture);
        return n->capture;
    }
    for (size_t i = 0; i < n->nkids; i++)
        if (strlen(n->kids[i]->segment) == len && memcmp(n->kids[i]->segment, seg, len) == 0)
            return n->kids[i];
    struct node *k = calloc(1, sizeof *k);
    if (!k || !(k->segment = strndup(seg, len)) || push(&n->kids, &n->nkids, k) < 0) {
        if (k)
            free(k->segment);
        free(k);
        return NULL;
    }
    return k;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

static bool name_taken(const struct route *rt, const char *name, size_t len)
{
    for (size_t i = 0; i < rt->nnames; i++)
        if (strlen(rt->names[i]) == len && memcmp(rt->names[i], name, len) == 0)
            return true;
    return false;
}

int lh_router_add(struct lh_router *r, const char *method, const char *pattern, int handler,
                  char *err, size_t errlen)
{
    if (strcmp(method, "*") != 0 && !is_token(method))
        return fail(err, errlen, "the method must be an HTTP method such as \"GET\", or \"*\"");
    if (pattern[0] != '/')
        return fail(err, errlen, "the pattern must start with '/'");
    struct route *rt = calloc(1, sizeof *rt);
    if (!rt || !(rt->method = strdup(method)) || !(rt->pattern = strdup(pattern)))
        goto oom;
    rt->handler = handler;
    struct node *n = &r->root;
    bool rest = false;
    for (const char *p = pattern; *p;) {
        size_t len;
        p = next_segment(p, &len);
        const char *e = p + len;
        if (len == 0)
            break;
        if (rest) {
            route_free(rt);
            return fail(err, errlen, "'*' must be the last segment");
        }
        if (memchr(p, '*', len) && len != 1) {
            route_free(rt);
            return fail(err, errlen, "'*' must stand alone in its segment");
        }
        bool capture = p[0] == ':';
        if (capture || (len == 1 && p[0] == '*')) {
            const char *name = capture ? p + 1 : "*";
            size_t nlen = capture ? len - 1 : 1;
            const char *why = capture && nlen == 0 ? "a ':' capture needs a name"
                              : name_taken(rt, name, nlen) ? "a capture name is used twice"
                              : rt->nnames == LH_ROUTE_MAX_PARAMS ? "too many captures"
                                                                  : NULL;
            if (why) {
                route_free(rt);
                return fail(err, errlen, why);
            }
            if (!(rt->names[rt->nnames] = strndup(name, nlen)))
                goto oom;
            rt->nnames++;
        }
        if (len == 1 && p[0] == '*')
            rest = true;
        else if (!(n = child(n, p, len, capture)))
            goto oom;
        p = e;
    }
    if (push(rest ? &n->rests : &n->ends, rest ? &n->nrests : &n->nends, rt) < 0 ||
        push(&r->all, &r->count, rt) < 0)
        goto oom; /* (a route pushed on a node but not on all leaks; only under OOM) */
    return 0;
oom:
    route_free(rt);
    return fail(err, errlen, "out of memory");
}

bool lh_router_has_method(const struct lh_router *r, const char *method, size_t len)
{
    if (len == 1 && method[0] == '*')
        return false; /* "*" routes take any method; they do not name the method "*" */
    for (size_t i = 0; i < r->count; i++)
        if (strlen(r->all[i]->method) == len && memcmp(r->all[i]->method, method, len) == 0)
            return true;
    return false;
}

/* ---- matching -------------------------------------------------------------------------- */

struct walk {
    const char *method;
    lh_route_visit visit;
    void *ud;
    bool matched;
    char *allow;
    size_t allowsz;
    size_t ncap;                      /* captured values so far, in path order */
    struct lh_param caps[LH_ROUTE_MAX_PARAMS];
};

static bool method_ok(const char *route, const char *method)
{
    return !method || strcmp(route, "*") == 0 || strcmp(route, method) == 0 ||
           (strcmp(route, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

static void allow_add(struct walk *w, const char *m)
{
    if (!w->allow || strcmp(m, "*") == 0)
        return;
    size_t have = strlen(w->allow), n = strlen(m);
    for (const char *p = w->allow; (p = strstr(p, m)); p += n)
        if ((p == w->allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return;
    if (have + n + 3 > w->allowsz)
        return;
    char *end = w->allow + have;
    if (have) {
        memcpy(end, ", ", 2);
        end += 2;
    }
    memcpy(end, m, n + 1);
}

/* Try each route of list with the captures so far (+ the rest, for "*" routes). */
static bool try_routes(struct walk *w, struct route **list, size_t n, const char *rest,
                       size_t rest_len)
{
    for (size_t i = 0; i < n; i++) {
        struct route *rt = list[i];
        w->matched = true;
        allow_add(w, rt->method);
        if (strcmp(rt->method, "GET") == 0)
            allow_add(w, "HEAD");
        if (!method_ok(rt->method, w->method))
            continue;
        struct lh_route_match m; /* params past nparams stay unset: 384 bytes a route */
        m.handler = rt->handler;
        m.method = rt->method;
        m.pattern = rt->pattern;
        m.nparams = rt->nnames;
        for (size_t k = 0; k < rt->nnames; k++) {
            bool is_rest = k == rt->nnames - 1 && rest;
            m.params[k].name = rt->names[k];
            m.params[k].value = is_rest ? rest : w->caps[k].value;
            m.params[k].value_len = is_rest ? rest_len : w->caps[k].value_len;
        }
        if (w->visit && w->visit(w->ud, &m))
            return true;
    }
    return false;
}

/* Match the rest of the path at p against node n. */
static bool walk(struct walk *w, const struct node *n, const char *p)
{
    size_t len;
    p = next_segment(p, &len);
    const char *e = p + len;
    if (len == 0)
        return try_routes(w, n->ends, n->nends, NULL, 0) ||
               try_routes(w, n->rests, n->nrests, p, 0);
    for (size_t i = 0; i < n->nkids; i++)
        if (strlen(n->kids[i]->segment) == len && memcmp(n->kids[i]->segment, p, len) == 0) {
            if (walk(w, n->kids[i], e))
                return true;
            break;
        }
    if (n->capture && w->ncap < LH_ROUTE_MAX_PARAMS) {
        w->caps[w->ncap++] = (struct lh_param){.value = p, .value_len = len};
        bool done = walk(w, n->capture, e);
        w->ncap--;
        if (done)
            return true;
    }
    /* "*" takes the rest: from this segment to the end, trailing slashes kept */
    return try_routes(w, n->rests, n->nrests, p, strlen(p));
}

bool lh_router_match(const struct lh_router *r, const char *method, const char *path,
                     lh_route_visit visit, void *ud, bool *path_matched, char *allow,
                     size_t allowsz)
{
    struct walk w = {.method = method, .visit = visit, .ud = ud, .allow = allow,
                     .allowsz = allowsz};
    if (allow && allowsz)
        allow[0] = '\0';
    bool done = walk(&w, &r->root, path);
    if (path_matched)
        *path_matched = w.matched;
    return done;
}
