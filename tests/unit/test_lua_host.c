/* Unit tests for the Lua host (lua_*.c): the request object's lifetime and lazy
 * fields, return values, the memory cap and the time limit, without sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lua_fixture.h"
#include "lua_host.h"
#include "static.h"

struct fx {
    char dir[64], path[96];
    struct lh_config cfg;
    struct lh_lua *lua;
    struct lh_request req;
    struct lh_response resp;
    char pathbuf[256];
    char raw[512];
    int slices;         /* how often the last request's handler paused */
    bool after;         /* get() runs the after hooks too */
};

/* The time-limit test needs a short timeout; the memory-cap tests a long one, so that
 * on a slow machine the cap, not the clock, is what stops them. */
static const char LIMITS_SHORT[] = "limits = { handler_timeout_ms = 100, lua_memory_mb = 8 }\n";
static const char LIMITS_LONG[] = "limits = { handler_timeout_ms = 60000, lua_memory_mb = 8 }\n";

static const char CONFIG[] =
    "route('GET', '/hello/:name', function(req) return { hello = req.params.name } end)\n"
    "route('GET', '/decline', function(req) end)\n"
    /* tables with an empty table in them: lua-cjson's text alone does not say which
     * are arrays (json.encode is called then) */
    "route('GET', '/arrays', function(req)\n"
    "  return { a = json.empty_array, b = json.array({}), c = {} } end)\n"
    "route('GET', '/empty', function(req) return {} end)\n"
    "route('GET', '/notjson', function(req) return { f = print } end)\n"
    "route('GET', '/keep', function(req) kept = req return 'kept' end)\n"
    "route('GET', '/use-kept', function(req) return kept.method end)\n"
    "route('GET', '/same', function(req)\n"
    "  return tostring(req.headers == req.headers and req.query == req.query) end)\n"
    "route('GET', '/q', function(req) return req.query.a .. '|' .. req.query.b end)\n"
    "route('GET', '/loop', function(req) while true do end end)\n"
    "route('GET', '/pcall', function(req) while true do pcall(function() while true do end end) end end)\n"
    "route('GET', '/big', function(req) return string.rep('x', 16 * 1024 * 1024) end)\n"
    "route('GET', '/grow', function(req)\n"
    "  local t = {} for i = 1, 1e6 do t[i] = string.rep('x', 65536) .. i end end)\n"
    "route('GET', '/small', function(req)\n"
    "  local t = {} for i = 1, 1e7 do t[i] = { i } end end)\n"
    "route('GET', '/sizes', function(req)\n" /* blocks that grow across the size classes */
    "  for n = 1, 700 do\n"
    "    local b = {} for i = 1, n do b[i] = string.char(97 + i % 26) end\n"
    "    local s = table.concat(b)\n"
    "    if #s ~= n or s:sub(n) ~= string.char(97 + n % 26) or s:sub(1, 1) ~= 'b' then\n"
    "      return 'bad ' .. n end\n"
    "  end\n"
    "  return 'sizes ok' end)\n"
    "route('GET', '/ok', function(req) return 'fine' end)\n"
    "route('GET', '/exit', function(req) os.exit(3) end)\n"
    "route('GET', '/exec', function(req) return tostring(os.execute('true')) end)\n"
    "route('GET', '/loadlib', function(req)\n"
    "  return tostring(select(2, pcall(package.loadlib, 'libc.so.6', '*'))) end)\n"
    "route('GET', '/unhook', function(req) pcall(debug.sethook) while true do end end)\n"
    "route('GET', '/yield', function(req) while true do coroutine.yield() end end)\n"
    "route('GET', '/genloop', function(req) coroutine.wrap(function() while true do end end)() end)\n"
    /* coroutines made before the watch's hook came (30 ms in), looping when resumed
     * or when coroutine.close runs their __close handler: the loop ends in the time
     * limit's error, which resume and close return */
    "local function spin(s) local t0 = os.clock() while os.clock() - t0 < s do end end\n"
    "route('GET', '/lateloop', function(req)\n"
    "  local co = coroutine.create(function() while true do end end)\n"
    "  spin(0.03) return select(2, coroutine.resume(co)) end)\n"
    "local function closing()\n"
    "  local co = coroutine.create(function()\n"
    "    local x <close> = setmetatable({}, { __close = function() while true do end end })\n"
    "    coroutine.yield() end)\n"
    "  coroutine.resume(co) return co end\n"
    "route('GET', '/closeloop', function(req)\n"
    "  return select(2, coroutine.close(closing())) end)\n"
    "route('GET', '/lateclose', function(req)\n"
    "  local co = closing() spin(0.03) return select(2, coroutine.close(co)) end)\n"
    /* a generator computing for 50 ms of CPU: the pauses happen inside it */
    "route('GET', '/gen', function(req)\n"
    "  local gen = coroutine.wrap(function()\n"
    "    local t0, i = os.clock(), 0\n"
    "    while os.clock() - t0 < 0.05 do i = i + 1 coroutine.yield(i) end end)\n"
    "  local s, n = 0, 0\n"
    "  for v in gen do s = s + v n = n + 1 end\n"
    "  return (s == n * (n + 1) // 2 and n > 0) and 'gen ok' or ('bad ' .. s .. ' ' .. n) end)\n"
    /* the same through coroutine.resume, two levels deep */
    "route('GET', '/nested', function(req)\n"
    "  local inner = coroutine.create(function()\n"
    "    local t0 = os.clock() while os.clock() - t0 < 0.05 do end return 'deep' end)\n"
    "  local outer = coroutine.create(function()\n"
    "    local ok, v = coroutine.resume(inner) coroutine.yield(v) return 'done' end)\n"
    "  local ok1, a = coroutine.resume(outer)\n"
    "  local ok2, b = coroutine.resume(outer)\n"
    "  return tostring(ok1) .. a .. tostring(ok2) .. b end)\n"
    /* streamed bodies (lh_lua_stream_next) */
    "calls = 0\n"
    "route('GET', '/s/lines', function(req)\n"
    "  local i = 0\n"
    "  req.ctx.n = 3\n"
    "  return 201, function()\n"
    "    calls = calls + 1 i = i + 1\n"
    "    if i > req.ctx.n then return nil end\n"
    "    if i == 2 then return '' end\n"
    "    return req.path .. i .. ';' end, { ['X-S'] = 'y' } end)\n"
    "route('GET', '/s/calls', function(req) return tostring(calls) end)\n"
    "route('GET', '/s/err', function(req) return function() error('gen failed') end end)\n"
    "route('GET', '/s/num', function(req) return function() return 1 end end)\n"
    "route('GET', '/s/spin', function(req)\n"
    "  return function()\n"
    "    local t0 = os.clock() while os.clock() - t0 < 0.03 do end return 'x' end end)\n"
    "route('GET', '/s/keep', function(req) return function() kept = req end end)\n";

