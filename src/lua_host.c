/* lua_host.c - Lua states, the request object, hooks and routes. See lua_host.h.
 *
 * The time limit. Every handler and hook runs in a coroutine of its own (ctx->co)
 * through run_co(), which sets lua->running to the request for exactly as long as
 * lua_resume runs. Lua code that runs meanwhile, in ctx->co or in a coroutine the
 * handler created, belongs to that request: the count hook (on_count) reads
 * lua->running, never the thread's own state. (lua_newthread gives a new coroutine
 * the creating thread's hook but the main thread's extra space, so per-thread data
 * would be wrong for every coroutine a handler makes.) The request's run time
 * (ctx->lua_ns) is summed over its resumes, and checked before each resume and by
 * the hook every HOOK_EVERY instructions; past limits.handler_timeout_ms the hook
 * raises, and from then on at every instruction until the call has ended, so a
 * pcall in a loop cannot swallow it. After SLICE_MS of running, the hook pauses
 * ctx->co (not a coroutine of the handler's own: that would look to the handler as
 * if its coroutine had yielded) so the worker serves other clients and resumes the
 * handler later. A handler's own coroutine.yield() in ctx->co gives other clients a
 * turn too; the time until it is resumed counts as run time, so a loop around
 * coroutine.yield() runs out of time like any other loop. The allocator enforces
 * limits.lua_memory_mb. A single long call into C (string.rep, a backtracking find)
 * runs no Lua instructions: neither pauses nor timeouts reach it, only the memory
 * limit. */
#include "lua_host.h"

#include "log.h"
#include "lua_coro.h"
#include "lua_json.h"
#include "path.h"
#include "router.h"
#include "sanitizer.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REQ_META "luahttpd.request"
#define HOOK_EVERY 1000 /* instructions between two looks at the clock */
#ifndef LH_CONFIG_MS
#define LH_CONFIG_MS 5000 /* config.lua itself must finish within this */
#endif
#define SLICE_NS (10 * 1000000LL) /* a handler pauses for other clients after this long */

/* Registry slots of this module (light userdata keys). */
static const char key_routes, key_before, key_after, key_host, key_encode, key_decode,
    key_stdin;

/* Lua's small blocks (up to SMALL_MAX bytes, in 16-byte size classes) come from
 * free lists of their state, carved out of CHUNK_BYTES chunks: a request makes and
 * frees a few dozen of them, and a free list does each in a few instructions where
 * malloc and free take about a hundred. The chunks are freed with the state; what
 * they hold counts against limits.lua_memory_mb like any block. Built with
 * -DLH_NO_POOLS or ASan, every block comes from malloc, so that valgrind or ASan
 * checks each one. */
#define SMALL_MAX 256
#define SMALL_CLASS(n) (((n) - 1) / 16)
#define CHUNK_BYTES (64 * 1024)
#define LUA_POOLS LH_POOLS

struct chunk {
    struct chunk *next;
    _Alignas(max_align_t) char mem[];
};

struct lh_lua {
    lua_State *L;
    struct lh_router *router;
    size_t mem_used, mem_limit;
    bool capped;              /* Lua code runs: mem_limit applies (see limited_alloc) */
    void *free_small[SMALL_CLASS(SMALL_MAX) + 1]; /* a free list per size class */
    struct chunk *chunks;     /* every chunk, for lh_lua_free */
    char *carve;              /* the unused end of the newest chunk */
    size_t carve_left;
    long timeout_ms;
    int64_t timeout_ns;
    size_t path_max;          /* limits.header_bytes: the longest rewrite of req.path */
    bool dev;
    bool unsafe;              /* unsafe_libs: handlers get the guarded functions back */
    bool loading;             /* config.lua runs (under config_deadline) */
    bool config_timed_out;
    int64_t config_deadline;
    struct lh_ctx *running;   /* the request whose Lua code runs now, or NULL */
    int spare_ref;            /* a finished coroutine kept for the next handler */
    int nbefore, nafter;      /* hooks config.lua added: none, no look at the lists */
    char err_file[512];       /* where the last error was raised (for --dev) */
    int err_line;
};

/* ---- memory and time limits ---------------------------------------------------------- */

/* A block of n (1..SMALL_MAX) bytes from the pools, or NULL. */
static void *small_get(struct lh_lua *lua, size_t n)
{
    size_t cls = SMALL_CLASS(n), size = (cls + 1) * 16;
    void *p = lua->free_small[cls];
    if (p) {
        lua->free_small[cls] = *(void **)p;
        return p;
    }
    if (lua->carve_left < size) { /* the old chunk's tail (< SMALL_MAX bytes) is left */
        struct chunk *c = malloc(CHUNK_BYTES);
        if (!c)
            return NULL;
        c->next = lua->chunks;
        lua->chunks = c;
        lua->carve = c->mem;
        lua->carve_left = CHUNK_BYTES - offsetof(struct chunk, mem);
    }
    p = lua->carve;
    lua->carve += size;
    lua->carve_left -= size;
    return p;
}

static void small_put(struct lh_lua *lua, void *p, size_t n)
{
    size_t cls = SMALL_CLASS(n);
    *(void **)p = lua->free_small[cls];
    lua->free_small[cls] = p;
}

/* Free a block of the given size, wherever it came from. */
static void block_free(struct lh_lua *lua, void *p, size_t n)
{
    if (LUA_POOLS && n <= SMALL_MAX)
        small_put(lua, p, n);
    else
        free(p);
}

/* Lua's allocator: the pools above, malloc for the rest, and the state's memory cap
 * while Lua code runs (lua->capped). The host's own calls between runs (making the
 * request object, formatting an error and its traceback) are not capped: they are
 * small, and they run unprotected, where a failed allocation would abort the process.
 * A handler that used up the cap with small objects left no room even for the error
 * message. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lh_lua *lua = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr)
            block_free(lua, ptr, old);
        lua->mem_used -= old;
        return NULL;
    }
    if (lua->capped && nsize > old && lua->mem_used + (nsize - old) > lua->mem_limit)
        return NULL; /* Lua raises "not enough memory"; the state stays usable */
    void *p;
    if (!LUA_POOLS || (old > SMALL_MAX && nsize > SMALL_MAX)) {
        p = realloc(ptr, nsize);
    } else if (ptr && old <= SMALL_MAX && nsize <= SMALL_MAX &&
               SMALL_CLASS(old) == SMALL_CLASS(nsize)) {
        p = ptr;
    } else {
        p = nsize <= SMALL_MAX ? small_get(lua, nsize) : malloc(nsize);
        if (p && ptr) {
            memcpy(p, ptr, old < nsize ? old : nsize);
            block_free(lua, ptr, old);
        }
    }
    if (p)
        lua->mem_used = lua->mem_used - old + nsize;
    return p;
}

/* The state's host: the allocator's user data, so no registry lookup is needed. */
static struct lh_lua *host_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* From now on, fire at every instruction until the call has ended, so that a
 * pcall cannot swallow the error. */
static void raise_every_instruction(lua_State *L, lua_Hook hook)
{
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
}

