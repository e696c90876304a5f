/* front.c - CORS, the single-page-app fallback, error pages and JSON errors. See
 * front.h.
 *
 * Cost when unused: with cors, fallback and error_pages off (ctx->front NULL or all
 * unset) the preflight and fallback steps are one test each, and dressing a
 * response is one test of resp->builtin; only a built-in error looks at Accept. */
#include "front.h"

#include "log.h"
#include "path.h"
#include "response.h"
#include "static.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Access-Control-Allow-Methods when cors.methods is not given: every method a page's
 * fetch() may use on an API. */
#define DEFAULT_METHODS "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

/* ---- pure helpers --------------------------------------------------------------------- */

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* s[0..*len) without blanks at either end; returns the new start. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && is_blank(s[0])) {
        s++;
        (*len)--;
    }
    while (*len > 0 && is_blank(s[*len - 1]))
        (*len)--;
    return s;
}

static bool equals(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && strncasecmp(s, lit, len) == 0;
}

static bool ends_with(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len >= n && strncasecmp(s + len - n, lit, n) == 0;
}

/* application/<name>+json (RFC 6839): application/problem+json, application/ld+json */
static bool suffixed_json(const char *type, size_t len)
{
    return len > 17 && strncasecmp(type, "application/", 12) == 0 && ends_with(type, len, "+json");
}

/* A qvalue (RFC 9110 12.4.2) in thousandths: "0.5" is 500; at most 1000. -1 when
 * v does not start with a digit. */
static int qvalue(const char *v, size_t len)
{
    if (len == 0 || v[0] < '0' || v[0] > '9')
        return -1;
    int q = (v[0] - '0') * 1000, scale = 100;
    if (len > 1 && v[1] == '.')
        for (size_t i = 2; i < len && i < 5 && v[i] >= '0' && v[i] <= '9'; i++, scale /= 10)
            q += (v[i] - '0') * scale;
    return q > 1000 ? 1000 : q;
}

/* The q of one element of an Accept list: its parameters after the media range. */
static int element_q(const char *params, size_t len)
{
    int q = 1000;
    while (len > 0) {
        const char *semi = memchr(params, ';', len);
        size_t n = semi ? (size_t)(semi - params) : len;
        size_t plen = n;
        const char *p = trim(params, &plen);
        if (plen >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            int v = qvalue(p + 2, plen - 2);
            q = v < 0 ? 1000 : v;
        }
        params += semi ? n + 1 : n;
        len -= semi ? n + 1 : n;
    }
    return q;
}

struct lh_accept lh_front_accept(const char *value, size_t len)
{
    struct lh_accept a = {0, 0};
    while (len > 0) {
        const char *comma = memchr(value, ',', len);
        size_t n = comma ? (size_t)(comma - value) : len;
        const char *semi = memchr(value, ';', n);
        size_t tlen = semi ? (size_t)(semi - value) : n;
        const char *type = trim(value, &tlen);
        int q = semi ? element_q(semi + 1, n - (size_t)(semi + 1 - value)) : 1000;
        if (equals(type, tlen, "application/json") || equals(type, tlen, "application/*") ||
            suffixed_json(type, tlen))
            a.json = q > a.json ? q : a.json;
        else if (equals(type, tlen, "text/html") || equals(type, tlen, "text/*"))
            a.html = q > a.html ? q : a.html;
        value += comma ? n + 1 : n;
        len -= comma ? n + 1 : n;
    }
    return a;
}

bool lh_front_wants_json(const char *accept, size_t len)
{
    struct lh_accept a = lh_front_accept(accept, len);
    return a.json > 0 && a.json > a.html;
}

bool lh_front_has_extension(const char *path)
{
    const char *seg = strrchr(path, '/');
    seg = seg ? seg + 1 : path;
    const char *dot = strrchr(seg, '.');
    return dot && dot > seg && dot[1] != '\0';
}