/* Response headers from handlers and an after hook (which acts on /h/ paths only). */
static const char HEADERS[] =
    "route('GET', '/h/cl', function(req)\n"
    "  return 'hello', { ['Content-Length'] = '2', ['transfer-encoding'] = 'chunked',\n"
    "                    ['Keep-Alive'] = '1', Upgrade = 'x', ['X-Kept'] = 'yes' } end)\n"
    "route('GET', '/h/close', function(req) return 'c', { Connection = 'close' } end)\n"
    "route('GET', '/h/keep', function(req) return 'k', { Connection = 'keep-alive' } end)\n"
    "route('GET', '/h/cookies', function(req)\n"
    "  return 'c', { ['Set-Cookie'] = { 'a=1', 'b=2' }, ['content-type'] = 'text/plain' } end)\n"
    "route('GET', '/h/bad-name', function(req) return 'x', { ['X: y'] = '1' } end)\n"
    "route('GET', '/h/nul', function(req) return 'x', { ['X-A'] = 'a\\0b' } end)\n"
    "route('GET', '/h/ctl', function(req) return 'x', { ['X-A'] = 'a\\1b' } end)\n"
    "route('GET', '/h/dup-ct', function(req)\n"
    "  return 'x', { ['Content-Type'] = 'a/b', ['content-type'] = 'c/d' } end)\n"
    "route('GET', '/h/many', function(req)\n"
    "  local h = {} for i = 1, 300 do h['X-H' .. i] = string.rep('v', 200) end\n"
    "  return 'x', h end)\n"
    "route('GET', '/h/too-many', function(req)\n"
    "  local c = {} for i = 1, 1100 do c[i] = 'c' .. i end\n"
    "  return 'x', { ['Set-Cookie'] = c } end)\n"
    "route('GET', '/h/hooked', function(req) return 'x', { ['Set-Cookie'] = { 'a=1', 'b=2' } } end)\n"
    "route('GET', '/h/hook-close', function(req) return 'x' end)\n"
    "after(function(req, res)\n"
    "  if req.path == '/h/hooked' then\n"
    "    local c = res.headers['set-cookie']\n"
    "    res.headers['X-Type'] = type(c)\n"
    "    c[#c + 1] = 'z=9'\n"
    "    res.headers['content-type'] = 'text/x-hooked'\n"
    "    res.headers['Content-Length'] = '99'\n"
    "  elseif req.path == '/h/hook-close' then\n"
    "    res.headers.connection = 'close'\n"
    "  end\n"
    "end)\n";

