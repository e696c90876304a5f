/* lua_int.h - what the files of the Lua host share: the state (struct lh_lua), the
 * result of one call into Lua, and the functions one file calls in another. Private
 * to src/; the public face is include/lua_host.h.
 *
 * A request's way through them: lua_steps.c runs the before hooks, the matching
 * routes and the after hooks; each handler or hook runs through lua_call.c (a
 * coroutine, the time limit, the error log; lua_devpage.c makes the --dev error
 * page); it sees the request object of lua_req.c, and lua_resp.c turns what it
 * returns (or the after hooks' res) into the response. lua_alloc.c is the state's
 * allocator and memory limit, lua_sandbox.c guards what handlers may not call, and
 * lua_host.c makes the state by running config.lua with route, before, after and log
 * installed. lua_wait.c has sleep(), which suspends a request for the server to
 * resume when a timer fires, and the worker table. lua_timer.c has timer.after and
 * timer.every, whose calls it drives through lua_call.c as the run queue does a
 * request's. */
#ifndef LH_LUA_INT_H
#define LH_LUA_INT_H

#include "dispatch.h"
#include "lua_host.h"
#include "response.h"
#include "router.h"

#include <lua.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Lua's small blocks: up to LH_SMALL_MAX bytes, in 16-byte size classes (see
 * lua_alloc.c). */
#define LH_SMALL_MAX 256
#define LH_SMALL_CLASS(n) (((n) - 1) / 16)

struct lh_chunk;

struct lh_lua {
    lua_State *L;
    struct lh_router *router;
    size_t mem_used, mem_limit;
    bool capped;              /* Lua code runs: mem_limit applies (see lua_alloc.c) */
    void *free_small[LH_SMALL_CLASS(LH_SMALL_MAX) + 1]; /* a free list per size class */
    struct lh_chunk *chunks;  /* every chunk, for lh_lua_free */
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
    int routes_ref;           /* registry: the handlers, by route id */
    int encode_ref;           /* registry: json.encode as config.lua found it */
    int cjson_encode_ref;     /* registry: lua-cjson's encoder, which json.encode calls */
    int req_meta_ref;         /* the request object's metatable (registry) */
    const void *req_meta;     /* the same table, to compare with (lua_topointer) */
    int spare_req_ref;        /* an emptied registry slot kept for the next request object */
    int nbefore, nafter;      /* hooks config.lua added: none, no look at the lists */
    /* routes that have answered JSON (a table, or a JSON Content-Type), by route id
     * (1..nroute_json - 1): their built-in errors are JSON too (front.c). Per worker,
     * for the life of the state. */
    bool *route_json;
    size_t nroute_json;
    bool any_route_json;
    struct lh_timer_list *timers; /* lua_timer.c: this state's timers (NULL: none yet) */
    char err_file[512];       /* where the last error was raised (for --dev) */
    int err_line;
};

/* Registry slots of the host (light userdata keys), made by lua_host.c: the before
 * and after hooks, and json.decode as config.lua started with it. The two that every
 * Lua request reads have numbers instead (struct lh_lua's routes_ref and encode_ref):
 * an integer key costs a third of a light userdata's hashed one. */
extern const char lh_host_key_before, lh_host_key_after, lh_host_key_decode;

/* The state's host: the allocator's user data, so no registry lookup is needed. */
static inline struct lh_lua *lh_host_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static inline int64_t lh_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- lua_alloc.c ---- */

/* A new Lua state whose allocator is lua's (pools and memory limit); NULL when out of
 * memory. */
lua_State *lh_alloc_new_state(struct lh_lua *lua);
/* Free the pools' chunks, after lua_close. */
void lh_alloc_free_chunks(struct lh_lua *lua);

/* ---- lua_call.c ---- */

enum lh_call_result {
    LH_CALL_OK,
    LH_CALL_YIELD,
    LH_CALL_ERROR,
    LH_CALL_TIMEOUT,
    LH_CALL_MEMORY,
    LH_CALL_BAD_JSON, /* the error req:json() raised reached the top: the client's (400) */
};

/* config.lua runs from now on: under a deadline of its own and the memory cap. */
void lh_call_begin_config(struct lh_lua *lua);
/* config.lua has run: no more count hook, no cap. */
void lh_call_end_config(struct lh_lua *lua);
/* Who runs in L, as sql tells transactions apart: the running call's coroutine (NULL
 * while config.lua loads). */
const void *lh_call_owner(lua_State *L);
/* Nonzero when the Lua code running in L (a request's, or config.lua) has used up its
 * time: a long C call (an SQL query) asks this to stop early. */
int lh_call_over_time(lua_State *L);
/* Message handler for lua_pcall: the error with a traceback. */
int lh_call_add_traceback(lua_State *L);
/* ctx is done with its coroutine; a cleanly finished one is kept for reuse. */
void lh_call_drop_thread(struct lh_lua *lua, struct lh_ctx *ctx, bool reusable);
/* What ctx is running, for the error log: "route GET /x/:id", "before hook 2".
 * Returns buf. */
const char *lh_call_describe(const struct lh_ctx *ctx, char *buf, size_t size);
/*
 * Run ctx's handler for one time slice: start it (the function and its nargs
 * arguments on top of lua->L) or, when ctx->co_ref holds a paused one, resume it.
 * LH_CALL_OK: its results are on lua->L's stack (*nres of them). LH_CALL_YIELD:
 * paused, call again later. Otherwise it failed: the error and traceback are logged
 * under lh_call_describe(ctx) and nothing is left on the stack. A call whose
 * request has used up its time is not resumed at all.
 */
