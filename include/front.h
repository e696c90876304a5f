/* front.h - what a server in front of a browser app adds to the request path
 * (CONTRACT 8): CORS (preflights, and the Access-Control-* headers of every
 * response), the single-page-app fallback, error pages from the docroot, and JSON
 * error bodies for JSON clients. Three steps of the dispatch chain (dispatch.h), and
 * the pure helpers they are made of. */
#ifndef LH_FRONT_H
#define LH_FRONT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "dispatch.h"

#define LH_FRONT_PAGES (LH_ERROR_PAGE_MAX - LH_ERROR_PAGE_MIN + 1)

/* The settings of one configuration, as the request path uses them. Each process
 * has its own (it notes which missing files it has logged). */
struct lh_front {
    const struct lh_cors *cors;        /* the config's; NULL when cors = false */
    char *fallback;                    /* "/index.html", normalised; NULL: off */
    char *pages[LH_FRONT_PAGES];       /* error_pages by status - LH_ERROR_PAGE_MIN,
                                        * normalised ("/50x.html"); NULL: built-in */
    bool any_pages;                    /* some page is set */
    bool fallback_warned;              /* a fallback that could not be served was logged */
    bool warned[LH_FRONT_PAGES];       /* likewise for each error page */
};

/* Make f from c, which must outlive f (f points at c->cors). Returns 0, or -1 when
 * out of memory (f is then freed). */
int lh_front_init(struct lh_front *f, const struct lh_config *c);

/* Free what f owns and zero it. Safe on a zeroed struct. */
void lh_front_free(struct lh_front *f);

/* ---- steps of the chain (each returns an enum lh_step; ctx->front NULL: all off) ---- */

/* A CORS preflight (OPTIONS with Access-Control-Request-Method, cors on) is answered
 * here, before the before hooks and the routes: 204 with Access-Control-Allow-Methods,
 * -Headers and -Max-Age (lh_front_dress adds the origin's headers), or 403 for an
 * origin that is not listed. Declines every other request. */
enum lh_step lh_front_preflight(struct lh_ctx *ctx);

/* The single-page-app fallback, for a request nothing else answered: a GET or HEAD
 * whose Accept takes text/html, for a path whose last segment has no extension, gets
 * the fallback file as a static GET of it would be answered (200, 304, Range), with
 * Vary: Accept. Declines otherwise, and when the file cannot be served (logged once). */
enum lh_step lh_front_fallback(struct lh_ctx *ctx);

/* The last step, which every response goes through before the after hooks (and an
 * after hook's 500 once more): a built-in error page (resp->builtin) becomes JSON for
 * a JSON client, the --dev page for a Lua error seen from this machine, or the
 * configured error page; then the CORS headers are added, unless the response has an
 * Access-Control-Allow-Origin of its own. ctx->req may be NULL, for an error found
 * before a request was parsed: the error is HTML (the configured page or the
 * built-in one) and no Origin is echoed. Returns LH_ANSWERED. */
enum lh_step lh_front_dress(struct lh_ctx *ctx);

/* ---- pure helpers ------------------------------------------------------------------- */

/* What an Accept value (len bytes) says: the highest q, in thousandths (0..1000), of
 * a media range for JSON (application/json, application/NAME+json, or "application"
 * with the subtype "*") and of one for HTML (text/html, or "text" with the subtype
 * "*"); 0 for what it does not name. The range of any type counts for neither. A q
 * that is not a number counts as 1. */
struct lh_accept {
    int json;
    int html;
};
struct lh_accept lh_front_accept(const char *value, size_t len);

/* Does the client prefer JSON to HTML: a JSON range with a q above 0 and above every
 * HTML range's? */
bool lh_front_wants_json(const char *accept, size_t len);

/* Does the last segment of path have a file extension (a '.' that is neither its
 * first nor its last byte: "/app.js" yes; "/users/42", "/.well-known", "/a/" no)? */
bool lh_front_has_extension(const char *path);

/* Does the comma-separated list hold item (len bytes), compared without regard to
 * case, blanks around the items ignored? (Origins in cors.origins, tokens in Vary.) */
bool lh_front_list_has(const char *list, size_t list_len, const char *item, size_t len);

/* Is a Content-Type value JSON (application/json or application/NAME+json, any
 * parameters)? */
bool lh_front_is_json_type(const char *value, size_t len);

/* Write the JSON error body {"error":"<reason>","status":N[,"detail":"..."]
 * [,"traceback":"..."]} into out (outsz bytes, NUL-terminated when it fits); detail
 * and trace may be NULL. Bytes that are not UTF-8 become U+FFFD. Returns the length
 * of the body (without the NUL): when it is outsz or more, out holds nothing usable
 * and the caller writes again into a buffer of at least that plus one. */
size_t lh_front_json_error(char *out, size_t outsz, int status, const char *detail,
                           const char *trace);

#endif