/* The request object's fields, read through a whole dispatch (serve()): before hooks,
 * routes, after hooks. /f/NAME answers show(req.NAME): its type, ':' and, for a
 * string, the string. */
static const char REQUEST[] =
    "local function show(v) return type(v) .. ':' .. (type(v) == 'string' and v or '') end\n"
    "route('*', '/f/:name', function(req) return show(req[req.params.name]) end)\n"
    "route('GET', '/all', function(req)\n"
    "  local t = req:query_all(req:header('x-name'))\n"
    "  return table.concat(t, '|') .. '#' .. #t end)\n"
    "route('GET', '/header', function(req)\n"
    "  return show(req:header(req.query.name)) end)\n"
    "route('GET', '/headers', function(req) return req.headers[req.query.name] end)\n"
    "route('GET', '/no-name', function(req) return req:header() end)\n"
    "route('GET', '/dot-call', function(req) return req.query_all('a') end)\n"
    /* req.ctx: a before hook, a route that declines, the route that answers, and after
     * hooks all see one table; /ctx/none declines to the 404 */
    "before(function(req)\n"
    "  if req.path:sub(1, 4) == '/ctx' then req.ctx.a = 1 end\n"
    "  if req.path == '/rewrite' then req.path = '/f/url' end\n"
    "end)\n"
    "route('GET', '/ctx', function(req) req.ctx.c = 'declined' end)\n"
    "route('GET', '/ctx', function(req)\n"
    "  req.ctx.b = req.ctx.a + 1 return req.ctx.c end)\n"
    "route('GET', '/fresh', function(req) return tostring(next(req.ctx)) end)\n"
    "after(function(req, res)\n"
    "  if req.path:sub(1, 4) == '/ctx' then\n"
    "    res.headers['X-Ctx'] = req.ctx.a .. ',' .. tostring(req.ctx.b) end\n"
    "end)\n";

static int setup_with(void **state, const char *limits)
{
    struct fx *f = calloc(1, sizeof *f);
    f->lua = lua_fixture_load(f->dir, f->path, &f->cfg, limits, CONFIG);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, LIMITS_SHORT);
}

static int setup_long(void **state)
{
    return setup_with(state, LIMITS_LONG);
}

static int setup_headers(void **state)
{
    char *cfg = malloc(sizeof LIMITS_LONG + sizeof HEADERS);
    strcpy(cfg, LIMITS_LONG);
    strcat(cfg, HEADERS);
    int rc = setup_with(state, cfg);
    free(cfg);
    ((struct fx *)*state)->after = true;
    return rc;
}

static int setup_request(void **state)
{
    char *cfg = malloc(sizeof LIMITS_LONG + sizeof REQUEST);
    strcpy(cfg, LIMITS_LONG);
    strcat(cfg, REQUEST);
    int rc = setup_with(state, cfg);
    free(cfg);
    return rc;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lua_fixture_free(f->lua, &f->cfg, f->dir, f->path);
    free(f);
    return 0;
}

/* GET target through the route step; returns the status (0: declined) and leaves the
 * body in f->resp. */
static int get(struct fx *f, const char *target)
{
    snprintf(f->raw, sizeof f->raw, "GET %s HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n\r\n", target);
    size_t scanned = 0;
    assert_true(lh_http_parse_head(f->raw, strlen(f->raw), &scanned, 8192, &f->req) > 0);
    const char *q = strchr(f->req.target, '?');
    size_t plen = q ? (size_t)(q - f->req.target) : strcspn(f->req.target, " ");
    memcpy(f->pathbuf, f->req.target, plen);
    f->pathbuf[plen] = '\0';
    struct lh_ctx ctx = {.req = &f->req, .resp = &f->resp, .lua = f->lua, .body = "",
                         .remote_addr = "127.0.0.1", .pathbuf = f->pathbuf,
                         .pathcap = sizeof f->pathbuf};
    lh_response_free(&f->resp);
    lh_dispatch_init(&ctx);
    ctx.path = f->pathbuf;
    ctx.query = q ? q + 1 : NULL;
    ctx.query_len = q ? strcspn(q + 1, " ") : 0;
    /* a long handler pauses after its time slice: go on until it is done */
    enum lh_step r;
    f->slices = 0;
    while ((r = lh_lua_route(f->lua, &ctx)) == LH_SUSPENDED)
        f->slices++;
    if (r == LH_ANSWERED && f->after)
        while (lh_lua_after(f->lua, &ctx) == LH_SUSPENDED)
            f->slices++;
    lh_lua_request_done(f->lua, &ctx);
    free(ctx.dev_error);
    return r == LH_ANSWERED ? f->resp.status : 0;
}