static void on_count(lua_State *L, lua_Debug *ar)
{
    struct lh_lua *lua = host_of(L);
    struct lh_ctx *ctx = lua->running;
    if (!ctx) { /* config.lua, at load time; nothing else runs Lua outside a request */
        if (!lua->loading)
            return;
        if (!lua->config_timed_out && now_ns() < lua->config_deadline)
            return;
        lua->config_timed_out = true;
        raise_every_instruction(L, on_count);
        luaL_error(L, "config.lua ran longer than %d ms", LH_CONFIG_MS);
    }
    if (!ctx->timed_out) {
        int64_t now = now_ns();
        if (ctx->lua_ns + (now - ctx->resumed_at) < lua->timeout_ns) {
            if (now >= ctx->slice_end && (L == ctx->co || L == ctx->wrapped_co) &&
                lua_isyieldable(L)) {
                ctx->hook_paused = true;
                lua_yield(L, 0); /* the VM pauses the coroutine once the hook returns */
            }
            return;
        }
        ctx->timed_out = true;
    }
    raise_every_instruction(L, on_count);
    luaL_error(L, "handler ran longer than limits.handler_timeout_ms (%d ms)",
               (int)lua->timeout_ms);
}

/* ---- calling into Lua ------------------------------------------------------------------- */

/* Remember the innermost Lua function on co's stack: the line that failed. */
static void note_error_position(struct lh_lua *lua, lua_State *co)
{
    lua_Debug ar;
    lua->err_line = 0;
    for (int level = 0; lua_getstack(co, level, &ar); level++)
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0 && ar.source[0] == '@') {
            snprintf(lua->err_file, sizeof lua->err_file, "%s", ar.source + 1);
            lua->err_line = ar.currentline;
            return;
        }
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

enum call_result {
    CALL_OK,
    CALL_YIELD,
    CALL_ERROR,
    CALL_TIMEOUT,
    CALL_MEMORY,
    CALL_BAD_JSON, /* the error req:json() raised reached the top: the client's (400) */
};

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

/* --dev: the 500 page for a loopback client. Returns a malloc'd HTML page or NULL. */
static char *dev_page(const struct lh_lua *lua, const struct lh_ctx *ctx, const char *what,
                      const char *msg)
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
    put_source(f, lua->err_file, lua->err_line);
    put_request(f, ctx);
    fputs("<p><small>luahttpd shows this page because it runs with --dev and you are on "
          "this machine; other clients get a plain 500.</small></p>\n</body></html>\n", f);
    fclose(f);
    return page;
}

/* Give ctx a coroutine: the spare one, or a new one. */
static lua_State *take_thread(struct lh_lua *lua, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    if (lua->spare_ref != LUA_NOREF) {
        ctx->co_ref = lua->spare_ref;
        lua->spare_ref = LUA_NOREF;
        lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->co_ref);
    } else {
        lua_newthread(L);
        lua_pushvalue(L, -1);
        ctx->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_State *co = lua_tothread(L, -1);
    lua_pop(L, 1);
    ctx->co = co;
    return co;
}

/* ctx is done with its coroutine; a cleanly finished one is kept for reuse. */
static void drop_thread(struct lh_lua *lua, struct lh_ctx *ctx, bool reusable)
{
    if (ctx->co_ref == LUA_NOREF)
        return;
    lua_State *co = ctx->co;
    ctx->co = NULL;
    if (reusable && lua->spare_ref == LUA_NOREF && lua_status(co) == LUA_OK &&
        lua_gettop(co) == 0)
        lua->spare_ref = ctx->co_ref;
    else
        luaL_unref(lua->L, LUA_REGISTRYINDEX, ctx->co_ref);
    ctx->co_ref = LUA_NOREF;
}

/* What ctx is running, for the error log: "route GET /x/:id", "before hook 2". */
static const char *what_runs(const struct lh_ctx *ctx, char *buf, size_t size)
{
    if (ctx->what_method)
        snprintf(buf, size, "route %s %s", ctx->what_method, ctx->what_pattern);
    else
        snprintf(buf, size, "%s hook %d", ctx->what_kind ? ctx->what_kind : "?",
                 ctx->what_index);
    return buf;
}

/* The error on top of co becomes the failure res of ctx's call: logged with co's
 * traceback under what_runs(ctx), and kept for the --dev page. Pops the error. */
static void log_failure(struct lh_lua *lua, struct lh_ctx *ctx, lua_State *co,
                        enum call_result res)
{
    lua_State *L = lua->L;
    int base = lua_gettop(L);
    lua_xmove(co, L, 1);
    /* no __tostring: it would run the handler's code outside its limits */
    const char *msg = res == CALL_MEMORY ? "not enough memory (limits.lua_memory_mb)"
                      : lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                          ? lua_tostring(L, -1)
                          : lua_pushfstring(L, "(error object is a %s value)",
                                            luaL_typename(L, -1));
    note_error_position(lua, co);
    luaL_traceback(L, co, NULL, 0);
    const char *trace = lua_tostring(L, -1);
    char what[160];
    what_runs(ctx, what, sizeof what);
    lh_log_error_trace("error", trace, "lua: %s: %s", what, msg);
    if (lua->dev && ctx->dev_loopback && res != CALL_TIMEOUT) {
        free(ctx->dev_error);
        ctx->dev_error = dev_page(lua, ctx, what, lua_pushfstring(L, "%s\n%s", msg, trace));
    }
    lua_settop(L, base);
}

/*
 * Run ctx's handler for one time slice: start it (the function and its nargs
 * arguments on top of lua->L) or, when ctx->co_ref holds a paused one, resume it.
 * CALL_OK: its results are on lua->L's stack (*nres of them). CALL_YIELD: paused,
 * call again later. Otherwise it failed: the error and traceback are logged under
 * what_runs(ctx) and nothing is left on the stack. A call whose request has used up
 * its time is not resumed at all.
 */