bool lh_front_list_has(const char *list, size_t list_len, const char *item, size_t len)
{
    while (list_len > 0) {
        const char *comma = memchr(list, ',', list_len);
        size_t n = comma ? (size_t)(comma - list) : list_len;
        size_t elen = n;
        const char *e = trim(list, &elen);
        if (elen == len && len > 0 && strncasecmp(e, item, len) == 0)
            return true;
        list += comma ? n + 1 : n;
        list_len -= comma ? n + 1 : n;
    }
    return false;
}

bool lh_front_is_json_type(const char *value, size_t len)
{
    const char *semi = memchr(value, ';', len);
    size_t n = semi ? (size_t)(semi - value) : len;
    const char *type = trim(value, &n);
    return equals(type, n, "application/json") || suffixed_json(type, n);
}

/* ---- the JSON error body ------------------------------------------------------------ */

struct out {
    char *p;
    size_t size, len;   /* len counts past size: the length the whole body needs */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->size)
        memcpy(o->p + o->len, s, n < o->size - o->len ? n : o->size - o->len);
    o->len += n;
}

/* The length of the UTF-8 sequence at s (at most n bytes), 0 when it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] > 0xf4 || len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* s as a JSON string, quotes included. */
static void put_string(struct out *o, const char *s)
{
    put(o, "\"", 1);
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c == '\n') {
            put(o, "\\n", 2);
        } else if (c == '\t') {
            put(o, "\\t", 2);
        } else if (c == '\r') {
            put(o, "\\r", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else if (c >= 0x80) {
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len == 0) {
                put(o, "\\ufffd", 6);
                i++;
                continue;
            }
            put(o, s + i, len);
            i += len;
            continue;
        } else {
            put(o, s + i, 1);
        }
        i++;
    }
    put(o, "\"", 1);
}

size_t lh_front_json_error(char *out, size_t outsz, int status, const char *detail,
                           const char *trace)
{
    struct out o = {.p = out, .size = outsz};
    char num[16];
    put(&o, "{\"error\":", 9);
    put_string(&o, lh_status_reason(status));
    put(&o, num, (size_t)snprintf(num, sizeof num, ",\"status\":%d", status));
    if (detail) {
        put(&o, ",\"detail\":", 10);
        put_string(&o, detail);
    }
    if (trace) {
        put(&o, ",\"traceback\":", 13);
        put_string(&o, trace);
    }
    put(&o, "}", 1);
    if (o.len < outsz)
        out[o.len] = '\0';
    return o.len;
}

/* ---- the settings --------------------------------------------------------------------- */

/* "/" + a docroot-relative name, normalised; NULL when out of memory or refused. */
static char *docroot_path(const char *name)
{
    size_t n = strlen(name);
    char *abs = malloc(n + 2), *out = malloc(n + 4);
    if (abs && out) {
        abs[0] = '/';
        memcpy(abs + 1, name, n + 1);
        if (lh_path_resolve(abs, n + 1, out, n + 4) == 0) {
            free(abs);
            return out;
        }
    }
    free(abs);
    free(out);
    return NULL;
}

int lh_front_init(struct lh_front *f, const struct lh_config *c)
{
    memset(f, 0, sizeof *f);
    f->cors = c->cors.enabled ? &c->cors : NULL;
    if (c->fallback && !(f->fallback = docroot_path(c->fallback)))
        goto fail;
    for (int i = 0; i < LH_FRONT_PAGES; i++) {
        if (!c->error_pages[i])
            continue;
        if (!(f->pages[i] = docroot_path(c->error_pages[i])))
            goto fail;
        f->any_pages = true;
    }
    return 0;
fail:
    lh_front_free(f);
    return -1;
}

void lh_front_free(struct lh_front *f)
{
    free(f->fallback);
    for (int i = 0; i < LH_FRONT_PAGES; i++)
        free(f->pages[i]);
    memset(f, 0, sizeof *f);
}

/* ---- the steps ------------------------------------------------------------------------ */