static void assert_body(struct fx *f, const char *want)
{
    assert_int_equal(f->resp.body_len, strlen(want));
    assert_memory_equal(f->resp.body, want, strlen(want));
}

/* The whole request head (request line and headers, without the blank line) through
 * lh_dispatch into ctx, as a connection would send it: before hooks, routes, static
 * files in st (the docroot f->dir, opened: the caller closes st->root_fd), after hooks.
 * The response is in f->resp; ctx lives on for a streamed body. */
static void dispatch_head(struct fx *f, const char *head, struct lh_static *st,
                          struct lh_ctx *ctx)
{
    snprintf(f->raw, sizeof f->raw, "%s\r\n\r\n", head);
    size_t scanned = 0;
    assert_true(lh_http_parse_head(f->raw, strlen(f->raw), &scanned, 8192, &f->req) > 0);
    int root = lh_static_open_root(f->dir);
    assert_true(root >= 0);
    *st = (struct lh_static){.root_fd = root, .root_path = f->dir, .index = "index.html"};
    *ctx = (struct lh_ctx){.req = &f->req, .resp = &f->resp, .st = st, .lua = f->lua,
                           .body = "", .remote_addr = "127.0.0.1", .pathbuf = f->pathbuf,
                           .pathcap = sizeof f->pathbuf};
    lh_response_free(&f->resp);
    lh_dispatch_init(ctx);
    while (lh_dispatch(ctx) == LH_SUSPENDED)
        ;
}

/* dispatch_head, and the status; the response stays in f->resp. */
static int serve(struct fx *f, const char *head)
{
    struct lh_static st;
    struct lh_ctx ctx;
    dispatch_head(f, head, &st, &ctx);
    close(st.root_fd);
    return f->resp.status;
}

/* serve() a GET of target with a Host, and check the body. */
static void assert_get(struct fx *f, const char *target, const char *want)
{
    char head[256];
    snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: t", target);
    assert_int_equal(serve(f, head), 200);
    assert_body(f, want);
}

/* What a streamed body's function made (stream()). */
struct pieces {
    char buf[256];
    size_t len;
    int calls, paused;
};

static void collect(void *arg, const char *piece, size_t len)
{
    struct pieces *p = arg;
    assert_true(p->len + len < sizeof p->buf);
    memcpy(p->buf + p->len, piece, len);
    p->len += len;
    p->buf[p->len] = '\0';
    p->calls++;
}

/* serve() a GET of target whose answer streams, and run its function as a connection
 * would, until it ends or fails or has made max pieces; then end the request.
 * Returns the last result of lh_lua_stream_next. */
static enum lh_stream_result stream(struct fx *f, const char *target, struct pieces *p,
                                    int max)
{
    char head[256];
    snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: t", target);
    struct lh_static st;
    struct lh_ctx ctx;
    dispatch_head(f, head, &st, &ctx);
    int root = st.root_fd;
    assert_true(lh_response_streams(&f->resp));
    memset(p, 0, sizeof *p);
    enum lh_stream_result r;
    while ((r = lh_lua_stream_next(f->lua, &ctx, collect, p)) == LH_STREAM_PIECE ||
           r == LH_STREAM_PAUSED) {
        p->paused += r == LH_STREAM_PAUSED;
        if (p->calls >= max)
            break;
    }
    lh_dispatch_abort(&ctx);
    close(root);
    return r;
}

static void test_streamed_body(void **state)
{
    struct fx *f = *state;
    struct pieces p;
    /* the request object stays valid for the function's calls; "" is a piece too */
    assert_int_equal(stream(f, "/s/lines", &p, 100), LH_STREAM_END);
    assert_string_equal(p.buf, "/s/lines1;/s/lines3;");
    assert_int_equal(p.calls, 3);
    assert_int_equal(f->resp.status, 201);
    assert_string_equal(lh_response_get(&f->resp, "X-S"), "y");
    assert_string_equal(lh_response_get(&f->resp, "Content-Type"), "text/html; charset=utf-8");
    assert_get(f, "/s/calls", "4");
    /* HEAD: the head a GET gets, the function never called */
    assert_int_equal(serve(f, "HEAD /s/lines HTTP/1.1\r\nHost: t"), 201);
    assert_int_equal(f->resp.body_kind, LH_BODY_STREAM);
    assert_false(lh_response_streams(&f->resp));
    assert_get(f, "/s/calls", "4");
    /* an error, or a value that is neither a string nor nil: FAILED */
    assert_int_equal(stream(f, "/s/err", &p, 100), LH_STREAM_FAILED);
    assert_int_equal(stream(f, "/s/num", &p, 100), LH_STREAM_FAILED);
    /* the request object kept by the function dies with the stream */
    assert_int_equal(stream(f, "/s/keep", &p, 100), LH_STREAM_END);
    assert_int_equal(get(f, "/use-kept"), 500);
    lh_response_free(&f->resp);
}