static enum call_result run_co(struct lh_lua *lua, struct lh_ctx *ctx, int nargs, int *nres)
{
    lua_State *L = lua->L, *co;
    int64_t now = now_ns();
    if (ctx->co_ref == LUA_NOREF) {
        co = take_thread(lua, ctx);
        lua_xmove(L, co, nargs + 1);
        ctx->timed_out = false;
        /* once per call, not per resume: lua_sethook restarts the count */
        lua_sethook(co, on_count, LUA_MASKCOUNT, HOOK_EVERY);
    } else {
        co = ctx->co;
        nargs = 0;
        if (ctx->charge_wait)
            ctx->lua_ns += now - ctx->resumed_at;
    }
    ctx->charge_wait = ctx->hook_paused = false;
    if (ctx->lua_ns >= lua->timeout_ns) {
        ctx->timed_out = true;
        lua_pushfstring(co, "handler ran longer than limits.handler_timeout_ms (%d ms)",
                        (int)lua->timeout_ms);
        log_failure(lua, ctx, co, CALL_TIMEOUT);
        drop_thread(lua, ctx, false);
        return CALL_TIMEOUT;
    }
    ctx->resumed_at = now;
    ctx->slice_end = now + SLICE_NS;
    int n = 0;
    lua->running = ctx;
    lua->capped = lua->mem_limit > 0;
    int rc = lua_resume(co, L, nargs, &n);
    lua->capped = false;
    lua->running = NULL;
    now = now_ns();
    ctx->lua_ns += now - ctx->resumed_at;
    if (rc == LUA_YIELD) {
        lua_pop(co, n); /* a handler's own coroutine.yield() gives nothing to us */
        if (!ctx->hook_paused) { /* it asked for the pause: the wait counts */
            ctx->charge_wait = true;
            ctx->resumed_at = now;
        }
        return CALL_YIELD;
    }
    if (rc == LUA_OK) {
        lua_xmove(co, L, n);
        *nres = n;
        drop_thread(lua, ctx, true);
        return CALL_OK;
    }
    enum call_result res = ctx->timed_out     ? CALL_TIMEOUT
                           : rc == LUA_ERRMEM ? CALL_MEMORY
                           : ctx->bad_json && lua_topointer(co, -1) == ctx->bad_json
                               ? CALL_BAD_JSON
                               : CALL_ERROR;
    log_failure(lua, ctx, co, res);
    drop_thread(lua, ctx, false);
    lua_gc(L, LUA_GCCOLLECT);
    return res;
}

/* ---- the request object -------------------------------------------------------------- */

/* The request behind the userdata at idx; raises once its request has ended. */
static struct lh_ctx *check_req(lua_State *L, int idx)
{
    struct lh_ctx **p = luaL_checkudata(L, idx, REQ_META);
    if (!*p)
        luaL_error(L, "request object used after its request ended");
    return *p;
}

/* Cached fields live in the userdata's user values, one slot each: no table to make
 * for a request whose handler reads nothing. */
enum {
    SLOT_HEADERS = 1,
    SLOT_QUERY,
    SLOT_PARAMS,
    SLOT_REWRITTEN,
    SLOT_BAD_JSON,
    NSLOTS = SLOT_BAD_JSON
};

/* Push the value cached in slot and return true, or push nothing and return false. */
static bool cached(lua_State *L, int ud, int slot)
{
    if (lua_getiuservalue(L, ud, slot) != LUA_TNIL)
        return true;
    lua_pop(L, 1);
    return false;
}

/* Keep the value on top of the stack (it stays there) in slot. */
static void cache(lua_State *L, int ud, int slot)
{
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, ud, slot);
}

static void push_headers(lua_State *L, const struct lh_request *r)
{
    lua_createtable(L, 0, (int)r->nheaders);
    char name[256];
    for (uint32_t i = 0; i < r->nheaders; i++) {
        const struct lh_header *h = &r->headers[i];
        size_t n = h->name_len < sizeof name ? h->name_len : sizeof name - 1;
        for (size_t k = 0; k < n; k++)
            name[k] = (char)((h->name[k] >= 'A' && h->name[k] <= 'Z') ? h->name[k] + 32
                                                                        : h->name[k]);
        lua_pushlstring(L, name, n);
        lua_pushlstring(L, h->value, h->value_len);
        lua_rawset(L, -3); /* a repeated header: the last one wins */
    }
}

/* Push the query-decoded form of s (never longer than s). */
static void push_decoded(lua_State *L, const char *s, size_t len)
{
    char small[256];
    if (len < sizeof small) { /* the common case: no luaL_Buffer box on the stack */
        lua_pushlstring(L, small, lh_query_decode(s, len, small, sizeof small));
        return;
    }
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, len + 1);
    luaL_pushresultsize(&b, lh_query_decode(s, len, out, len + 1));
}

static void push_query(lua_State *L, const char *q, size_t len)
{
    int pairs = 0;
    for (size_t i = 0; q && i < len; i++)
        pairs += q[i] == '&';
    lua_createtable(L, 0, q && len ? pairs + 1 : 0);
    size_t i = 0;
    while (q && i < len) {
        size_t s = i;
        while (i < len && q[i] != '&')
            i++;
        size_t e = s;
        while (e < i && q[e] != '=')
            e++;
        if (i > s) {
            push_decoded(L, q + s, e - s);
            push_decoded(L, e < i ? q + e + 1 : "", e < i ? i - e - 1 : 0);
            lua_rawset(L, -3); /* the last value wins */
        }
        i++;
    }
}

/* req:json(). Its error, if it reaches the top uncaught, answers 400 (the body is the
 * client's fault): run_co recognises the very string raised here, kept alive in a
 * user value of the request. A handler that catches it and fails for another reason
 * answers 500. json.decode is the one config.lua started with, whatever the global
 * `json` holds now. */
static int req_json(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_decode);
    lua_pushlstring(L, ctx->body, ctx->body_len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, SLOT_BAD_JSON);
        ctx->bad_json = lua_topointer(L, -1);
        return lua_error(L);
    }
    return 1;
}

static int req_index(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    const char *k = luaL_checkstring(L, 2);
    int slot = strcmp(k, "query") == 0     ? SLOT_QUERY
               : strcmp(k, "params") == 0  ? SLOT_PARAMS
               : strcmp(k, "headers") == 0 ? SLOT_HEADERS
                                           : 0;
    if (slot) {
        if (cached(L, 1, slot))
            return 1;
        if (slot == SLOT_HEADERS)
            push_headers(L, ctx->req);
        else if (slot == SLOT_QUERY)
            push_query(L, ctx->query, ctx->query_len);
        else
            lua_newtable(L); /* a route without captures */
        cache(L, 1, slot);
    } else if (strcmp(k, "method") == 0) {
        lua_pushlstring(L, ctx->req->method, ctx->req->method_len);
    } else if (strcmp(k, "path") == 0) {
        lua_pushstring(L, ctx->path);
    } else if (strcmp(k, "body") == 0) {
        lua_pushlstring(L, ctx->body, ctx->body_len);
    } else if (strcmp(k, "remote_addr") == 0) {
        lua_pushstring(L, ctx->remote_addr);
    } else if (strcmp(k, "json") == 0) {
        lua_pushcfunction(L, req_json);
    } else {
        lua_pushnil(L);
    }
    return 1;
}

/*
 * Only req.path may be set, and only by a before hook (a coroutine it runs included):
 * later, routes have been matched against the old path. The new path is decoded
 * already; it is normalised here, never decoded again, into a Lua string the request
 * object keeps (SLOT_REWRITTEN) while ctx->path points at it: sized by the string,
 * and wherever ctx moves while the hook is paused. A path that no client could ask
 * for is refused as that request would be: ctx->rewrite_refused holds its status
 * (403 above "/", 404 for a NUL or a backslash, 414 longer than
 * limits.header_bytes) and the path stays as it was.
 */
