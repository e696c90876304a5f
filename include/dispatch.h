/* dispatch.h - one parsed request through the chain of steps that may answer it:
 * a CORS preflight, before hooks, Lua routes, static files, 405 for a routed path with
 * another method, the single-page-app fallback, 404; the answer is dressed (front.h:
 * the error body its client is best served by, CORS headers), then the after hooks
 * see the response. */
#ifndef LH_DISPATCH_H
#define LH_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "response.h"
#include "static.h"

struct lh_front;
struct lh_lua;
struct lua_State;

/* What a step of the chain did, and what lh_dispatch did. */
enum lh_step {
    LH_DECLINED,   /* nothing answered: the request goes on to the next step */
    LH_ANSWERED,   /* ctx->resp is filled */
    LH_SUSPENDED,  /* a Lua handler used up its time slice: call the step again later */
};

struct lh_ctx {
    const struct lh_request *req;
    struct lh_response *resp;     /* filled by lh_dispatch */
    const struct lh_static *st;
    struct lh_fcache *fcache;     /* the worker's small-file cache (may be NULL) */
    struct lh_lua *lua;           /* the worker's Lua state */
    struct lh_front *front;       /* cors, fallback, error_pages (front.h); NULL: none */
    const char *body;             /* the request body (decoded), body_len bytes */
    size_t body_len;
    const char *remote_addr;      /* client IP, NUL-terminated */
    bool dev_loopback;            /* --dev and the client is this machine: error detail */
    char *pathbuf;                /* scratch of pathcap bytes (at least target_len + 2) */
    size_t pathcap;
    /* set while dispatching */
    const char *path;             /* the normalised path, in pathbuf; a before hook's
                                   * rewrite is a Lua string its request object keeps */
    int rewrite_refused;          /* a before hook's rewrite was refused: 403, 404, 414 */
    const char *query;            /* raw query string after '?', NULL when none */
    size_t query_len;
    bool route_matched;           /* a route's pattern matched the path */
    const void *bad_json;         /* the error req:json() raised (the client's fault: 400) */
    char allow[128];              /* for a 405: the methods of the routes whose pattern matched */
    char *dev_error;              /* --dev: the page for the last Lua error */
    /* what a JSON error body says of the last failure (front.c), malloc'd, freed with
     * the request's Lua side (lh_lua_request_done): for err_status 400 req:json()'s
     * message; for 500, in --dev for this machine, the Lua error and its traceback */
    char *err_detail;
    char *err_trace;
    int err_status;               /* the status they explain (0: none) */
    bool json_route;              /* a route that ran has answered JSON before: the
                                   * built-in errors are JSON (front.c) */
    /* progress, so that a request whose Lua handler paused can go on later */
    int step;                     /* the next step of the chain */
    int lua_index;                /* hooks or routes already run in the current step */
    int co_ref;                   /* the running or paused call's coroutine (Lua registry) */
    struct lua_State *co;         /* that coroutine, while co_ref holds it */
    struct lua_State *wrapped_co; /* the innermost coroutine the handler resumed (lua_coro.c) */
    int req_ref;                  /* the request object (Lua registry) */
    int res_ref;                  /* an after hook's res table (Lua registry) */
    /* the time limit (lua_call.c): Lua run time, summed over every resume */
    int64_t lua_ns;               /* run time so far, of the request or its after hooks */
    int64_t resumed_at;           /* CLOCK_MONOTONIC ns: start of the running slice, or
                                   * of a wait that counts (charge_wait) */
    int64_t slice_end;            /* when the running slice should pause */
    bool timed_out;               /* the running call is over its time */
    bool hook_paused;             /* the last pause was the server's, at a slice's end */
    bool charge_wait;             /* the handler yielded by itself: the wait counts */
    bool in_after;                /* the after hooks run, with an allowance of their own */
    /* a wait the paused call asked for (sleep(), lua_wait.c): the server queues the
     * request once a timer of wait_ns has fired and clears wait_asked; -1 in wait_ns:
     * it could not (no memory), and sleep raises */
    bool wait_asked;
    int64_t wait_ns;
    /* or a wait on an event (wait.h: an outbound request): the server holds it with
     * lh_wait_hold instead of a timer. The call that asked reads and frees it when
     * resumed; one still here when the request ends is cancelled (lh_lua_request_done) */
    struct lh_wait *wait_op;
    int64_t head_length;          /* proxy(): a HEAD's Content-Length for the response
                                   * (-1: none; lua_resp.c hands it over) */
    struct lh_wait *wait_held;    /* one more to cancel when the request ends, waited
                                   * on or not (lh_wait_attach: a proxied body) */
    /* what runs, for the error log ("route GET /x/:id", "before hook 2"): kept as
     * pointers and formatted only when something is logged */
    const char *what_kind;        /* "route", "before" or "after" */
    const char *what_method;      /* a route's method and pattern (the router's strings) */
    const char *what_pattern;
    int what_route;               /* a route's id (its handler's number), 0 for a hook */
    int what_index;               /* a hook's number */
    /* a streamed body (lua_resp.c): a function that makes the body piece by piece,
     * called after the head is sent; the request and its object live on meanwhile */
    int stream_ref;               /* the function (Lua registry), LUA_NOREF when none */
    int64_t handler_ns;           /* the handler's run time (lua_ns before the after
                                   * hooks'): the generator's calls add to it */
    const char *stream_kind;      /* what_* of the handler that returned it */
    const char *stream_method, *stream_pattern;
    int stream_index;
    bool stream_started;          /* its first call was made */
};

/* Prepare ctx for a new request (everything but the fields the caller sets). */
void lh_dispatch_init(struct lh_ctx *ctx);

/* Answer ctx->req into ctx->resp. Never fails: a refusal is an error response.
 * Returns LH_ANSWERED (never LH_DECLINED: the last step answers 404), or
 * LH_ANSWERED with a body to stream (lh_response_streams(ctx->resp)): ctx is still
 * live, the caller calls lh_lua_stream_next until the end and then lh_dispatch_abort
 * (ctx must stay at its address, or be moved with lh_lua_ctx_moved); or
 * LH_SUSPENDED: a Lua handler paused; call lh_dispatch again with the same ctx (after
 * lh_lua_ctx_moved if it moved) to go on. */
enum lh_step lh_dispatch(struct lh_ctx *ctx);

/* Give up a suspended request (its connection went away), or end a streamed one. */
void lh_dispatch_abort(struct lh_ctx *ctx);

#endif