/* Each call counts into the request's time: 30 ms pieces under a 100 ms limit. */
static void test_streamed_body_time_limit(void **state)
{
    struct fx *f = *state;
    struct pieces p;
    assert_int_equal(stream(f, "/s/spin", &p, 100), LH_STREAM_FAILED);
    assert_true(p.calls < 5);
    lh_response_free(&f->resp);
}

/* A call longer than a slice pauses and goes on. */
static void test_streamed_body_pauses(void **state)
{
    struct fx *f = *state;
    struct pieces p;
    assert_int_equal(stream(f, "/s/spin", &p, 3), LH_STREAM_PIECE);
    assert_string_equal(p.buf, "xxx");
    assert_true(p.paused >= 3);
    lh_response_free(&f->resp);
}

static void test_route_and_json(void **state)
{
    struct fx *f = *state;
    assert_int_equal(get(f, "/hello/ann"), 200);
    assert_int_equal(f->slices, 0);
    assert_body(f, "{\"hello\":\"ann\"}");
    assert_string_equal(lh_response_get(&f->resp, "Content-Type"), "application/json");
    assert_int_equal(get(f, "/arrays"), 200);
    assert_non_null(memmem(f->resp.body, f->resp.body_len, "\"a\":[]", 6));
    assert_non_null(memmem(f->resp.body, f->resp.body_len, "\"b\":[]", 6));
    assert_non_null(memmem(f->resp.body, f->resp.body_len, "\"c\":{}", 6));
    assert_int_equal(get(f, "/empty"), 200);
    assert_body(f, "{}");
    assert_int_equal(get(f, "/notjson"), 500);
    assert_int_equal(get(f, "/decline"), 0);
    assert_int_equal(get(f, "/nothing"), 0);
    lh_response_free(&f->resp);
}

static void test_request_object_lifetime(void **state)
{
    struct fx *f = *state;
    assert_int_equal(get(f, "/keep"), 200);
    assert_int_equal(get(f, "/use-kept"), 500); /* the kept object raises, no crash */
    assert_int_equal(get(f, "/ok"), 200);
    lh_response_free(&f->resp);
}

static void test_lazy_fields_are_cached(void **state)
{
    struct fx *f = *state;
    assert_int_equal(get(f, "/same"), 200);
    assert_body(f, "true");
    assert_int_equal(get(f, "/q?a=1+2&b=%41&a=3"), 200);
    assert_body(f, "3|A");
    lh_response_free(&f->resp);
}

static void test_time_limit(void **state)
{
    struct fx *f = *state;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(get(f, "/loop"), 503);
    assert_true(f->slices >= 3); /* 100 ms in slices of 10: it paused for others */
    assert_int_equal(get(f, "/pcall"), 503); /* pcall cannot swallow the timeout */
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs < 2.0);
    assert_int_equal(get(f, "/ok"), 200); /* and the state is fine afterwards */
    lh_response_free(&f->resp);
}

static void test_memory_cap(void **state)
{
    struct fx *f = *state;
    assert_int_equal(get(f, "/big"), 500);
    assert_int_equal(get(f, "/grow"), 500);
    /* small blocks come from the state's own pools: the cap holds for them too */
    assert_int_equal(get(f, "/small"), 500);
    assert_int_equal(get(f, "/ok"), 200);
    assert_body(f, "fine");
    lh_response_free(&f->resp);
    assert_int_equal(get(f, "/sizes"), 200);
    assert_body(f, "sizes ok");
    lh_response_free(&f->resp);
}

static void test_os_exit_raises(void **state)
{
    struct fx *f = *state;
    assert_int_equal(get(f, "/exit"), 500); /* and we are still here */
    lh_response_free(&f->resp);
}

static void test_loops_of_every_kind_end(void **state)
{
    struct fx *f = *state;
    /* a yield loop, a loop in a coroutine the handler made, a loop after trying to
     * take the hook off: each ends in 503, the state is fine afterwards */
    assert_int_equal(get(f, "/yield"), 503);
    assert_int_equal(get(f, "/genloop"), 503);
    assert_true(f->slices >= 3); /* paused inside the handler's own coroutine too */
    assert_int_equal(get(f, "/unhook"), 503);
    /* the handler returns the error (200), or now and then meets it itself in the
     * few instructions it runs after the catch (503): the hook raises in every
     * coroutine it watches once the time is over */
    static const char *const late[] = {"/lateloop", "/closeloop", "/lateclose"};
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        int status = get(f, late[i]);
        if (status != 503) {
            assert_int_equal(status, 200);
            assert_non_null(memmem(f->resp.body, f->resp.body_len, "handler_timeout_ms", 18));
        }
    }
    assert_int_equal(get(f, "/ok"), 200);
    lh_response_free(&f->resp);
}