static int req_newindex(lua_State *L)
{
    struct lh_ctx *ctx = check_req(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "path") != 0)
        return luaL_error(L, "req.%s is read-only (only req.path can be rewritten)", k);
    const char *kind = ctx->what_kind ? ctx->what_kind : "?";
    if (strcmp(kind, "before") != 0 || host_of(L)->running != ctx) /* or another's req */
        return luaL_error(L, "req.path can only be changed by a before hook, not by %s",
                          strcmp(kind, "route") == 0 ? "a route handler" : "an after hook");
    size_t len;
    const char *p = luaL_checklstring(L, 3, &len);
    if (len == 0 || p[0] != '/')
        return luaL_error(L, "req.path must start with '/'");
    if (len > host_of(L)->path_max) {
        ctx->rewrite_refused = 414;
        return 0;
    }
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, len + 2);
    int st = lh_path_resolve(p, len, out, len + 2);
    if (st != 0) {
        ctx->rewrite_refused = st;
        return 0;
    }
    luaL_pushresultsize(&b, strlen(out));
    cache(L, 1, SLOT_REWRITTEN); /* keeps the string alive while ctx->path points at it */
    ctx->path = lua_tostring(L, -1);
    return 0;
}

static int req_tostring(lua_State *L)
{
    struct lh_ctx **p = luaL_checkudata(L, 1, REQ_META);
    if (*p)
        lua_pushfstring(L, "request %s", (*p)->path);
    else
        lua_pushliteral(L, "request (ended)");
    return 1;
}

static const luaL_Reg req_meta[] = {
    {"__index", req_index},
    {"__newindex", req_newindex},
    {"__tostring", req_tostring},
    {NULL, NULL},
};

/* Push ctx's request object, creating it on first use. */
static void push_req(struct lh_lua *lua, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    if (ctx->req_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->req_ref);
        return;
    }
    struct lh_ctx **p = lua_newuserdatauv(L, sizeof *p, NSLOTS);
    *p = ctx;
    luaL_setmetatable(L, REQ_META);
    lua_pushvalue(L, -1);
    ctx->req_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Point ctx's request object at target (ctx itself, or NULL when it ends). */
static void retarget_req(struct lh_lua *lua, struct lh_ctx *ctx, struct lh_ctx *target)
{
    if (ctx->req_ref == LUA_NOREF)
        return;
    lua_rawgeti(lua->L, LUA_REGISTRYINDEX, ctx->req_ref);
    *(struct lh_ctx **)lua_touserdata(lua->L, -1) = target;
    lua_pop(lua->L, 1);
}

void lh_lua_ctx_moved(struct lh_lua *lua, struct lh_ctx *ctx)
{
    retarget_req(lua, ctx, ctx);
}

void lh_lua_request_done(struct lh_lua *lua, struct lh_ctx *ctx)
{
    if (!lua)
        return;
    retarget_req(lua, ctx, NULL);
    luaL_unref(lua->L, LUA_REGISTRYINDEX, ctx->req_ref);
    luaL_unref(lua->L, LUA_REGISTRYINDEX, ctx->res_ref);
    ctx->req_ref = ctx->res_ref = LUA_NOREF;
    drop_thread(lua, ctx, false); /* a handler abandoned while paused */
}

/* ---- what handlers return ----------------------------------------------------------- */

/* Response headers from Lua (a handler's third value, an after hook's res.headers)
 * pass the rules of lh_response_name_class: a bad name or value, or a table past
 * the response's header room, is a 500 with a log line naming what ran and the
 * header; the server's framing headers are left out with a warning, which is given
 * once per route or hook and header name in a worker (and again after a reload, in
 * the new state) so that a busy route cannot flood the log; Connection: close is
 * honoured by closing the connection after the response. */

static const char key_warned; /* registry: table of the warnings already given */

/* Log why the header name (len bytes; may be NULL) makes the response a 500. */
static bool header_error(const struct lh_ctx *ctx, const char *name, size_t len,
                         const char *why)
{
    char what[160];
    int shown = len > 64 ? 64 : (int)len; /* lh_log_error escapes what it holds */
    lh_log_error("error", "lua: %s: response header \"%.*s%s\" %s: answering 500",
                 what_runs(ctx, what, sizeof what), name ? shown : 14,
                 name ? name : "(not a string)", len > 64 ? "..." : "", why);
    return false;
}

/* Warn that a framing header (name: a token, at most 17 bytes) was left out, the
 * first time this route or hook sets it. The warnings given are kept in the state,
 * keyed by "what runs" and the name in lower case: a few per route at most. */
static void warn_ignored(struct lh_lua *lua, const struct lh_ctx *ctx, const char *name,
                         size_t len)
{
    lua_State *L = lua->L;
    char what[160], key[sizeof what + 32];
    what_runs(ctx, what, sizeof what);
    size_t wlen = strlen(what);
    memcpy(key, what, wlen);
    key[wlen] = '\n';
    for (size_t i = 0; i < len && i < 31; i++)
        key[wlen + 1 + i] = (char)(name[i] | 0x20); /* a framing name's letters, lowered */
    size_t klen = wlen + 1 + (len < 31 ? len : 31);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_warned) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_warned);
    }
    lua_pushlstring(L, key, klen);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pushlstring(L, key, klen);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
        lh_log_error("warn", "lua: %s: response header %.*s is the server's and is not "
                     "sent (warned once per route and header name)", what, (int)len, name);
    }
    lua_pop(L, 2);
}

/* Does the table on top of the stack hold exactly the keys 1..n? */
static bool is_array(lua_State *L, lua_Unsigned n)
{
    lua_Unsigned count = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        count++;
    }
    return count == n;
}

/* Add one value (on top of the stack) of the header name to resp. */
static bool add_value(struct lh_lua *lua, const struct lh_ctx *ctx, struct lh_response *resp,
                      const char *name, size_t nlen, enum lh_hname class)
{
    lua_State *L = lua->L;
    int t = lua_type(L, -1);
    size_t vlen = 0;
    const char *v = t == LUA_TSTRING || t == LUA_TNUMBER ? lua_tolstring(L, -1, &vlen) : NULL;
    if (!v)
        return header_error(ctx, name, nlen, "must be a string, a number or an array of them");
    if (!lh_response_value_ok(v, vlen))
        return header_error(ctx, name, nlen, "has a value with CR, LF, NUL or another "
                                             "control byte");
    if (class == LH_HNAME_FRAMING) {
        if (nlen == 10 && strncasecmp(name, "connection", 10) == 0 &&
            lh_response_connection_close(v, vlen))
            resp->close = true; /* honoured: the server's own Connection: close goes out */
        else
            warn_ignored(lua, ctx, name, nlen);
        return true;
    }
    if (lh_response_add(resp, name, nlen, v, vlen) != 0)
        return header_error(ctx, name, nlen, "does not fit: a response has at most 1024 "
                                             "header lines and 128 KiB of them");
    return true;
}

/* Add the pair on top of the stack (a name, and a value or an array of values) to
 * resp. *singles: the Date, Server and Content-Type names seen in this table. */
