/* lua_host.h - the Lua side of luahttpd: one state per worker, made by running
 * config.lua with route(), before(), after(), json and log installed; the request
 * object handlers see; and every call into Lua, each under a time and memory limit. */
#ifndef LH_LUA_HOST_H
#define LH_LUA_HOST_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "dispatch.h"

struct lh_lua;
struct lua_State;

/* The signal of the timer that watches long Lua calls (lua_call.c), made on first use
 * in the process that runs handlers: that process must leave it unblocked and its
 * handler in place. (SIGRTMIN is a worker's parent-death signal, worker.c.) */
#define LH_LUA_WATCH_SIGNAL (SIGRTMIN + 1)

/*
 * Make a state and run config.lua (path) in it: settings go into c (which must be
 * zeroed; it is filled as lh_config_load does), routes and hooks stay in the state.
 * Returns the state, or NULL with a one-line message naming file and line in err
 * (c is then freed).
 */
struct lh_lua *lh_lua_new(const char *path, struct lh_config *c, bool dev, char *err,
                          size_t errlen);

/* Close the state. Safe on NULL. */
void lh_lua_free(struct lh_lua *lua);

/* Number of routes config.lua declared. */
size_t lh_lua_route_count(const struct lh_lua *lua);

/* Does a route name this method, or does a route for any method ("*", a proxy())
 * match path? (Methods neither standard nor routed get 501.) Safe on NULL. */
bool lh_lua_has_method(const struct lh_lua *lua, const char *method, size_t len,
                       const char *path);

/*
 * The dispatch steps that run Lua; each returns an enum lh_step (dispatch.h). A Lua
 * error answers 500 (the error and its traceback go to the error log), a handler
 * over handler_timeout_ms 503. Every Lua call runs in a coroutine that pauses after a
 * short slice of CPU time, so that one worker can serve other clients while a
 * handler computes: the step then returns LH_SUSPENDED and is called again with the
 * same ctx to go on.
 *   before: runs the before hooks in order; may rewrite ctx->path.
 *   route:  runs the matching routes in precedence order until one returns something.
 *   method_not_allowed: 405 with Allow when a route's pattern matched but not its method.
 *   after:  runs the after hooks on ctx->resp (LH_ANSWERED when done).
 */
enum lh_step lh_lua_before(struct lh_lua *lua, struct lh_ctx *ctx);
enum lh_step lh_lua_route(struct lh_lua *lua, struct lh_ctx *ctx);
enum lh_step lh_lua_method_not_allowed(struct lh_lua *lua, struct lh_ctx *ctx);
enum lh_step lh_lua_after(struct lh_lua *lua, struct lh_ctx *ctx);

/* A streamed body (a handler returned a function as its body): one call of the
 * function, or one time slice of it, per call of lh_lua_stream_next. PIECE: it
 * returned a string, handed to sink(arg, piece, len) before this returns (an empty
 * one too); END: it returned nil (or nothing); PAUSED: its slice is over, call again
 * to go on; FAILED: it raised an error, returned something else or ran past the
 * request's time (handler_timeout_ms, counted with the handler's own time): logged,
 * the stream is to be cut. ctx is the request lh_dispatch answered with the stream. */
enum lh_stream_result { LH_STREAM_PIECE, LH_STREAM_END, LH_STREAM_PAUSED, LH_STREAM_FAILED };
typedef void (*lh_stream_sink)(void *arg, const char *piece, size_t len);
enum lh_stream_result lh_lua_stream_next(struct lh_lua *lua, struct lh_ctx *ctx,
                                         lh_stream_sink sink, void *arg);

/* worker.id and worker.count, as handlers see them: this process's slot (0-based) and
 * how many workers there are. Called in each worker for its state (while config.lua
 * ran, in the master before the fork, both were nil). 0, or -1 when out of memory.
 * Safe on NULL. */
int lh_lua_set_worker(struct lh_lua *lua, int id, int count);

/* ctx was copied to a new address (a paused request moved off the worker's scratch):
 * point the Lua side at the new one. */
void lh_lua_ctx_moved(struct lh_lua *lua, struct lh_ctx *ctx);

/* The request whose Lua code runs in L's state now (NULL outside requests): for the
 * modules that add Lua functions. */
struct lh_ctx *lh_lua_running(struct lua_State *L);

/* End of a request (or its abandonment): the request object handlers may have kept
 * stops working, a paused handler and a streamed body's function are dropped, and
 * what was kept of a failure (ctx->dev_error, err_detail, err_trace) is freed. */
void lh_lua_request_done(struct lh_lua *lua, struct lh_ctx *ctx);

#endif
