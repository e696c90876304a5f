/* test_front.c - front.c: Accept preferences, extensions, lists of origins, JSON
 * types, the JSON error body; and its steps on parsed requests (preflight, the CORS
 * headers, error bodies, the fallback) against a docroot in a fresh folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "front.h"
#include "http.h"
#include "response.h"
#include "static.h"

/* ---- pure helpers ---------------------------------------------------------------- */

static struct lh_accept accept_of(const char *v) { return lh_front_accept(v, strlen(v)); }

static bool wants_json(const char *v) { return lh_front_wants_json(v, strlen(v)); }

static void test_accept_q_values(void **state)
{
    (void)state;
    struct lh_accept a = accept_of("");
    assert_int_equal(a.json, 0);
    assert_int_equal(a.html, 0);
    a = accept_of("application/json");
    assert_int_equal(a.json, 1000);
    assert_int_equal(a.html, 0);
    /* what a browser sends for a page: HTML, and no JSON (the other ranges are neither) */
    a = accept_of("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,*/*;q=0.8");
    assert_int_equal(a.html, 1000);
    assert_int_equal(a.json, 0);
    a = accept_of("text/html;q=0.5, application/json;q=0.9");
    assert_int_equal(a.json, 900);
    assert_int_equal(a.html, 500);
    a = accept_of("application/json; charset=utf-8; q=0.25, text/*;q=0.3");
    assert_int_equal(a.json, 250);
    assert_int_equal(a.html, 300);
    a = accept_of("application/json ; Q=0.7");
    assert_int_equal(a.json, 700);
    a = accept_of("application/json;q=0.123456");   /* three decimals count */
    assert_int_equal(a.json, 123);
    a = accept_of("application/json;q=1.5");         /* at most 1 */
    assert_int_equal(a.json, 1000);
    a = accept_of("application/json;q=abc");         /* not a number: as if absent */
    assert_int_equal(a.json, 1000);
    a = accept_of("application/json;q=0.2, application/json;q=0.6"); /* the highest */
    assert_int_equal(a.json, 600);
    a = accept_of("  APPLICATION/JSON  ,TEXT/HTML;q=0.1");
    assert_int_equal(a.json, 1000);
    assert_int_equal(a.html, 100);
    a = accept_of("application/problem+json, application/*;q=0.4");
    assert_int_equal(a.json, 1000);
    a = accept_of("application/*;q=0.4");
    assert_int_equal(a.json, 400);
    a = accept_of("application/jsonp, text/htmlx, application/+json, */*");
    assert_int_equal(a.json, 0);
    assert_int_equal(a.html, 0);
    a = accept_of(",,;q=0.5,text/html");
    assert_int_equal(a.html, 1000);
}