static bool add_field(struct lh_lua *lua, const struct lh_ctx *ctx, struct lh_response *resp,
                      unsigned *singles)
{
    lua_State *L = lua->L;
    size_t nlen = 0;
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nlen) : NULL;
    enum lh_hname class = name ? lh_response_name_class(name, nlen) : LH_HNAME_BAD;
    if (class == LH_HNAME_BAD)
        return header_error(ctx, name, nlen, "is not a valid header name (RFC 9110 token)");
    bool list = lua_type(L, -1) == LUA_TTABLE;
    lua_Unsigned n = list ? lua_rawlen(L, -1) : 1;
    if (list && !is_array(L, n))
        return header_error(ctx, name, nlen, "has a table value that is not an array");
    if (class == LH_HNAME_SINGLE) {
        unsigned bit = nlen == 4 ? 1u : nlen == 6 ? 2u : 4u; /* Date, Server, Content-Type */
        if (n != 1)
            return header_error(ctx, name, nlen, "takes exactly one value");
        if (*singles & bit)
            return header_error(ctx, name, nlen, "is given twice (names are compared "
                                                 "without regard to case)");
        *singles |= bit;
        lh_response_unset(resp, name); /* the server's own */
    }
    for (lua_Unsigned i = 1; i <= n; i++) {
        if (list)
            lua_rawgeti(L, -1, (lua_Integer)i);
        else
            lua_pushvalue(L, -1);
        bool ok = add_value(lua, ctx, resp, name, nlen, class);
        lua_pop(L, 1);
        if (!ok)
            return false;
    }
    return true;
}

/* Add the headers table at idx (nil: none) to resp. Returns false on a bad header
 * (logged); the caller answers 500. */
static bool add_headers(struct lh_lua *lua, const struct lh_ctx *ctx, int idx,
                        struct lh_response *resp)
{
    lua_State *L = lua->L;
    if (lua_isnil(L, idx))
        return true;
    if (!lua_istable(L, idx)) {
        char what[160];
        lh_log_error("error", "lua: %s: headers must be a table, got %s: answering 500",
                     what_runs(ctx, what, sizeof what), luaL_typename(L, idx));
        return false;
    }
    unsigned singles = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!add_field(lua, ctx, resp, &singles)) {
            lua_pop(L, 2);
            return false;
        }
        lua_pop(L, 1);
    }
    return true;
}

/*
 * Turn the values a handler returned (stack from `base` to the top) into ctx->resp.
 * Returns false when it returned nothing (the request goes on); answers 500 for
 * values that make no response.
 */
static bool take_response(struct lh_lua *lua, int base, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    int n = lua_gettop(L) - base;
    if (n == 0 || (lua_isnil(L, base + 1) && n == 1))
        return false;
    struct lh_response *resp = ctx->resp;
    int status = 200, body = base + 1;
    if (lua_type(L, base + 1) == LUA_TNUMBER) {
        lua_Integer s;
        if (!lua_isinteger(L, base + 1) || (s = lua_tointeger(L, base + 1)) < 200 || s > 599) {
            lh_log_error("error", "lua: status must be an integer from 200 to 599");
            lh_response_error(resp, 500);
            return true;
        }
        status = (int)s;
        body = base + 2;
    }
    int headers = body + 1;
    lua_settop(L, base + 3 > headers ? base + 3 : headers);
    lh_response_init(resp, status);
    const char *ctype = NULL;
    size_t len = 0;
    const char *text = NULL;
    if (lua_type(L, body) == LUA_TSTRING) {
        text = lua_tolstring(L, body, &len);
        ctype = "text/html; charset=utf-8";
    } else if (lua_istable(L, body)) {
        lua_pushcfunction(L, traceback);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_encode);
        lua_pushvalue(L, body);
        lua->capped = lua->mem_limit > 0;
        int rc = lua_pcall(L, 1, 1, -3);
        lua->capped = false;
        if (rc != LUA_OK) {
            char what[160];
            lh_log_error("error", "lua: %s: the returned table is not JSON: %s",
                         what_runs(ctx, what, sizeof what), lua_tostring(L, -1));
            lh_response_error(resp, 500);
            return true;
        }
        lua_replace(L, body);
        lua_pop(L, 1);
        text = lua_tolstring(L, body, &len);
        ctype = "application/json";
    } else if (!lua_isnil(L, body)) {
        lh_log_error("error", "lua: a body must be a string, a table or nil, got %s",
                     luaL_typename(L, body));
        lh_response_error(resp, 500);
        return true;
    }
    if (ctype)
        lh_response_header(resp, "Content-Type", ctype);
    if (!add_headers(lua, ctx, headers, resp)) {
        lh_response_error(resp, 500);
        return true;
    }
    if (text) {
        char *copy = malloc(len ? len : 1);
        if (!copy) {
            lh_response_error(resp, 500);
            return true;
        }
        memcpy(copy, text, len);
        lh_response_body(resp, copy, len, copy);
    }
    return true;
}

/* A failed call becomes the response: 503 for a timeout, 400 for req:json() on bad
 * JSON, 500 otherwise. */
static void answer_failure(struct lh_ctx *ctx, enum call_result r)
{
    int status = r == CALL_TIMEOUT ? 503 : r == CALL_BAD_JSON ? 400 : 500;
    lh_response_error(ctx->resp, status);
    if (status == 500 && ctx->dev_error && ctx->dev_loopback) {
        /* --dev, asked from this machine: show what went wrong */
        lh_response_body(ctx->resp, ctx->dev_error, strlen(ctx->dev_error), ctx->dev_error);
        ctx->dev_error = NULL;
    }
}

/* Run or resume ctx's handler (to start: the function and nargs arguments on top of
 * the stack) and, once it has returned, turn its results into the response. */
static enum lh_lua_step handler_step(struct lh_lua *lua, struct lh_ctx *ctx, int nargs)
{
    lua_State *L = lua->L;
    int base = lua_gettop(L) - (ctx->co_ref == LUA_NOREF ? nargs + 1 : 0);
    int nres = 0;
    enum call_result r = run_co(lua, ctx, nargs, &nres);
    if (r == CALL_YIELD)
        return LH_LUA_SUSPENDED;
    if (r != CALL_OK) {
        answer_failure(ctx, r);
        return LH_LUA_ANSWERED;
    }
    bool answered = take_response(lua, base, ctx);
    lua_settop(L, base);
    return answered ? LH_LUA_ANSWERED : LH_LUA_DECLINED;
}

/* ---- steps -------------------------------------------------------------------------------- */

/* Push the next hook of the list at key, and the request, for ctx; false (nothing
 * pushed, the index reset) at the end of the list. */
static bool push_next_hook(struct lh_lua *lua, struct lh_ctx *ctx, const void *key,
                           const char *kind)
{
    lua_State *L = lua->L;
    if ((key == &key_before ? lua->nbefore : lua->nafter) == 0)
        return false;
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_rawgeti(L, -1, ++ctx->lua_index);
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        ctx->lua_index = 0;
        return false;
    }
    push_req(lua, ctx);
    ctx->what_kind = kind;
    ctx->what_method = ctx->what_pattern = NULL;
    ctx->what_index = ctx->lua_index;
    return true;
}

