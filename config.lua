-- config.lua - settings for luahttpd.
--
-- This file is ordinary Lua 5.4. Every line below shows a setting with its default
-- value, so deleting a line changes nothing. Edit a value and restart (or send the
-- server SIGHUP) to apply it; `./luahttpd --check` tells you whether the file is valid.
-- A misspelt setting name gives a warning, a wrong type or value an error with the
-- line number.

-- Where to listen -------------------------------------------------------------------

port = 8080             -- TCP port; 0 lets the system pick a free one
host = "127.0.0.1"      -- only this machine can connect; "0.0.0.0" opens it to the network

-- What to serve ---------------------------------------------------------------------

docroot   = "html"          -- folder of files to serve, relative to this file's folder
index     = "index.html"    -- file served when a folder is asked for ("/" included)
-- autoindex = false        -- true: list a folder's files when it has no index file;
                            -- left unset, it is false, but true under --dev
dotfiles  = false           -- true: also serve hidden files such as .env (rarely wise)

-- How many workers ------------------------------------------------------------------

workers = 1             -- worker processes (under one master that restarts any that
                        -- crash or hang); "auto" starts one per CPU core

-- Logs ------------------------------------------------------------------------------

access_log = "-"        -- one line per request: a file path, "-" for the terminal, false for none
error_log  = "-"        -- start/stop messages, warnings and Lua errors: a file path or "-"

-- Connections -----------------------------------------------------------------------

shutdown_timeout = 5    -- seconds to let requests in flight finish on Ctrl-C / SIGTERM

keepalive = {
  enabled        = true,  -- reuse a connection for several requests; false closes it after each
  timeout        = 15,    -- seconds an idle connection is kept open
  max_requests   = 1000,  -- requests on one connection before it is closed
  max_per_client = 64,    -- connections one client IP may hold open; more get 503
}

max_connections = 10000 -- connections open at once, all clients together (at most
                        -- 1048576); more get 503

-- Limits that protect the server ----------------------------------------------------

limits = {
  header_bytes       = 8192,     -- request line + headers; larger requests get 431 (or 414)
  body_bytes         = 1048576,  -- request body (1 MiB); larger bodies get 413
  request_timeout    = 10,       -- seconds a client has to send a whole request; then 408
  handler_timeout_ms = 2000,     -- how long a request's Lua code may run (summed over its
                                 -- pauses for other clients); then it is stopped, 503
  lua_memory_mb      = 64,       -- memory one Lua state may use; over it the request gets 500
  stall_timeout      = 10,       -- seconds a worker may be stuck in one C call (a runaway
                                 -- string.find, say) before it is killed and replaced
  shared_mb          = 16,       -- memory reserved for the store all workers share
}

-- Serving front ends ----------------------------------------------------------------

cors = false            -- true lets pages of any origin call this server; or a table:
                        -- { origins = { "https://app.example" }, methods = { "GET", "POST" },
                        --   headers = { "Content-Type" }, credentials = false, max_age = 600 }
fallback = false        -- "index.html": a page that is not found gets this file instead,
                        -- for single-page apps that route in the browser
compress = true         -- gzip text responses over 1 KiB for clients that accept it
error_pages = {}        -- { [404] = "404.html", [500] = "50x.html" }: files in docroot
                        -- whose body an error gets (JSON clients get JSON errors)

-- true gives handlers os.execute, io.popen, debug.* and binary chunks back: each can
-- stall every client of the worker or switch off the time limit above.
unsafe_libs = false

-- Lua routes and hooks ----------------------------------------------------------------
--
-- A route answers requests for a path pattern with a Lua function. ":name" captures a
-- segment into req.params.name, a final "*" the rest of the path. A handler returns a
-- body (a string, or a table sent as JSON), or status, body, headers (a header's value
-- may be a list: ["Set-Cookie"] = { "a=1", "b=2" }); returning nothing passes the
-- request on to the next route, then to the files in docroot.

route("GET", "/hello/:name", function(req)
  return { hello = req.params.name }    -- GET /hello/world -> {"hello":"world"}
end)

-- Routes can live in their own files in scripts/: this one is a small JSON API,
local api = require("api")
-- and this one a login form with a session cookie, and file uploads (/login, /upload).
require("forms")

-- A before hook runs for every request before routing: here, a token for /admin/.
before(function(req)
  if req.path:sub(1, 7) == "/admin/" and req.headers["authorization"] ~= "Bearer letmein" then
    return 401, { error = "this needs: Authorization: Bearer letmein" },
           { ["WWW-Authenticate"] = "Bearer" }
  end
end)

route("GET", "/admin/stats", function(req)
  return { items = api.count() }
end)

-- An after hook sees every response, files and errors included.
after(function(req, res)
  res.headers["X-Powered-By"] = "luahttpd"
end)

-- Handlers may wait without blocking the worker: sleep(s), http.get(url),
-- timer.every(s, fn). Forward a path to a backend on another port, /backend/x -> /x:
-- route("*", "/backend/*", proxy("http://127.0.0.1:3000"))