/* The lines of the header name (any case) in f->resp; the first value in *first. */
static int count(struct fx *f, const char *name, const char **first)
{
    int n = 0;
    for (uint32_t i = 0; i < f->resp.nheaders; i++)
        if (strcasecmp(lh_response_name(&f->resp, i), name) == 0 && n++ == 0 && first)
            *first = lh_response_value(&f->resp, i);
    return n;
}

static void test_headers_from_handlers(void **state)
{
    struct fx *f = *state;
    const char *v = NULL;
    assert_int_equal(get(f, "/h/cl"), 200);
    assert_body(f, "hello");
    assert_int_equal(count(f, "Content-Length", NULL), 0); /* the server's own: left out */
    assert_int_equal(count(f, "Transfer-Encoding", NULL), 0);
    assert_int_equal(count(f, "Keep-Alive", NULL), 0);
    assert_int_equal(count(f, "Upgrade", NULL), 0);
    assert_int_equal(count(f, "X-Kept", &v), 1);
    assert_string_equal(v, "yes");
    assert_false(f->resp.close);
    assert_int_equal(get(f, "/h/close"), 200);
    assert_true(f->resp.close); /* honoured, and sent by the server, not as given */
    assert_int_equal(count(f, "Connection", NULL), 0);
    assert_int_equal(get(f, "/h/keep"), 200);
    assert_false(f->resp.close);
    assert_int_equal(count(f, "Connection", NULL), 0);
    assert_int_equal(get(f, "/h/cookies"), 200);
    assert_int_equal(count(f, "Set-Cookie", &v), 2);
    assert_string_equal(v, "a=1");
    assert_int_equal(count(f, "Content-Type", &v), 1);
    assert_string_equal(v, "text/plain");
    assert_int_equal(get(f, "/h/many"), 200);
    assert_int_equal(f->resp.nheaders, 301); /* and Content-Type */
    lh_response_free(&f->resp);
}

static void test_bad_headers_are_500(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {"/h/bad-name", "/h/nul", "/h/ctl", "/h/dup-ct",
                                      "/h/too-many"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(get(f, bad[i]), 500);
        assert_int_equal(count(f, "Set-Cookie", NULL), 0);
    }
    assert_int_equal(get(f, "/ok"), 200);
    lh_response_free(&f->resp);
}

static void test_coroutines_pause_and_go_on(void **state)
{
    struct fx *f = *state;
    assert_int_equal(get(f, "/gen"), 200);
    assert_body(f, "gen ok"); /* every value arrived although it paused inside */
    assert_true(f->slices >= 2);
    assert_int_equal(get(f, "/nested"), 200);
    assert_body(f, "truedeeptruedone");
    assert_true(f->slices >= 2);
    lh_response_free(&f->resp);
}

static void test_sandbox(void **state)
{
    struct fx *f = *state;
    assert_int_equal(get(f, "/exec"), 500);
    lh_response_free(&f->resp);
    /* native code: the error says how to allow it */
    assert_int_equal(get(f, "/loadlib"), 200);
    assert_non_null(memmem(f->resp.body, f->resp.body_len, "package.loadlib is not", 22));
    assert_non_null(memmem(f->resp.body, f->resp.body_len, "unsafe_libs = true", 18));
    lh_response_free(&f->resp);
    struct lh_config c = {0};
    char err[512];
    FILE *fp = fopen(f->path, "w");
    fputs("unsafe_libs = true\n", fp);
    fputs(CONFIG, fp);
    fclose(fp);
    struct lh_lua *unsafe = lh_lua_new(f->path, &c, false, err, sizeof err);
    assert_non_null(unsafe);
    struct lh_lua *safe = f->lua;
    f->lua = unsafe;
    assert_int_equal(get(f, "/exec"), 200);
    assert_body(f, "true");
    lh_response_free(&f->resp);
    assert_int_equal(get(f, "/loadlib"), 200);
    assert_body(f, "true");
    lh_response_free(&f->resp);
    f->lua = safe;
    lh_lua_free(unsafe);
    lh_config_free(&c);
}

static void test_after_hook_headers(void **state)
{
    struct fx *f = *state;
    const char *v = NULL;
    assert_int_equal(get(f, "/h/hooked"), 200);
    assert_int_equal(count(f, "X-Type", &v), 1);
    assert_string_equal(v, "table"); /* a repeated header is an array */
    assert_int_equal(count(f, "Set-Cookie", NULL), 3);
    assert_int_equal(count(f, "Content-Type", &v), 1); /* the hook's, in lower case */
    assert_string_equal(v, "text/x-hooked");
    assert_int_equal(count(f, "Content-Length", NULL), 0);
    assert_int_equal(get(f, "/h/hook-close"), 200);
    assert_true(f->resp.close);
    assert_int_equal(count(f, "Connection", NULL), 0);
    lh_response_free(&f->resp);
}