/* Run the before hooks from ctx->lua_index on, or go on with a paused one. */
enum lh_lua_step lh_lua_before(struct lh_lua *lua, struct lh_ctx *ctx)
{
    for (;;) {
        enum lh_lua_step r;
        if (ctx->co_ref != LUA_NOREF)
            r = handler_step(lua, ctx, 0);
        else if (push_next_hook(lua, ctx, &key_before, "before"))
            r = handler_step(lua, ctx, 1);
        else
            return LH_LUA_DECLINED;
        if (r != LH_LUA_DECLINED) {
            if (r == LH_LUA_ANSWERED)
                ctx->lua_index = 0;
            return r;
        }
    }
}

/* Finds the route after the `skip` already tried and pushes its handler and req. */
struct visit {
    struct lh_lua *lua;
    struct lh_ctx *ctx;
    int seen, skip;
    bool found;
};

static bool visit_route(void *ud, const struct lh_route_match *m)
{
    struct visit *v = ud;
    if (v->seen++ < v->skip)
        return false;
    lua_State *L = v->lua->L;
    if (m->nparams > 0) { /* the match is gone once the handler runs: copy it now */
        push_req(v->lua, v->ctx);
        int req = lua_gettop(L);
        lua_createtable(L, 0, (int)m->nparams);
        for (size_t i = 0; i < m->nparams; i++) {
            lua_pushlstring(L, m->params[i].value, m->params[i].value_len);
            lua_setfield(L, -2, m->params[i].name);
        }
        cache(L, req, SLOT_PARAMS);
        lua_settop(L, req - 1);
    } else if (v->ctx->req_ref != LUA_NOREF) { /* an earlier route's captures go */
        push_req(v->lua, v->ctx);
        lua_pushnil(L);
        lua_setiuservalue(L, -2, SLOT_PARAMS);
        lua_pop(L, 1);
    }
    v->ctx->what_kind = "route";
    v->ctx->what_method = m->method;
    v->ctx->what_pattern = m->pattern;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_routes);
    lua_rawgeti(L, -1, m->handler);
    lua_remove(L, -2);
    push_req(v->lua, v->ctx);
    v->found = true;
    return true;
}

enum lh_lua_step lh_lua_route(struct lh_lua *lua, struct lh_ctx *ctx)
{
    if (lh_router_count(lua->router) == 0)
        return LH_LUA_DECLINED;
    char method[32];
    size_t n = ctx->req->method_len < sizeof method ? ctx->req->method_len : sizeof method - 1;
    memcpy(method, ctx->req->method, n);
    method[n] = '\0';
    for (;;) {
        enum lh_lua_step r;
        if (ctx->co_ref != LUA_NOREF) {
            r = handler_step(lua, ctx, 0);
        } else {
            /* the walk is deterministic: skip the routes that already declined */
            struct visit v = {.lua = lua, .ctx = ctx, .skip = ctx->lua_index};
            lh_router_match(lua->router, method, ctx->path, visit_route, &v,
                            &ctx->route_matched, ctx->allow, sizeof ctx->allow);
            if (!v.found) {
                ctx->lua_index = 0;
                return LH_LUA_DECLINED;
            }
            ctx->lua_index++;
            r = handler_step(lua, ctx, 1);
        }
        if (r != LH_LUA_DECLINED) {
            if (r == LH_LUA_ANSWERED)
                ctx->lua_index = 0;
            return r;
        }
    }
}

bool lh_lua_method_not_allowed(struct lh_lua *lua, struct lh_ctx *ctx)
{
    if (!ctx->route_matched || !ctx->allow[0])
        return false;
    lh_response_error(ctx->resp, 405);
    lh_response_header(ctx->resp, "Allow", ctx->allow);
    return true;
}

/* ---- after hooks ---------------------------------------------------------------------- */

static const char key_headers_meta; /* registry: the metatable of res.headers */

/* Push the key of table t that equals name without regard to case; false (nothing
 * pushed) when there is none. */
static bool find_name(lua_State *L, int t, const char *name, size_t len)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        size_t n;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -1, &n);
            if (n == len && strncasecmp(k, name, n) == 0)
                return true;
        }
    }
    return false;
}

/* res.headers[k] for a k not there as spelt: the entry whose name differs only in
 * case (res.headers["content-type"] reads "Content-Type"). */
static int headers_index(lua_State *L)
{
    size_t len;
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (name && find_name(L, 1, name, len))
        lua_rawget(L, 1);
    else
        lua_pushnil(L);
    return 1;
}

/* res.headers[k] = v for a k not there as spelt: replaces (or with nil removes) an
 * entry whose name differs only in case, instead of adding a second one. */
static int headers_newindex(lua_State *L)
{
    size_t len;
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (name && find_name(L, 1, name, len)) {
        lua_pushnil(L);
        lua_rawset(L, 1);
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

/* The first header of resp with header i's name (i itself when none before it). */
static uint32_t first_with_name(const struct lh_response *resp, uint32_t i)
{
    const struct lh_resp_header *h = lh_response_at(resp, i);
    for (uint32_t j = 0; j < i; j++)
        if (lh_response_at(resp, j)->name_len == h->name_len &&
            strcasecmp(lh_response_name(resp, j), lh_response_name(resp, i)) == 0)
            return j;
    return i;
}

/* An after hook's res: { status = ..., headers = { name = value, ... } }, a header
 * sent more than once as an array of its values (so that a hook can append one),
 * names matched without regard to case. */
static void push_res(lua_State *L, const struct lh_response *resp)
{
    static const luaL_Reg meta[] = {
        {"__index", headers_index}, {"__newindex", headers_newindex}, {NULL, NULL}};
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, resp->status);
    lua_setfield(L, -2, "status");
    lua_createtable(L, 0, (int)resp->nheaders + 4); /* room for a hook's additions */
    int t = lua_gettop(L);
    for (uint32_t i = 0; i < resp->nheaders; i++) {
        uint32_t first = first_with_name(resp, i);
        lua_pushlstring(L, lh_response_name(resp, first), lh_response_at(resp, first)->name_len);
        lua_pushlstring(L, lh_response_value(resp, i), lh_response_at(resp, i)->value_len);
        if (first != i) { /* a repeated header: { earlier values..., this one } */
            lua_pushvalue(L, -2);
            if (lua_rawget(L, t) != LUA_TTABLE) {
                lua_createtable(L, 2, 0);
                lua_insert(L, -2);
                lua_rawseti(L, -2, 1);
            }
            lua_insert(L, -2);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
        lua_rawset(L, t);
    }
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_headers_meta) == LUA_TNIL) {
        lua_pop(L, 1);
        luaL_newlib(L, meta);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_headers_meta);
    }
    lua_setmetatable(L, t);
    lua_setfield(L, -2, "headers");
}

/* Make resp's headers what the res table at idx says. Returns false on a bad
 * header (logged); the caller answers 500. */