static void test_wants_json(void **state)
{
    (void)state;
    assert_true(wants_json("application/json"));
    assert_true(wants_json("application/json, text/plain, */*"));   /* axios */
    assert_true(wants_json("text/html;q=0.5, application/json;q=0.9"));
    assert_true(wants_json("application/*"));
    assert_true(wants_json("application/ld+json"));
    assert_false(wants_json(""));
    assert_false(wants_json("*/*"));                                  /* fetch() */
    assert_false(wants_json("text/html, application/json"));          /* a tie: HTML */
    assert_false(wants_json("application/json;q=0.5, text/html"));
    assert_false(wants_json("application/json;q=0"));
    assert_false(wants_json("application/json;q=0.8, text/*"));
    assert_false(wants_json("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
}

static void test_has_extension(void **state)
{
    (void)state;
    assert_true(lh_front_has_extension("/app.js"));
    assert_true(lh_front_has_extension("/assets/app.min.css"));
    assert_true(lh_front_has_extension("/dist/file.tar.gz"));
    assert_true(lh_front_has_extension("/favicon.ico"));
    assert_false(lh_front_has_extension("/"));
    assert_false(lh_front_has_extension("/users/42"));
    assert_false(lh_front_has_extension("/users/42/"));
    assert_false(lh_front_has_extension("/v1.2/"));        /* the last segment is empty */
    assert_false(lh_front_has_extension("/a.b/c"));
    assert_false(lh_front_has_extension("/.well-known"));  /* a leading dot only */
    assert_false(lh_front_has_extension("/name."));        /* a trailing dot only */
}

static bool list_has(const char *list, const char *item)
{
    return lh_front_list_has(list, strlen(list), item, strlen(item));
}

static void test_list_has(void **state)
{
    (void)state;
    const char *origins = "https://a.example, http://b.example:8080";
    assert_true(list_has(origins, "https://a.example"));
    assert_true(list_has(origins, "http://b.example:8080"));
    assert_true(list_has(origins, "HTTPS://A.EXAMPLE"));   /* scheme and host: any case */
    assert_false(list_has(origins, "https://a.exampl"));
    assert_false(list_has(origins, "https://a.example.evil"));
    assert_false(list_has(origins, "http://b.example"));
    assert_false(list_has(origins, "https://a.example, http://b.example:8080"));
    assert_false(list_has(origins, ""));
    assert_false(list_has("", "https://a.example"));
    assert_true(list_has("Accept-Encoding,origin", "Origin"));
    assert_true(list_has(" Origin ", "Origin"));
    assert_false(list_has("Accept", "Origin"));
}

static bool json_type(const char *v) { return lh_front_is_json_type(v, strlen(v)); }

static void test_is_json_type(void **state)
{
    (void)state;
    assert_true(json_type("application/json"));
    assert_true(json_type("application/json; charset=utf-8"));
    assert_true(json_type("Application/JSON"));
    assert_true(json_type("application/problem+json"));
    assert_false(json_type("text/html; charset=utf-8"));
    assert_false(json_type("application/jsonp"));
    assert_false(json_type("text/json+html"));
    assert_false(json_type(""));
}

static void test_json_error_body(void **state)
{
    (void)state;
    char out[512];
    size_t n = lh_front_json_error(out, sizeof out, 404, NULL, NULL);
    assert_string_equal(out, "{\"error\":\"Not Found\",\"status\":404}");
    assert_int_equal(n, strlen(out));
    n = lh_front_json_error(out, sizeof out, 400, "bad \"x\"\\y", NULL);
    assert_string_equal(out, "{\"error\":\"Bad Request\",\"status\":400,"
                             "\"detail\":\"bad \\\"x\\\"\\\\y\"}");
    lh_front_json_error(out, sizeof out, 500, "a.lua:3: boom",
                        "stack traceback:\n\t[C]: in ?\r\x01");
    assert_string_equal(out, "{\"error\":\"Internal Server Error\",\"status\":500,"
                             "\"detail\":\"a.lua:3: boom\",\"traceback\":"
                             "\"stack traceback:\\n\\t[C]: in ?\\r\\u0001\"}");
    /* UTF-8 kept; a byte that is not UTF-8 (alone, overlong, a surrogate) is U+FFFD */
    lh_front_json_error(out, sizeof out, 500, "caf\xc3\xa9 \xff \xc0\x80 \xed\xa0\x80 "
                        "\xf0\x9f\x98\x80 \xe2\x82", NULL);
    assert_string_equal(out, "{\"error\":\"Internal Server Error\",\"status\":500,\"detail\":"
                             "\"caf\xc3\xa9 \\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd "
                             "\xf0\x9f\x98\x80 \\ufffd\\ufffd\"}");
    /* too small: the length it needs, as snprintf does */
    char small[10];
    n = lh_front_json_error(small, sizeof small, 404, "0123456789", NULL);
    assert_int_equal(n, strlen("{\"error\":\"Not Found\",\"status\":404,\"detail\":\"0123456789\"}"));
    char *big = malloc(n + 1);
    assert_int_equal(lh_front_json_error(big, n + 1, 404, "0123456789", NULL), n);
    assert_string_equal(big, "{\"error\":\"Not Found\",\"status\":404,\"detail\":\"0123456789\"}");
    free(big);
}

static void test_init_normalises_paths(void **state)
{
    (void)state;
    struct lh_config c = {0};
    struct lh_front f;
    assert_int_equal(lh_front_init(&f, &c), 0);
    assert_null(f.cors);
    assert_null(f.fallback);
    assert_false(f.any_pages);
    lh_front_free(&f);

    char fb[] = "app/./index.html", page[] = "errors//404.html";
    c.cors.enabled = true;
    c.fallback = fb;
    c.error_pages[404 - LH_ERROR_PAGE_MIN] = page;
    assert_int_equal(lh_front_init(&f, &c), 0);
    assert_ptr_equal(f.cors, &c.cors);
    assert_string_equal(f.fallback, "/app/index.html");
    assert_true(f.any_pages);
    assert_string_equal(f.pages[404 - LH_ERROR_PAGE_MIN], "/errors/404.html");
    assert_null(f.pages[500 - LH_ERROR_PAGE_MIN]);
    lh_front_free(&f);
    assert_null(f.fallback);
    lh_front_free(&f); /* safe when zeroed */
}

/* ---- the steps on parsed requests ------------------------------------------------ */

struct fx {
    char dir[64];              /* the docroot */
    char raw[2048];
    char pathbuf[256];
    struct lh_request req;
    struct lh_response resp;
    struct lh_config cfg;
    struct lh_front front;
    struct lh_static st;
    struct lh_ctx ctx;
};

static void put_file(struct fx *f, const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/lhfront.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    put_file(f, "index.html", "<h1>app</h1>\n");
    put_file(f, "nf.txt", "not here\n");
    f->st = (struct lh_static){.root_fd = lh_static_open_root(f->dir), .root_path = f->dir,
                               .index = "index.html"};
    assert_true(f->st.root_fd >= 0);
    lh_response_init(&f->resp, 200);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lh_response_free(&f->resp);
    lh_front_free(&f->front);
    free(f->ctx.dev_error);
    close(f->st.root_fd);
    char p[256];
    snprintf(p, sizeof p, "%s/index.html", f->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/nf.txt", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Settings from the fields of f->cfg the test has set. */
static void configure(struct fx *f)
{
    lh_front_free(&f->front);
    assert_int_equal(lh_front_init(&f->front, &f->cfg), 0);
}

/* Parse "METHOD target" with the headers (each "Name: value\r\n") into f->ctx, path
 * as given (the targets here need no decoding), the response emptied. */
static void request(struct fx *f, const char *line, const char *headers)
{
    snprintf(f->raw, sizeof f->raw, "%s HTTP/1.1\r\nHost: t\r\n%s\r\n", line, headers);
    size_t scanned = 0;
    assert_true(lh_http_parse_head(f->raw, strlen(f->raw), &scanned, 8192, &f->req) > 0);
    snprintf(f->pathbuf, sizeof f->pathbuf, "%.*s", (int)f->req.target_len, f->req.target);
    lh_response_free(&f->resp);
    lh_response_init(&f->resp, 200);
    free(f->ctx.dev_error);
    f->ctx = (struct lh_ctx){.req = &f->req, .resp = &f->resp, .st = &f->st,
                             .front = &f->front, .path = f->pathbuf};
}

static const char *hdr(struct fx *f, const char *name) { return lh_response_get(&f->resp, name); }

/* How many header lines named name. */
static int count(struct fx *f, const char *name)
{
    int n = 0;
    for (uint32_t i = 0; i < f->resp.nheaders; i++)
        n += strcasecmp(lh_response_name(&f->resp, i), name) == 0;
    return n;
}

/* The body of f->resp (memory or file) as a string. */
static const char *body(struct fx *f)
{
    static char buf[1024];
    size_t n = 0;
    if (f->resp.body_kind == LH_BODY_MEM) {
        n = f->resp.body_len < sizeof buf - 1 ? f->resp.body_len : sizeof buf - 1;
        memcpy(buf, f->resp.body, n);
    } else if (f->resp.body_kind == LH_BODY_FILE) {
        ssize_t r = pread(f->resp.fd, buf, sizeof buf - 1, f->resp.file_off);
        n = r > 0 ? (size_t)r : 0;
    }
    buf[n] = '\0';
    return buf;
}

static void test_preflight(void **state)
{
    struct fx *f = *state;
    /* cors off: declined */
    configure(f);
    request(f, "OPTIONS /api", "Origin: https://a.example\r\nAccess-Control-Request-Method: PUT\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_DECLINED);

    /* cors = true: 204, the default methods, the asked headers echoed, any origin */
    f->cfg.cors = (struct lh_cors){.enabled = true, .max_age = 600};
    configure(f);
    request(f, "OPTIONS /api", "Origin: https://a.example\r\nAccess-Control-Request-Method: PUT\r\n"
                               "Access-Control-Request-Headers: content-type, x-token\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_ANSWERED);
    lh_front_dress(&f->ctx);
    assert_int_equal(f->resp.status, 204);
    assert_string_equal(hdr(f, "Access-Control-Allow-Methods"),
                        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    assert_string_equal(hdr(f, "Access-Control-Allow-Headers"), "content-type, x-token");
    assert_string_equal(hdr(f, "Access-Control-Max-Age"), "600");
    assert_string_equal(hdr(f, "Access-Control-Allow-Origin"), "*");
    assert_null(hdr(f, "Access-Control-Allow-Credentials"));
    assert_null(hdr(f, "Vary"));
    /* not a preflight: an OPTIONS without Access-Control-Request-Method, a GET */
    request(f, "OPTIONS /api", "Origin: https://a.example\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_DECLINED);
    request(f, "GET /api", "Access-Control-Request-Method: PUT\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_DECLINED);

    /* origins listed: the origin echoed, credentials, Vary; configured lists */
    char origins[] = "https://a.example, https://b.example", methods[] = "GET, PUT",
         headers[] = "Content-Type";
    f->cfg.cors = (struct lh_cors){.enabled = true, .origins = origins, .methods = methods,
                                   .headers = headers, .credentials = true, .max_age = 5};
    configure(f);
    request(f, "OPTIONS /api", "Origin: https://b.example\r\nAccess-Control-Request-Method: PUT\r\n"
                               "Access-Control-Request-Headers: x-other\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_ANSWERED);
    lh_front_dress(&f->ctx);
    assert_int_equal(f->resp.status, 204);
    assert_string_equal(hdr(f, "Access-Control-Allow-Origin"), "https://b.example");
    assert_string_equal(hdr(f, "Access-Control-Allow-Credentials"), "true");
    assert_string_equal(hdr(f, "Access-Control-Allow-Methods"), "GET, PUT");
    assert_string_equal(hdr(f, "Access-Control-Allow-Headers"), "Content-Type");
    assert_string_equal(hdr(f, "Access-Control-Max-Age"), "5");
    assert_string_equal(hdr(f, "Vary"), "Origin");
    /* an origin not listed, or none: 403, no Access-Control-* header */
    request(f, "OPTIONS /api", "Origin: https://evil.example\r\n"
                               "Access-Control-Request-Method: PUT\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_ANSWERED);
    lh_front_dress(&f->ctx);
    assert_int_equal(f->resp.status, 403);
    for (uint32_t i = 0; i < f->resp.nheaders; i++)
        assert_null(strstr(lh_response_name(&f->resp, i), "Access-Control"));
    assert_string_equal(hdr(f, "Vary"), "Origin");
    request(f, "OPTIONS /api", "Access-Control-Request-Method: PUT\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_ANSWERED);
    assert_int_equal(f->resp.status, 403);

    /* empty lists: no Allow-Methods, no Allow-Headers (not even the echo) */
    char empty[] = "";
    f->cfg.cors = (struct lh_cors){.enabled = true, .methods = empty, .headers = empty};
    configure(f);
    request(f, "OPTIONS /api", "Access-Control-Request-Method: PUT\r\n"
                               "Access-Control-Request-Headers: x-other\r\n");
    assert_int_equal(lh_front_preflight(&f->ctx), LH_ANSWERED);
    assert_null(hdr(f, "Access-Control-Allow-Methods"));
    assert_null(hdr(f, "Access-Control-Allow-Headers"));
}

static void test_cors_headers(void **state)
{
    struct fx *f = *state;
    char origins[] = "https://a.example";
    f->cfg.cors = (struct lh_cors){.enabled = true, .origins = origins};
    configure(f);
    /* a listed origin: echoed, no credentials unless configured */
    request(f, "GET /x", "Origin: https://a.example\r\n");
    lh_response_header(&f->resp, "Vary", "Accept-Encoding");
    lh_front_dress(&f->ctx);
    assert_string_equal(hdr(f, "Access-Control-Allow-Origin"), "https://a.example");
    assert_null(hdr(f, "Access-Control-Allow-Credentials"));
    assert_int_equal(count(f, "Vary"), 2);
    /* dressing twice adds nothing */
    lh_front_dress(&f->ctx);
    assert_int_equal(count(f, "Vary"), 2);
    assert_int_equal(count(f, "Access-Control-Allow-Origin"), 1);
    /* another origin: Vary only */
    request(f, "GET /x", "Origin: https://b.example\r\n");
    lh_front_dress(&f->ctx);
    assert_null(hdr(f, "Access-Control-Allow-Origin"));
    assert_string_equal(hdr(f, "Vary"), "Origin");
    /* a Vary that names Origin already is not repeated */
    request(f, "GET /x", "Origin: https://a.example\r\n");
    lh_response_header(&f->resp, "Vary", "accept, origin");
    lh_front_dress(&f->ctx);
    assert_int_equal(count(f, "Vary"), 1);
    /* a handler's own Access-Control-Allow-Origin wins, and nothing is added */
    request(f, "GET /x", "Origin: https://a.example\r\n");
    lh_response_header(&f->resp, "access-control-allow-origin", "https://mine.example");
    lh_front_dress(&f->ctx);
    assert_int_equal(count(f, "Access-Control-Allow-Origin"), 1);
    assert_string_equal(hdr(f, "Access-Control-Allow-Origin"), "https://mine.example");
    assert_null(hdr(f, "Vary"));
    /* cors = true: * on every response, with an Origin or without, errors too */
    f->cfg.cors = (struct lh_cors){.enabled = true};
    configure(f);
    request(f, "GET /x", "");
    lh_response_error(&f->resp, 404);
    lh_front_dress(&f->ctx);
    assert_string_equal(hdr(f, "Access-Control-Allow-Origin"), "*");
    assert_null(hdr(f, "Vary"));
    /* no front at all: nothing */
    request(f, "GET /x", "Origin: https://a.example\r\n");
    f->ctx.front = NULL;
    lh_front_dress(&f->ctx);
    assert_int_equal(f->resp.nheaders, 0);
}

static void test_error_bodies(void **state)
{
    struct fx *f = *state;
    char page[] = "nf.txt", missing[] = "gone.html";
    f->cfg.error_pages[404 - LH_ERROR_PAGE_MIN] = page;
    f->cfg.error_pages[405 - LH_ERROR_PAGE_MIN] = page;
    f->cfg.error_pages[500 - LH_ERROR_PAGE_MIN] = missing;
    configure(f);

    /* a JSON client: JSON, whatever error_pages says; other headers stay */
    request(f, "DELETE /x", "Accept: application/json\r\n");
    lh_response_error(&f->resp, 405);
    lh_response_header(&f->resp, "Allow", "GET, HEAD");
    f->resp.no_body = true;
    lh_front_dress(&f->ctx);
    assert_string_equal(body(f), "{\"error\":\"Method Not Allowed\",\"status\":405}");
    assert_string_equal(hdr(f, "Content-Type"), "application/json");
    assert_string_equal(hdr(f, "Allow"), "GET, HEAD");
    assert_true(f->resp.no_body);
    assert_false(f->resp.builtin);
    /* a browser: the configured page, its type, the status kept */
    request(f, "GET /x", "Accept: text/html\r\n");
    lh_response_error(&f->resp, 404);
    lh_front_dress(&f->ctx);
    assert_int_equal(f->resp.status, 404);
    assert_string_equal(body(f), "not here\n");
    assert_string_equal(hdr(f, "Content-Type"), "text/plain; charset=utf-8");
    assert_int_equal(count(f, "Content-Type"), 1);
    /* a page that cannot be served: the built-in one */
    request(f, "GET /x", "");
    lh_response_error(&f->resp, 500);
    lh_front_dress(&f->ctx);
    assert_non_null(strstr(body(f), "500 Internal Server Error"));
    assert_true(f->front.warned[500 - LH_ERROR_PAGE_MIN]);
    /* no page for the status: the built-in one */
    request(f, "GET /x", "");
    lh_response_error(&f->resp, 403);
    lh_front_dress(&f->ctx);
    assert_non_null(strstr(body(f), "403 Forbidden"));
    /* a handler's own error body is left alone */
    request(f, "GET /x", "Accept: application/json\r\n");
    lh_response_init(&f->resp, 404);
    lh_response_body(&f->resp, "mine", 4, NULL);
    lh_front_dress(&f->ctx);
    assert_string_equal(body(f), "mine");

    /* a route that answers JSON; a JSON body without HTML in Accept */
    request(f, "GET /x", "");
    f->ctx.json_route = true;
    lh_response_error(&f->resp, 404);
    lh_front_dress(&f->ctx);
    assert_string_equal(body(f), "{\"error\":\"Not Found\",\"status\":404}");
    request(f, "POST /x", "Content-Type: application/json\r\nContent-Length: 4\r\n");
    lh_response_error(&f->resp, 400);
    char detail[] = "json.decode: Expected value";
    f->ctx.err_detail = detail;
    f->ctx.err_status = 400;
    lh_front_dress(&f->ctx);
    f->ctx.err_detail = NULL;
    assert_string_equal(body(f), "{\"error\":\"Bad Request\",\"status\":400,"
                                 "\"detail\":\"json.decode: Expected value\"}");
    request(f, "POST /x", "Content-Type: application/json\r\nContent-Length: 4\r\n"
                          "Accept: text/html\r\n");
    lh_response_error(&f->resp, 400);
    lh_front_dress(&f->ctx);
    assert_string_equal(hdr(f, "Content-Type"), "text/html; charset=utf-8");

    /* a JSON Content-Type without a body says nothing */
    request(f, "GET /x", "Content-Type: application/json\r\n");
    lh_response_error(&f->resp, 403);
    lh_front_dress(&f->ctx);
    assert_string_equal(hdr(f, "Content-Type"), "text/html; charset=utf-8");

    /* a detail is shown only with the status it explains */
    request(f, "GET /x", "Accept: application/json\r\n");
    lh_response_error(&f->resp, 500);
    f->ctx.err_detail = detail;
    f->ctx.err_status = 400;
    lh_front_dress(&f->ctx);
    f->ctx.err_detail = NULL;
    assert_string_equal(body(f), "{\"error\":\"Internal Server Error\",\"status\":500}");

    /* --dev from this machine: a Lua error's page for a browser, detail for JSON */
    request(f, "GET /x", "");
    f->ctx.dev_loopback = true;
    f->ctx.dev_error = strdup("<p>the dev page</p>");
    lh_response_error(&f->resp, 500);
    lh_front_dress(&f->ctx);
    assert_string_equal(body(f), "<p>the dev page</p>");
    assert_null(f->ctx.dev_error); /* the response owns it */
    char trace[] = "stack traceback:\n\tx.lua:1: in main chunk";
    char boom[] = "x.lua:1: boom";
    request(f, "GET /x", "Accept: application/json\r\n");
    f->ctx.dev_loopback = true;
    f->ctx.dev_error = strdup("<p>the dev page</p>");
    f->ctx.err_detail = boom;
    f->ctx.err_trace = trace;
    f->ctx.err_status = 500;
    lh_response_error(&f->resp, 500);
    lh_front_dress(&f->ctx);
    f->ctx.err_detail = f->ctx.err_trace = NULL;
    assert_string_equal(body(f), "{\"error\":\"Internal Server Error\",\"status\":500,"
                                 "\"detail\":\"x.lua:1: boom\",\"traceback\":\"stack "
                                 "traceback:\\n\\tx.lua:1: in main chunk\"}");
    /* a body longer than the response's page: on the heap, owned by the response */
    char *long_trace = malloc(3001);
    memset(long_trace, 't', 3000);
    long_trace[3000] = '\0';
    request(f, "GET /x", "Accept: application/json\r\n");
    f->ctx.err_detail = boom;
    f->ctx.err_trace = long_trace;
    f->ctx.err_status = 500;
    lh_response_error(&f->resp, 500);
    lh_front_dress(&f->ctx);
    f->ctx.err_detail = f->ctx.err_trace = NULL;
    free(long_trace);
    assert_non_null(f->resp.body_owned);
    assert_int_equal(f->resp.body_len, strlen("{\"error\":\"Internal Server Error\",\"status\""
                                              ":500,\"detail\":\"x.lua:1: boom\",\"traceback\""
                                              ":\"\"}") + 3000);
    assert_memory_equal(f->resp.body + f->resp.body_len - 5, "ttt\"}", 5);
}

static void test_fallback(void **state)
{
    struct fx *f = *state;
    const char *html = "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";
    /* off */
    configure(f);
    request(f, "GET /users/42", html);
    assert_int_equal(lh_front_fallback(&f->ctx), LH_DECLINED);

    char fb[] = "index.html";
    f->cfg.fallback = fb;
    configure(f);
    request(f, "GET /users/42", html);
    assert_int_equal(lh_front_fallback(&f->ctx), LH_ANSWERED);
    assert_int_equal(f->resp.status, 200);
    assert_string_equal(body(f), "<h1>app</h1>\n");
    assert_string_equal(hdr(f, "Vary"), "Accept");
    assert_non_null(hdr(f, "ETag"));
    /* conditional: 304 */
    char etag[64], head[256];
    snprintf(etag, sizeof etag, "%s", hdr(f, "ETag"));
    snprintf(head, sizeof head, "%sIf-None-Match: %s\r\n", html, etag);
    request(f, "HEAD /deep/link/", head);
    assert_int_equal(lh_front_fallback(&f->ctx), LH_ANSWERED);
    assert_int_equal(f->resp.status, 304);
    /* not for: an extension, JSON or no Accept, other methods */
    request(f, "GET /app.js", html);
    assert_int_equal(lh_front_fallback(&f->ctx), LH_DECLINED);
    request(f, "GET /users/42", "Accept: application/json\r\n");
    assert_int_equal(lh_front_fallback(&f->ctx), LH_DECLINED);
    request(f, "GET /users/42", "Accept: text/html;q=0\r\n");
    assert_int_equal(lh_front_fallback(&f->ctx), LH_DECLINED);
    request(f, "GET /users/42", "");
    assert_int_equal(lh_front_fallback(&f->ctx), LH_DECLINED);
    request(f, "POST /users/42", html);
    assert_int_equal(lh_front_fallback(&f->ctx), LH_DECLINED);
    /* a fallback that is missing: declined (the 404 follows), noted once */
    char gone[] = "gone.html";
    f->cfg.fallback = gone;
    configure(f);
    request(f, "GET /users/42", html);
    assert_int_equal(lh_front_fallback(&f->ctx), LH_DECLINED);
    assert_true(f->front.fallback_warned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_q_values),
        cmocka_unit_test(test_wants_json),
        cmocka_unit_test(test_has_extension),
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_is_json_type),
        cmocka_unit_test(test_json_error_body),
        cmocka_unit_test(test_init_normalises_paths),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_preflight),
        T(test_cors_headers),
        T(test_error_bodies),
        T(test_fallback),
#undef T
    };
    return cmocka_run_group_tests_name("front", tests, NULL, NULL);
}