static void test_config_errors(void **state)
{
    struct fx *f = *state;
    FILE *fp = fopen(f->path, "w");
    fputs("port = 8080\nroute('GET', 'bad', function() end)\n", fp);
    fclose(fp);
    struct lh_config c = {0};
    char err[512];
    assert_null(lh_lua_new(f->path, &c, false, err, sizeof err));
    assert_non_null(strstr(err, "config.lua:2:"));
    fp = fopen(f->path, "w");
    fputs("while true do end\n", fp);
    fclose(fp);
    memset(&c, 0, sizeof c);
    assert_null(lh_lua_new(f->path, &c, false, err, sizeof err)); /* a config that hangs */
}

static void test_request_url_and_query_string(void **state)
{
    struct fx *f = *state;
    /* as received: escapes and '+' kept, the query included */
    assert_get(f, "/f/url?x=%20+y&z", "string:/f/url?x=%20+y&z");
    assert_get(f, "/f/%75rl", "string:/f/%75rl");
    assert_get(f, "/f/query_string?a=%41&b=1+2&&c", "string:a=%41&b=1+2&&c");
    assert_get(f, "/f/query_string?", "string:");
    assert_get(f, "/f/query_string", "string:");
    /* a before hook's rewrite changes req.path, not what the client asked for */
    assert_get(f, "/rewrite?k=v", "string:/rewrite?k=v");
    assert_int_equal(serve(f, "GET http://h.example/f/url?q HTTP/1.1\r\nHost: h.example"), 200);
    assert_body(f, "string:http://h.example/f/url?q");
    lh_response_free(&f->resp);
}

static void test_request_query_all(void **state)
{
    struct fx *f = *state;
    assert_int_equal(serve(f, "GET /all?a=1&b=2&a=x+y&&a=%41 HTTP/1.1\r\nHost: t\r\n"
                             "X-Name: a"), 200);
    assert_body(f, "1|x y|A#3");
    assert_int_equal(serve(f, "GET /all?a=1&b=2 HTTP/1.1\r\nHost: t\r\nX-Name: c"), 200);
    assert_body(f, "#0");
    assert_int_equal(serve(f, "GET /all HTTP/1.1\r\nHost: t\r\nX-Name: a"), 200);
    assert_body(f, "#0");
    /* keys compare decoded; a key without '=' has the value "" */
    assert_int_equal(serve(f, "GET /all?a%5Bb%5D=1&a%5bb%5d=%2F&a=3&a%5Bb%5D HTTP/1.1\r\n"
                             "Host: t\r\nX-Name: a[b]"), 200);
    assert_body(f, "1|/|#3");
    assert_int_equal(serve(f, "GET /all?k+1=a&k%201=b&k1=c HTTP/1.1\r\nHost: t\r\n"
                             "X-Name: k 1"), 200);
    assert_body(f, "a|b#2");
    assert_int_equal(serve(f, "GET /dot-call?a=1 HTTP/1.1\r\nHost: t"), 500);
    lh_response_free(&f->resp);
}

static void test_request_host_scheme_version(void **state)
{
    struct fx *f = *state;
    assert_int_equal(serve(f, "GET /f/host HTTP/1.1\r\nHost: example.com:8080"), 200);
    assert_body(f, "string:example.com");
    assert_int_equal(serve(f, "GET /f/host HTTP/1.1\r\nHost: Example.COM"), 200);
    assert_body(f, "string:Example.COM"); /* as sent */
    assert_int_equal(serve(f, "GET /f/host HTTP/1.1\r\nHost: [::1]:8080"), 200);
    assert_body(f, "string:[::1]");
    assert_int_equal(serve(f, "GET /f/host HTTP/1.1\r\nHost: [::1]"), 200);
    assert_body(f, "string:[::1]");
    assert_int_equal(serve(f, "GET /f/host HTTP/1.1\r\nHost: 127.0.0.1:1"), 200);
    assert_body(f, "string:127.0.0.1");
    /* an absolute-form target's authority replaces Host (RFC 9112 3.2.2) */
    assert_int_equal(serve(f, "GET http://abs.example:81/f/host HTTP/1.1\r\nHost: b:82"), 200);
    assert_body(f, "string:abs.example");
    assert_int_equal(serve(f, "GET /f/host HTTP/1.0"), 200); /* no Host at all */
    assert_body(f, "string:");
    assert_int_equal(serve(f, "GET /f/version HTTP/1.0"), 200);
    assert_body(f, "string:1.0");
    assert_get(f, "/f/version", "string:1.1");
    assert_get(f, "/f/scheme", "string:http");
    lh_response_free(&f->resp);
}

