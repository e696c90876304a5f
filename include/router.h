/* router.h - the route table: (method, pattern) -> handler id; match or decline.
 * A segment trie, so matching costs the depth of the path, not the number of routes. */
#ifndef LH_ROUTER_H
#define LH_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#define LH_ROUTE_MAX_PARAMS 16

struct lh_router;

struct lh_param {
    const char *name;     /* NUL-terminated, owned by the router ("*" for the rest) */
    const char *value;    /* points into the path given to lh_router_match */
    size_t value_len;
};

struct lh_route_match {
    int handler;          /* the id given to lh_router_add */
    const char *method;   /* the route's method as declared ("GET", "*") */
    const char *pattern;  /* the route's pattern as declared */
    size_t nparams;
    struct lh_param params[LH_ROUTE_MAX_PARAMS];
};

/* Create an empty table; NULL when out of memory. */
struct lh_router *lh_router_new(void);
void lh_router_free(struct lh_router *r);

/*
 * Add a route. method is an HTTP method token ("GET") or "*" for any. pattern starts
 * with '/'; a segment ":name" captures one segment; a final segment "*" captures the
 * rest of the path (possibly empty) under the name "*". Empty segments are ignored in
 * patterns and paths alike ("/a//b/" is "/a/b"). handler is any id of the caller's.
 * Returns 0, or -1 with a message in err: a pattern not starting with '/', a '*' that
 * is not the last segment or not alone in it, an empty ":" name, a name used twice,
 * more than LH_ROUTE_MAX_PARAMS captures, an empty or non-token method.
 */
int lh_router_add(struct lh_router *r, const char *method, const char *pattern, int handler,
                  char *err, size_t errlen);

/* Called for each matching route in precedence order; return true to stop. */
typedef bool (*lh_route_visit)(void *ud, const struct lh_route_match *m);

/*
 * Visit every route whose pattern matches path (a decoded, normalised path) and whose
 * method is `method` ("*" routes match any method; "GET" routes also match "HEAD";
 * a NULL method: every route whose pattern matches, whatever its method),
 * in precedence order: at each segment an exact segment beats a ":name" capture,
 * which beats a final "*"; among routes with the same pattern shape, declaration
 * order. Returns true if a visit returned true.
 *
 * *path_matched (if not NULL) is set to whether any route's pattern matched path,
 * whatever its method. allow (if not NULL) receives the methods of the routes whose
 * pattern matched, as an Allow header value in the order they were tried, without repeats
 * ("GET, HEAD, POST"; "GET" routes add "HEAD" too), NUL-terminated, cut to allowsz.
 */
bool lh_router_match(const struct lh_router *r, const char *method, const char *path,
                     lh_route_visit visit, void *ud, bool *path_matched, char *allow,
                     size_t allowsz);

/* Does some route declare exactly this method? (A method neither standard nor named
 * by a route gets 501.) */
bool lh_router_has_method(const struct lh_router *r, const char *method, size_t len);

/* Number of routes added. */
size_t lh_router_count(const struct lh_router *r);

#endif