static bool is_method(const struct lh_request *req, const char *m)
{
    return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

/* A request header's value (len in *len), or NULL; NULL too when no request was
 * parsed (req NULL: an error lh_send_error answers before one was). */
static const char *header(const struct lh_request *req, const char *name, size_t *len)
{
    const struct lh_header *h = req ? lh_http_header(req, name) : NULL;
    *len = h ? h->value_len : 0;
    return h ? h->value : NULL;
}

/* Is the request's Origin (NULL: none) one of cors.origins? */
static bool origin_listed(const struct lh_cors *cors, const char *origin, size_t len)
{
    return origin && lh_front_list_has(cors->origins, strlen(cors->origins), origin, len);
}

/*
 * A preflight for an origin that is not listed is refused with a 403 and no
 * Access-Control-* header. The browser fails the call either way; a 403, unlike a 204
 * without the headers, says why in the browser's network panel and in the access log.
 */
enum lh_step lh_front_preflight(struct lh_ctx *ctx)
{
    const struct lh_front *f = ctx->front;
    const struct lh_request *req = ctx->req;
    size_t olen, hlen;
    if (!f || !f->cors || !is_method(req, "OPTIONS") ||
        !lh_http_header(req, "access-control-request-method"))
        return LH_DECLINED;
    const struct lh_cors *cors = f->cors;
    const char *origin = header(req, "origin", &olen);
    if (cors->origins && !origin_listed(cors, origin, olen)) {
        lh_response_error(ctx->resp, 403);
        return LH_ANSWERED;
    }
    struct lh_response *resp = ctx->resp;
    lh_response_init(resp, 204);
    const char *methods = cors->methods ? cors->methods : DEFAULT_METHODS;
    if (*methods)
        lh_response_header(resp, "Access-Control-Allow-Methods", methods);
    const char *asked = header(req, "access-control-request-headers", &hlen);
    if (cors->headers && *cors->headers)
        lh_response_header(resp, "Access-Control-Allow-Headers", cors->headers);
    else if (!cors->headers && asked && hlen > 0)
        lh_response_add(resp, "Access-Control-Allow-Headers", 28, asked, hlen);
    else if (!cors->headers) /* nothing asked: the field still goes out (CONTRACT 8) */
        lh_response_header(resp, "Access-Control-Allow-Headers",
                           cors->credentials ? "Content-Type" : "*");
    char age[24];
    snprintf(age, sizeof age, "%ld", cors->max_age);
    lh_response_header(resp, "Access-Control-Max-Age", age);
    return LH_ANSWERED;
}

/* Log once per configuration and process that a configured file cannot be served. */
static void warn_once(bool *warned, const char *what, const char *path)
{
    if (*warned)
        return;
    *warned = true;
    lh_log_error("warn", "%s: docroot%s cannot be served (missing, not a regular file or "
                 "unreadable): the built-in answer is sent instead", what, path);
}

enum lh_step lh_front_fallback(struct lh_ctx *ctx)
{
    struct lh_front *f = ctx->front;
    const struct lh_request *req = ctx->req;
    if (!f || !f->fallback || !(is_method(req, "GET") || is_method(req, "HEAD")) ||
        lh_front_has_extension(ctx->path))
        return LH_DECLINED;
    size_t alen;
    const char *accept = header(req, "accept", &alen);
    if (!accept || lh_front_accept(accept, alen).html <= 0)
        return LH_DECLINED;
    struct lh_response *resp = ctx->resp;
    if (lh_static_serve(ctx->st, ctx->fcache, f->fallback, NULL, 0, req, resp)) {
        /* the file itself (200, 206, 304, 416), not a refusal or a redirect */
        if (resp->status < 300 || resp->status == 304 || resp->status == 416) {
            lh_response_header(resp, "Vary", "Accept");
            return LH_ANSWERED;
        }
        lh_response_free(resp);
        lh_response_init(resp, 200);
    }
    warn_once(&f->fallback_warned, "fallback", f->fallback);
    return LH_DECLINED;
}

/* Is the client one for JSON? The route that ran answers JSON; or its Accept prefers
 * JSON to HTML; or it sent a JSON body and its Accept does not name HTML (fetch() with
 * a JSON body accepts any type unless told otherwise). */
static bool json_client(const struct lh_ctx *ctx)
{
    if (ctx->json_route)
        return true;
    if (!ctx->req)
        return false; /* nothing was parsed that could ask for JSON */
    size_t alen, tlen;
    const char *accept = header(ctx->req, "accept", &alen);
    struct lh_accept a = accept ? lh_front_accept(accept, alen) : (struct lh_accept){0, 0};
    if (a.json > 0 && a.json > a.html)
        return true;
    bool has_body = ctx->req->content_length > 0 || ctx->req->chunked;
    const char *type = has_body && !a.html ? header(ctx->req, "content-type", &tlen) : NULL;
    return type && lh_front_is_json_type(type, tlen);
}

/* The built-in error in resp as JSON, with the detail of the failure it reports. */
static void json_body(struct lh_ctx *ctx)
{
    struct lh_response *resp = ctx->resp;
    bool explained = ctx->err_status == resp->status;
    const char *detail = explained ? ctx->err_detail : NULL;
    const char *trace = explained ? ctx->err_trace : NULL;
    size_t n = lh_front_json_error(resp->page, sizeof resp->page, resp->status, detail, trace);
    char *body = resp->page, *owned = NULL;
    if (n >= sizeof resp->page) {
        if (!(owned = malloc(n + 1)))
            return; /* the HTML page stays */
        lh_front_json_error(owned, n + 1, resp->status, detail, trace);
        body = owned;
    }
    lh_response_unset(resp, "Content-Type");
    lh_response_header(resp, "Content-Type", "application/json");
    lh_response_body(resp, body, n, owned);
}

/* A built-in error gets the body its client is best served by. */
static void dress_error(struct lh_ctx *ctx)
{
    struct lh_response *resp = ctx->resp;
    struct lh_front *f = ctx->front;
    resp->builtin = false; /* dressed once */
    if (json_client(ctx)) {
        json_body(ctx);
    } else if (resp->status == 500 && ctx->dev_error && ctx->dev_loopback) {
        /* --dev, asked from this machine: show what went wrong */
        lh_response_body(resp, ctx->dev_error, strlen(ctx->dev_error), ctx->dev_error);
        ctx->dev_error = NULL;
    } else if (f && f->any_pages && resp->status >= LH_ERROR_PAGE_MIN &&
               resp->status <= LH_ERROR_PAGE_MAX) {
        int i = resp->status - LH_ERROR_PAGE_MIN;
        if (f->pages[i] && !lh_static_error_page(ctx->st, ctx->fcache, f->pages[i], resp)) {
            char what[32];
            snprintf(what, sizeof what, "error_pages[%d]", resp->status);
            warn_once(&f->warned[i], what, f->pages[i]);
        }
    }
}

/* Does some Vary header of resp name Origin already? */
static bool varies_by_origin(const struct lh_response *resp)
{
    for (uint32_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(lh_response_name(resp, i), "Vary") == 0 &&
            lh_front_list_has(lh_response_value(resp, i), lh_response_at(resp, i)->value_len,
                              "Origin", 6))
            return true;
    return false;
}

/* The CORS headers of a response: with cors = true (no origins listed) "*" for every
 * response; with origins listed the request's Origin when it is one of them (and
 * credentials if allowed), and Vary: Origin on every response, since the answer
 * depends on it. */
static void add_cors(struct lh_ctx *ctx)
{
    const struct lh_cors *cors = ctx->front->cors;
    struct lh_response *resp = ctx->resp;
    if (lh_response_get(resp, "Access-Control-Allow-Origin"))
        return; /* a handler's own */
    if (!cors->origins) {
        lh_response_header(resp, "Access-Control-Allow-Origin", "*");
        return;
    }
    if (!varies_by_origin(resp))
        lh_response_header(resp, "Vary", "Origin");
    size_t olen;
    const char *origin = header(ctx->req, "origin", &olen);
    if (!origin_listed(cors, origin, olen))
        return;
    lh_response_add(resp, "Access-Control-Allow-Origin", 27, origin, olen);
    if (cors->credentials)
        lh_response_header(resp, "Access-Control-Allow-Credentials", "true");
}

enum lh_step lh_front_dress(struct lh_ctx *ctx)
{
    if (ctx->resp->builtin)
        dress_error(ctx);
    if (ctx->front && ctx->front->cors)
        add_cors(ctx);
    return LH_ANSWERED;
}