static void test_request_header(void **state)
{
    struct fx *f = *state;
    static const char three[] = "HTTP/1.1\r\nHost: t\r\nX-Foo: 1\r\nx-foo:  2 \r\n"
                                "Accept: */*\r\nX-FOO: 3";
    char head[256];
    snprintf(head, sizeof head, "GET /header?name=x-fOO %s", three);
    assert_int_equal(serve(f, head), 200);
    assert_body(f, "string:1, 2, 3"); /* in the order received */
    snprintf(head, sizeof head, "GET /headers?name=x-foo %s", three);
    assert_int_equal(serve(f, head), 200);
    assert_body(f, "3"); /* req.headers stays as documented: the last one */
    snprintf(head, sizeof head, "GET /header?name=ACCEPT %s", three);
    assert_int_equal(serve(f, head), 200);
    assert_body(f, "string:*/*");
    snprintf(head, sizeof head, "GET /header?name=x-fo %s", three);
    assert_int_equal(serve(f, head), 200);
    assert_body(f, "nil:");
    assert_int_equal(serve(f, "GET /header?name=x-e HTTP/1.1\r\nHost: t\r\nX-E:"), 200);
    assert_body(f, "string:"); /* present, empty */
    assert_int_equal(serve(f, "GET /no-name HTTP/1.1\r\nHost: t"), 500);
    lh_response_free(&f->resp);
}

static void test_request_ctx_spans_the_request(void **state)
{
    struct fx *f = *state;
    const char *v = NULL;
    /* the before hook sets a, the first route adds c and declines, the second reads
     * both and adds b, the after hook reads a and b */
    assert_int_equal(serve(f, "GET /ctx HTTP/1.1\r\nHost: t"), 200);
    assert_body(f, "declined");
    assert_int_equal(count(f, "X-Ctx", &v), 1);
    assert_string_equal(v, "1,2");
    /* no route: the 404's after hook still has the before hook's table */
    assert_int_equal(serve(f, "GET /ctx/none HTTP/1.1\r\nHost: t"), 404);
    assert_int_equal(count(f, "X-Ctx", &v), 1);
    assert_string_equal(v, "1,nil");
    assert_get(f, "/fresh", "nil"); /* every request has its own */
    assert_get(f, "/f/ctx", "table:"); /* a table, whatever its address... */
    lh_response_free(&f->resp);
}

static void test_request_unknown_fields(void **state)
{
    struct fx *f = *state;
    /* a name's length and first byte match a field's, the rest does not */
    static const char *const names[] = {"queri", "hosts", "urx", "ctX", "Query", "heade"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char target[32];
        snprintf(target, sizeof target, "/f/%s", names[i]);
        assert_get(f, target, "nil:");
    }
    assert_get(f, "/f/method", "string:GET");
    assert_get(f, "/f/remote_addr", "string:127.0.0.1");
    assert_get(f, "/f/header", "function:"); /* ...or a method */
    lh_response_free(&f->resp);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_route_and_json),  T(test_request_object_lifetime), T(test_lazy_fields_are_cached),
        T(test_time_limit),      T(test_os_exit_raises),          T(test_config_errors),
        T(test_loops_of_every_kind_end), T(test_sandbox), T(test_streamed_body),
        T(test_streamed_body_time_limit),
        cmocka_unit_test_setup_teardown(test_streamed_body_pauses, setup_long, teardown),
        /* 50 ms of CPU each: the short limit is wall-clock time, which a loaded
         * machine stretches past 100 ms */
        cmocka_unit_test_setup_teardown(test_coroutines_pause_and_go_on, setup_long, teardown),
        cmocka_unit_test_setup_teardown(test_memory_cap, setup_long, teardown),
        cmocka_unit_test_setup_teardown(test_headers_from_handlers, setup_headers, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers_are_500, setup_headers, teardown),
        cmocka_unit_test_setup_teardown(test_after_hook_headers, setup_headers, teardown),
        cmocka_unit_test_setup_teardown(test_request_url_and_query_string, setup_request,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_query_all, setup_request, teardown),
        cmocka_unit_test_setup_teardown(test_request_host_scheme_version, setup_request,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_header, setup_request, teardown),
        cmocka_unit_test_setup_teardown(test_request_ctx_spans_the_request, setup_request,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_unknown_fields, setup_request, teardown),
    };
#undef T
    return cmocka_run_group_tests_name("lua_host", tests, NULL, NULL);
}