static bool apply_headers(struct lh_lua *lua, const struct lh_ctx *ctx, int idx,
                          struct lh_response *resp)
{
    lua_State *L = lua->L;
    lua_getfield(L, idx, "headers");
    bool ok = lua_istable(L, -1);
    if (ok) {
        lh_response_clear_headers(resp);
        ok = add_headers(lua, ctx, lua_gettop(L), resp);
    } else {
        char what[160];
        lh_log_error("error", "lua: %s: res.headers must be a table, got %s: answering 500",
                     what_runs(ctx, what, sizeof what), luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return ok;
}

enum lh_lua_step lh_lua_after(struct lh_lua *lua, struct lh_ctx *ctx)
{
    lua_State *L = lua->L;
    if (!ctx->in_after) { /* the hooks see every response, a 503 for a timeout too */
        ctx->in_after = true;
        ctx->lua_ns = 0;
        ctx->charge_wait = false;
    }
    for (;;) {
        int nres = 0;
        enum call_result r;
        if (ctx->co_ref != LUA_NOREF) {
            r = run_co(lua, ctx, 0, &nres);
        } else {
            if (!push_next_hook(lua, ctx, &key_after, "after"))
                return LH_LUA_ANSWERED;
            push_res(L, ctx->resp);
            lua_pushvalue(L, -1);
            luaL_unref(L, LUA_REGISTRYINDEX, ctx->res_ref);
            ctx->res_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            r = run_co(lua, ctx, 2, &nres);
        }
        if (r == CALL_YIELD)
            return LH_LUA_SUSPENDED;
        if (r == CALL_OK) {
            lua_pop(L, nres);
            lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->res_ref);
            if (!apply_headers(lua, ctx, lua_gettop(L), ctx->resp))
                r = CALL_ERROR;
            lua_pop(L, 1);
        }
        if (r != CALL_OK) { /* the 500 (or 503) goes out without the later hooks */
            answer_failure(ctx, r);
            ctx->lua_index = 0;
            return LH_LUA_ANSWERED;
        }
    }
}

/* ---- functions config.lua calls -------------------------------------------------------- */

static int api_route(lua_State *L)
{
    struct lh_lua *lua = host_of(L);
    const char *method = luaL_checkstring(L, 1);
    const char *pattern = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_routes);
    lua_Integer id = luaL_len(L, -1) + 1;
    char err[256];
    if (lh_router_add(lua->router, method, pattern, (int)id, err, sizeof err) < 0)
        return luaL_error(L, "route(\"%s\", \"%s\"): %s", method, pattern, err);
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, id);
    return 0;
}

static int add_hook(lua_State *L, const void *key)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, luaL_len(L, -2) + 1);
    struct lh_lua *lua = host_of(L);
    (*(key == &key_before ? &lua->nbefore : &lua->nafter))++;
    return 0;
}

static int api_before(lua_State *L) { return add_hook(L, &key_before); }
static int api_after(lua_State *L) { return add_hook(L, &key_after); }

/* log(...): its arguments, tostring'ed and tab-separated, to the error log. */
static int api_log(lua_State *L)
{
    int n = lua_gettop(L); /* before luaL_buffinit, which may push a placeholder */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_Debug ar;
    int line = lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) ? ar.currentline : 0;
    const char *where = line > 0 ? ar.short_src : "?";
    const struct lh_ctx *ctx = host_of(L)->running;
    char what[160];
    if (ctx)
        lh_log_error("info", "lua: %s:%d: [%s] [%.*s %s] %s", where, line,
                     what_runs(ctx, what, sizeof what),
                     (int)ctx->req->method_len, ctx->req->method, ctx->path,
                     lua_tostring(L, -1));
    else
        lh_log_error("info", "lua: %s:%d: %s", where, line, lua_tostring(L, -1));
    return 0;
}

/* ---- the sandbox ---------------------------------------------------------------------
 * What could block the worker, end the process or undo the time limit is replaced by
 * a guard: a closure with upvalues (the original, its name, why it is guarded) that
 * raises an error naming both and unsafe_libs. With unsafe_libs = true the guards
 * are swapped back for the originals once config.lua has loaded; while it loads, a
 * guard asks the global unsafe_libs, so that the file can use what it allowed. */

/* Does the state let handlers have the guarded functions now? */
static bool unsafe_now(lua_State *L)
{
    struct lh_lua *lua = host_of(L);
    if (lua->unsafe || !lua->loading)
        return lua->unsafe;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushliteral(L, "unsafe_libs");
    bool yes = lua_rawget(L, -2) == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 2);
    return yes;
}

static int refuse(lua_State *L)
{
    return luaL_error(L, "%s is not available to luahttpd handlers: %s "
                         "(unsafe_libs = true in config.lua allows it)",
                      lua_tostring(L, lua_upvalueindex(2)), lua_tostring(L, lua_upvalueindex(3)));
}

/* Call the original with this call's arguments (only while config.lua loads). */
static int call_original(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int guard(lua_State *L)
{
    return unsafe_now(L) ? call_original(L) : refuse(L);
}

/* io.lines() and io.input() without a file name read stdin; with one they are safe. */
static int guard_stdin(lua_State *L)
{
    return lua_isnoneornil(L, 1) && !unsafe_now(L) ? refuse(L) : call_original(L);
}

/* load, loadfile, dofile: text chunks only. A binary chunk is not checked by the Lua
 * VM: a crafted one can crash the process. */
static int text_load(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    if (lua_type(L, 1) == LUA_TSTRING && lua_tostring(L, 1)[0] == LUA_SIGNATURE[0])
        return refuse(L);
    lua_settop(L, 4);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    int n = call_original(L);
    if (lua_isnil(L, 1) && lua_type(L, 2) == LUA_TSTRING &&
        strstr(lua_tostring(L, 2), "binary chunk"))
        return refuse(L); /* a reader function gave a binary chunk */
    return n;
}

static int text_loadfile(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 2);
    return call_original(L);
}

static int dofile_cont(lua_State *L, int status, lua_KContext k)
{
    return lua_gettop(L) - 1;
}

/* dofile(name) as Lua's own, but text only, and yieldable like it. */
static int text_dofile(lua_State *L)
{
    if (unsafe_now(L))
        return call_original(L);
    const char *name = luaL_optstring(L, 1, NULL);
    if (!name)
        return refuse(L); /* dofile() reads stdin */
    lua_settop(L, 1);
    if (luaL_loadfilex(L, name, "t") != LUA_OK)
        return lua_error(L);
    lua_callk(L, 0, LUA_MULTRET, 0, dofile_cont);
    return dofile_cont(L, LUA_OK, 0);
}

static const lua_CFunction guards[] = {guard, guard_stdin, text_load, text_loadfile,
                                       text_dofile};

static bool is_guard(lua_CFunction f)
{
    for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++)
        if (f == guards[i])
            return true;
    return false;
}