enum lh_call_result lh_call_run_slice(struct lh_lua *lua, struct lh_ctx *ctx, int nargs,
                                      int *nres);

/* ---- lua_devpage.c ---- */

/* --dev: the 500 page for a loopback client: the error msg raised in what (a route or
 * hook), the source around file:line (when line > 0), the request. Returns a malloc'd
 * HTML page or NULL. */
char *lh_devpage_render_error(const struct lh_ctx *ctx, const char *what, const char *msg,
                              const char *file, int line);

/* ---- lua_wait.c ---- */

/* secs as a wait in *ns: 0, or -1 when it is not a finite number >= 0 (or absurdly
 * long). */
int lh_wait_seconds_ns(double secs, int64_t *ns);
/* Raise "<what>: cannot wait here: <reason>" unless the running call can wait (a
 * request's or a timer's, not config.lua, not inside table.sort or db:tx). */
void lh_wait_check(lua_State *L, const char *what);
/* A C function that waits for w (wait.h): suspend the running call (the server
 * holds w, and resumes the call once w is done; the time waiting is not run time)
 * with k as the continuation, which calls lh_wait_resumed first. w is the request's
 * meanwhile: a request that ends while it waits cancels it. Raises as lh_wait_check
 * does (w untouched then). */
struct lh_wait;
int lh_wait_yield(lua_State *L, const char *what, struct lh_wait *w, lua_KFunction k);
/* In the continuation: w is the caller's again, and done; raises (w cancelled) when
 * the wait was never taken (a level between could not pause). */
void lh_wait_resumed(lua_State *L, const char *what);
/* w is the running request's until detached, waited on or not (a proxied body
 * between its pieces): the request's end cancels it, whenever that comes. Detach it
 * before freeing it. One at a time. */
void lh_wait_attach(lua_State *L, struct lh_wait *w);
void lh_wait_detach(lua_State *L, struct lh_wait *w);
/* Install sleep() and the worker table (id and count nil until lh_lua_set_worker). */
void lh_wait_install(lua_State *L);

/* ---- lua_http.c ---- */

/* Install http (request, get, post) and proxy(); dir is the config file's folder, for
 * a relative ca_file. */
void lh_http_install(lua_State *L, const char *dir);
/* The length of the body the function at idx will give, when it is proxy()'s body of
 * a backend response that said its Content-Length (what is left of it); -1 for any
 * other function, whose length nobody knows before it ends. */
int64_t lh_http_stream_length(lua_State *L, int idx);

/* ---- lua_form.c ---- */

/* Push req.cookies for req: its Cookie headers' pairs, name to value (the first of a
 * name wins). */
void lh_form_push_cookies(lua_State *L, const struct lh_request *req);
/* Push req.form and req.files (two tables) for ctx's body, when its Content-Type is
 * application/x-www-form-urlencoded or multipart/form-data (else both empty). false,
 * with nothing pushed, when the body is malformed. */
bool lh_form_push_fields(lua_State *L, const struct lh_ctx *ctx);

/* ---- lua_req.c ---- */

/* Make the request object's metatable (while the state is made), kept under the
 * registry number lua->req_meta_ref. */
void lh_req_create_meta(lua_State *L);
/* Push ctx's request object, creating it on first use. */
void lh_req_push_object(struct lh_lua *lua, struct lh_ctx *ctx);
/* req.params becomes m's captures (an earlier route's go). */
void lh_req_set_params(struct lh_lua *lua, struct lh_ctx *ctx, const struct lh_route_match *m);

/* ---- lua_resp.c ---- */

/* Has route id answered JSON before (in this state)? */
static inline bool lh_route_answers_json(const struct lh_lua *lua, int id)
{
    return lua->any_route_json && id > 0 && (size_t)id < lua->nroute_json &&
           lua->route_json[id];
}

/* Run or resume ctx's handler (to start: the function and nargs arguments on top of
 * the stack) and, once it has returned, turn its results into the response. */
enum lh_step lh_resp_run_handler(struct lh_lua *lua, struct lh_ctx *ctx, int nargs);
/* A body (its address, as a light userdata) that C functions return as a handler:
 * answer the status as a built-in error page, which lh_front_dress gives its body. */
extern const char lh_resp_builtin_error;
/* Headers (its address, as a light userdata) that C functions return as a handler
 * called by the server itself: the status and headers are in ctx->resp already, from
 * lh_response_init on; only the body is to be taken (proxy()'s answers). */
extern const char lh_resp_prefilled;
/* Install file() and redirect(), the helpers that build a handler's return value. */
void lh_resp_install_helpers(lua_State *L);
/* A failed call becomes the response, a built-in error whose body lh_front_dress
 * chooses: 503 for a timeout, 400 for req:json() on bad JSON, 500 otherwise. */
void lh_resp_answer_failure(struct lh_ctx *ctx, enum lh_call_result r);
/* Push an after hook's res for resp. */
void lh_resp_push_res(lua_State *L, const struct lh_response *resp);
/* Make resp's headers what the res table at idx says. Returns false on a bad header
 * (logged); the caller answers 500. */
bool lh_resp_apply_res(struct lh_lua *lua, const struct lh_ctx *ctx, int idx,
                       struct lh_response *resp);

/* ---- lua_sandbox.c ---- */

/* Replace what handlers may not call with guards (the standard libraries are open). */
void lh_sandbox_guard_libs(lua_State *L);
/* unsafe_libs: give every guarded function its original back. */
void lh_sandbox_unguard_libs(lua_State *L);

#endif
