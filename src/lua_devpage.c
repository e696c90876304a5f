/* lua_devpage.c - the --dev error page: what a Lua error looks like to a client on
 * this machine when the server runs with --dev (the error and its traceback, the
 * source lines around the line that failed, the request). See lua_int.h. */
#include "lua_int.h"

#include <stdio.h>
#include <string.h>

static void put_html(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(s[i], f);
        }
    }
}

static void put_html_str(FILE *f, const char *s) { put_html(f, s, strlen(s)); }

/* A few lines of the failing file around the failing line. */
static void put_source(FILE *f, const char *file, int line)
{
    FILE *src = line > 0 ? fopen(file, "r") : NULL;
    if (!src)
        return;
    fputs("<h2>", f);
    put_html_str(f, file);
    fprintf(f, ":%d</h2>\n<pre class=\"src\">", line);
    char buf[1024];
    for (int n = 1; n <= line + 4 && fgets(buf, sizeof buf, src); n++)
        if (n >= line - 4) {
            fprintf(f, n == line ? "<b>%5d | " : "%5d | ", n);
            put_html_str(f, buf);
            if (n == line)
                fputs("</b>", f);
        }
    fclose(src);
    fputs("</pre>\n", f);
}

static void put_request(FILE *f, const struct lh_ctx *ctx)
{
    const struct lh_request *r = ctx->req;
    fputs("<h2>Request</h2>\n<table>\n<tr><th>request</th><td>", f);
    put_html(f, r->method, r->method_len);
    fputc(' ', f);
    put_html(f, r->target, r->target_len);
    fprintf(f, " HTTP/1.%d</td></tr>\n<tr><th>client</th><td>", r->version == 10 ? 0 : 1);
    put_html_str(f, ctx->remote_addr);
    fputs("</td></tr>\n", f);
    for (uint32_t i = 0; i < r->nheaders; i++) {
        fputs("<tr><th>", f);
        put_html(f, r->headers[i].name, r->headers[i].name_len);
        fputs("</th><td>", f);
        put_html(f, r->headers[i].value, r->headers[i].value_len);
        fputs("</td></tr>\n", f);
    }
    fprintf(f, "<tr><th>body</th><td>%zu bytes</td></tr>\n</table>\n", ctx->body_len);
}

char *lh_devpage_render_error(const struct lh_ctx *ctx, const char *what, const char *msg,
                              const char *file, int line)
{
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    if (!f)
        return NULL;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>500 Lua error</title>\n"
          "<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;max-width:60rem}"
          "pre{background:#f4f4f4;padding:1rem;overflow-x:auto}b{background:#fdd}"
          "th{text-align:left;padding-right:1rem;vertical-align:top}</style></head>\n"
          "<body>\n<h1>500: Lua error</h1>\n<p>in ", f);
    put_html_str(f, what);
    fputs("</p>\n<pre class=\"err\">", f);
    put_html_str(f, msg);
    fputs("</pre>\n", f);
    put_source(f, file, line);
    put_request(f, ctx);
    fputs("<p><small>luahttpd shows this page because it runs with --dev and you are on "
          "this machine; other clients get a plain 500.</small></p>\n</body></html>\n", f);
    fclose(f);
    return page;
}