/* Replace field `name` of the table at index t with fn guarding it. */
static void guard_field(lua_State *L, int t, const char *lib, const char *name,
                        lua_CFunction fn, const char *why)
{
    if (lua_getfield(L, t, name) == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (lib)
        lua_pushfstring(L, "%s.%s", lib, name);
    else
        lua_pushstring(L, name);
    lua_pushstring(L, why);
    lua_pushcclosure(L, fn, 3);
    lua_setfield(L, t, name);
}

/* Push library lib of the globals at g; its absolute index. */
static int push_lib(lua_State *L, int g, const char *lib)
{
    lua_getfield(L, g, lib);
    return lua_gettop(L);
}

static void guard_library(lua_State *L)
{
    static const char blocks[] = "it blocks every client of the worker while the command runs",
                      ends[] = "it would end the server",
                      stdin_[] = "it reads the server's standard input",
                      binary[] = "binary chunks are not checked by Lua and can crash the server",
                      hooks[] = "it can switch off the handler time limit and reach into "
                                "other code's variables";
    lua_pushglobaltable(L);
    int g = lua_gettop(L), t;
    guard_field(L, g, NULL, "load", text_load, binary);
    guard_field(L, g, NULL, "loadfile", text_loadfile, binary);
    guard_field(L, g, NULL, "dofile", text_dofile, stdin_);
    t = push_lib(L, g, "os");
    guard_field(L, t, "os", "exit", guard, ends);
    guard_field(L, t, "os", "execute", guard, blocks);
    t = push_lib(L, g, "io");
    guard_field(L, t, "io", "popen", guard, blocks);
    guard_field(L, t, "io", "read", guard, stdin_);
    guard_field(L, t, "io", "lines", guard_stdin, stdin_);
    guard_field(L, t, "io", "input", guard_stdin, stdin_);
    lua_getfield(L, t, "stdin"); /* kept for unsafe_libs */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_stdin);
    lua_pushnil(L);
    lua_setfield(L, t, "stdin");
    t = push_lib(L, g, "string");
    guard_field(L, t, "string", "dump", guard, binary);
    t = push_lib(L, g, "debug");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "traceback") != 0)
            guard_field(L, t, "debug", lua_tostring(L, -1), guard, hooks);
    }
    lua_settop(L, g - 1);
}

/* unsafe_libs: every guard in the table on top gives way to its original. */
static void unguard_table(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && is_guard(lua_tocfunction(L, -1))) {
            lua_getupvalue(L, -1, 1);
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, -5); /* replacing an existing key keeps lua_next valid */
        }
        lua_pop(L, 1);
    }
}

static void unguard_library(lua_State *L)
{
    static const char *const libs[] = {"os", "io", "string", "debug"};
    lua_pushglobaltable(L);
    unguard_table(L);
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        if (lua_getfield(L, -1, libs[i]) == LUA_TTABLE)
            unguard_table(L);
        lua_pop(L, 1);
    }
    if (lua_getfield(L, -1, "io") == LUA_TTABLE) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_stdin);
        lua_setfield(L, -2, "stdin");
    }
    lua_pop(L, 2);
}

/* Protected: the standard libraries, guarded (see above), and our API. */
static int install(lua_State *L)
{
    luaL_openlibs(L);
    lh_lua_coro_install(L);
    guard_library(L);
    luaL_requiref(L, "json", lh_luaopen_json, 1);
    lua_getfield(L, -1, "encode"); /* for returned tables and req:json(), whatever */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_encode); /* the global json becomes */
    lua_getfield(L, -1, "decode");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_decode);
    lua_pop(L, 1);
    lua_register(L, "route", api_route);
    lua_register(L, "before", api_before);
    lua_register(L, "after", api_after);
    lua_register(L, "log", api_log);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_routes);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_before);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_after);
    luaL_newmetatable(L, REQ_META);
    luaL_setfuncs(L, req_meta, 0);
    lua_pop(L, 1);
#ifdef LH_FUZZING
    /* tests/fuzz/fuzz_config.c runs generated config.lua files: take away everything
     * that reaches the machine (files, processes, C modules, the registry); the
     * guards already keep binary chunks out */
    static const char *const gone[] = {"io", "os", "package", "require", "dofile",
                                       "loadfile", "debug", NULL};
    for (const char *const *g = gone; *g; g++) {
        lua_pushnil(L);
        lua_setglobal(L, *g);
    }
#endif
    return 0;
}

struct lh_lua *lh_lua_new(const char *path, struct lh_config *c, bool dev, char *err,
                          size_t errlen)
{
    struct lh_lua *lua = calloc(1, sizeof *lua);
    if (!lua)
        goto oom;
    lua->spare_ref = LUA_NOREF;
    lua->dev = dev;
    lua->router = lh_router_new();
    lua->L = lua_newstate(limited_alloc, lua);
    if (!lua->router || !lua->L)
        goto oom;
    lua_pushlightuserdata(lua->L, lua);
    lua_rawsetp(lua->L, LUA_REGISTRYINDEX, &key_host);
    lua_pushcfunction(lua->L, install);
    if (lua_pcall(lua->L, 0, 0, 0) != LUA_OK)
        goto oom;
    /* config.lua runs under the memory limit it is about to set: the default */
    lua->mem_limit = 64u << 20;
    lua_sethook(lua->L, on_count, LUA_MASKCOUNT, HOOK_EVERY);
    lua->config_deadline = now_ns() + LH_CONFIG_MS * 1000000LL; /* a loop fails, not hangs */
    lua->loading = lua->capped = true;
    int rc = path ? lh_config_load_in(c, path, lua->L, err, errlen) : lh_config_defaults(c);
    lua->loading = lua->capped = false;
    lua_sethook(lua->L, NULL, 0, 0);
    if (rc < 0) {
        lh_lua_free(lua);
        return NULL;
    }
    lua->timeout_ms = c->limits.handler_timeout_ms;
    lua->timeout_ns = c->limits.handler_timeout_ms * 1000000LL;
    lua->path_max = (size_t)c->limits.header_bytes;
    lua->mem_limit = (size_t)c->limits.lua_memory_mb << 20;
#ifndef LH_FUZZING
    lua->unsafe = c->unsafe_libs;
#endif
    if (lua->unsafe)
        unguard_library(lua->L);
    lua_gc(lua->L, LUA_GCCOLLECT);
    return lua;
oom:
    snprintf(err, errlen, "%s: not enough memory for a Lua state",
             path ? path : "(built-in defaults)");
    lh_config_free(c);
    lh_lua_free(lua);
    return NULL;
}

void lh_lua_free(struct lh_lua *lua)
{
    if (!lua)
        return;
    if (lua->L)
        lua_close(lua->L);
    while (lua->chunks) {
        struct chunk *c = lua->chunks;
        lua->chunks = c->next;
        free(c);
    }
    lh_router_free(lua->router);
    free(lua);
}

struct lh_ctx *lh_lua_running(lua_State *L)
{
    return host_of(L)->running;
}

size_t lh_lua_route_count(const struct lh_lua *lua)
{
    return lh_router_count(lua->router);
}

bool lh_lua_has_method(const struct lh_lua *lua, const char *method, size_t len)
{
    return lh_router_has_method(lua->router, method, len);
}
