"""CONTRACT section 3: routes, the request object, return values, hooks, helpers and
errors in Lua; section 2's reload and --check for the Lua part of the config."""

import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

from harness import SLOW, Reader, ServerTest, connect, curl, get, leave, request, run

API = r'''
route("GET", "/hello/:name", function(req)
  return { hello = req.params.name }
end)
route("GET", "/text", function(req) return "plain body" end)
route("GET", "/full", function(req)
  return 201, "made", { ["X-Thing"] = "yes", ["Content-Type"] = "text/plain" }
end)
route("GET", "/two", function(req) return "b", { ["X-Two"] = "2" } end)
route("GET", "/nobody", function(req) return 204 end)
route("GET", "/users/me", function(req) return "exact" end)
route("GET", "/users/:id", function(req) return "capture " .. req.params.id end)
route("GET", "/files/*", function(req) return "rest=" .. req.params["*"] end)
route("GET", "/pass", function(req) end)
route("GET", "/pass", function(req) return "second" end)
route("GET", "/static.txt", function(req) end)
route("POST", "/only-post", function(req) return "posted" end)
route("PURGE", "/cache", function(req) return "purged" end)
route("*", "/any", function(req) return req.method end)
route("POST", "/echo", function(req)
  return {
    method = req.method, path = req.path, query = req.query,
    headers = { x = req.headers["x-custom"], ct = req.headers["content-type"] },
    body = req.body, remote = req.remote_addr,
  }
end)
route("POST", "/json", function(req)
  local t = req:json()
  return { got = t, n = #t.list, empty = t.empty }
end)
route("GET", "/empty-array", function(req) return { items = json.empty_array, obj = {} } end)
route("GET", "/roundtrip", function(req) return json.decode('{"a":[],"b":{}}') end)
route("GET", "/boom", function(req) error("kaboom") end)
route("GET", "/nil-index", function(req) local t = nil; return t.x end)
route("GET", "/exit", function(req) os.exit(1) end)
route("GET", "/stdin", function(req) return io.read("l") end)
route("GET", "/loop", function(req) while true do end end)
route("GET", "/pcall-loop", function(req)
  while true do pcall(function() while true do end end) end
end)
route("GET", "/bomb", function(req)
  local t, s = {}, string.rep("x", 1024 * 1024)
  for i = 1, 1e9 do t[i] = s .. i end
end)
route("GET", "/after-bomb", function(req) return "still alive" end)
kept = nil
route("GET", "/keep", function(req) kept = req; return "kept" end)
route("GET", "/use-kept", function(req) return kept.method end)
route("GET", "/log", function(req) log("hello from", req.path, 42); return "logged" end)
route("GET", "/bad-status", function(req) return 42, "x" end)
route("GET", "/bad-header", function(req) return "x", { ["X-Bad"] = "a\r\nInjected: 1" } end)
'''

FILES = {"static.txt": "from disk", "index.html": "home", "only-post": "a file",
         "sub/page.html": "sub page"}


class Routes(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server('error_log = "error.log"\nlimits = { handler_timeout_ms = 300, '
                             'lua_memory_mb = 32 }\n' + API, files=FILES)

    def errlog(self):
        with open(os.path.join(self.s.dir, "error.log")) as f:
            return f.read()

    def test_table_is_json(self):
        status, h, body = curl(self.s.url("/hello/world"))
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(json.loads(body), {"hello": "world"})

    def test_string_is_html(self):
        status, h, body = curl(self.s.url("/text"))
        self.assertEqual((status, body), (200, b"plain body"))
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")

    def test_status_body_headers(self):
        status, h, body = curl(self.s.url("/full"))
        self.assertEqual((status, body, h["x-thing"]), (201, b"made", "yes"))
        self.assertEqual(h["content-type"], "text/plain")
        status, h, body = curl(self.s.url("/two"))
        self.assertEqual((status, body, h["x-two"]), (200, b"b", "2"))
        status, h, body = curl(self.s.url("/nobody"))
        self.assertEqual((status, body), (204, b""))

    def test_precedence_and_wildcard(self):
        self.assertEqual(curl(self.s.url("/users/me"))[2], b"exact")
        self.assertEqual(curl(self.s.url("/users/42"))[2], b"capture 42")
        self.assertEqual(curl(self.s.url("/users/a%20b"))[2], b"capture a b")
        self.assertEqual(curl(self.s.url("/files/a/b.txt"))[2], b"rest=a/b.txt")

    def test_returning_nothing_passes_on(self):
        self.assertEqual(curl(self.s.url("/pass"))[2], b"second")
        self.assertEqual(curl(self.s.url("/static.txt"))[:3:2], (200, b"from disk"))

    def test_get_routes_answer_head(self):
        r, _ = request(self.s.port, b"HEAD /text HTTP/1.1\r\nHost: x\r\n\r\n" + get("/text"))
        self.assertEqual((r.status, r.header("Content-Length")), (200, "10"))
        # HEAD sent no body: the next response follows right away
        s = connect(self.s.port)
        s.sendall(b"HEAD /text HTTP/1.1\r\nHost: x\r\n\r\n" + get("/two"))
        rd = Reader(s)
        rd.response(head_request=True)
        self.assertEqual(rd.response().body, b"b")
        s.close()

    def test_method_not_allowed(self):
        status, h, _ = curl("-X", "DELETE", self.s.url("/hello/x"))
        self.assertEqual(status, 405)
        self.assertEqual(h["allow"], "GET, HEAD")
        status, h, _ = curl(self.s.url("/only-post"))  # a static file serves it
        self.assertEqual(status, 200)
        status, h, _ = curl("-X", "PUT", self.s.url("/only-post"))
        self.assertEqual(status, 405)

    def test_methods_named_by_routes(self):
        self.assertEqual(curl("-X", "PURGE", self.s.url("/cache"))[:3:2], (200, b"purged"))
        self.assertEqual(curl("-X", "BREW", self.s.url("/cache"))[0], 501)
        self.assertEqual(curl("-X", "PATCH", self.s.url("/any"))[2], b"PATCH")

    def test_request_object(self):
        status, _, body = curl("-X", "POST", "-H", "X-Custom: abc", "-H",
                               "Content-Type: text/plain", "--data-binary", "the body",
                               self.s.url("/echo?a=1&b=x+y&a=2&c=%2F"))
        self.assertEqual(status, 200)
        got = json.loads(body)
        self.assertEqual(got["method"], "POST")
        self.assertEqual(got["path"], "/echo")
        self.assertEqual(got["query"], {"a": "2", "b": "x y", "c": "/"})
        self.assertEqual(got["headers"], {"x": "abc", "ct": "text/plain"})
        self.assertEqual(got["body"], "the body")
        self.assertEqual(got["remote"], "127.0.0.1")

    def test_req_json(self):
        status, _, body = curl("-X", "POST", "--data-binary", '{"list":[1,2,3],"empty":[]}',
                               self.s.url("/json"))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"got": {"list": [1, 2, 3], "empty": []}, "n": 3,
                                            "empty": []})
        status, _, _ = curl("-X", "POST", "--data-binary", "{not json", self.s.url("/json"))
        self.assertEqual(status, 400)

    def test_empty_arrays_stay_arrays(self):
        self.assertEqual(json.loads(curl(self.s.url("/empty-array"))[2]),
                         {"items": [], "obj": {}})
        self.assertEqual(json.loads(curl(self.s.url("/roundtrip"))[2]), {"a": [], "b": {}})

    def test_error_gives_500_and_server_lives(self):
        status, _, body = curl(self.s.url("/boom"))
        self.assertEqual(status, 500)
        self.assertNotIn(b"kaboom", body)  # no detail outside --dev
        self.assertEqual(curl(self.s.url("/nil-index"))[0], 500)
        self.wait_for(lambda: "kaboom" in self.errlog(), what="error in the log")
        log = self.errlog()
        self.assertRegex(log, r"config\.lua:\d+: kaboom")
        self.assertIn("stack traceback", log)
        self.assertIn("/boom", log)
        self.assertEqual(curl(self.s.url("/text"))[2], b"plain body")

    def test_blocked_functions(self):
        for path in ("/exit", "/stdin"):
            self.assertEqual(curl(self.s.url(path))[0], 500)
        self.assertIsNone(self.s.proc.poll())
        self.wait_for(lambda: "os.exit is not available" in self.errlog(), what="os.exit error")
        self.assertIn("io.read is not available", self.errlog())

    def test_timeout_503_others_served(self):
        results = {}

        def slow(path):
            results[path] = curl(self.s.url(path), timeout=10)[0]

        t = threading.Thread(target=slow, args=("/loop",))
        t0 = time.time()
        t.start()
        time.sleep(0.05)
        self.assertEqual(curl(self.s.url("/text"), timeout=5)[2], b"plain body")
        t.join(10 * SLOW)
        self.assertEqual(results["/loop"], 503)
        self.assertLess(time.time() - t0, 3 * SLOW)
        self.assertEqual(curl(self.s.url("/pcall-loop"), timeout=10)[0], 503)
        self.assertEqual(curl(self.s.url("/text"))[2], b"plain body")

    def test_memory_bomb_500_then_alive(self):
        self.assertEqual(curl(self.s.url("/bomb"), timeout=20)[0], 500)
        self.assertEqual(curl(self.s.url("/after-bomb"))[2], b"still alive")
        self.assertIn("lua_memory_mb", self.errlog())

    def test_small_object_bomb_500_then_alive(self):
        # regression: the error message and traceback were made under the cap that
        # the handler had used up, and Lua aborted the process
        s = self.server('limits = { handler_timeout_ms = 60000, lua_memory_mb = 2 }\n'
                        'route("GET", "/small-bomb", function(req)\n'
                        '  local t = {} for i = 1, 1e8 do t[i] = { i } end end)\n'
                        'route("GET", "/alive", function(req) return "still alive" end)\n')
        self.assertEqual(curl(s.url("/small-bomb"), timeout=30)[0], 500)
        self.assertEqual(curl(s.url("/alive"))[2], b"still alive")
        self.assertIsNone(s.proc.poll())

    def test_kept_request_object_raises(self):
        self.assertEqual(curl(self.s.url("/keep"))[2], b"kept")
        self.assertEqual(curl(self.s.url("/use-kept"))[0], 500)
        self.wait_for(lambda: "after its request ended" in self.errlog(), what="error")

    def test_log_helper(self):
        self.assertEqual(curl(self.s.url("/log"))[2], b"logged")
        self.wait_for(lambda: "hello from\t/log\t42" in self.errlog(), what="log line")
        self.assertRegex(self.errlog(), r"hello from\t/log\t42\n")  # and nothing after
        self.assertRegex(self.errlog(),
                         r"config\.lua:\d+: \[route GET /log\] \[GET /log\] hello from")

    def test_bad_return_values_500(self):
        self.assertEqual(curl(self.s.url("/bad-status"))[0], 500)
        status, h, _ = curl(self.s.url("/bad-header"))
        self.assertEqual(status, 500)
        self.assertNotIn("injected", h)


class Hooks(ServerTest):
    CONFIG = r'''
before(function(req)
  if req.path:sub(1, 5) == "/old/" then req.path = "/new/" .. req.path:sub(6) end
  if req.path:sub(1, 8) == "/legacy/" then req.path = "/docs/" .. req.path:sub(9) end
end)
before(function(req)
  if req.path:sub(1, 9) == "/private/" and req.headers["x-token"] ~= "s3cret" then
    return 401, { error = "no token" }
  end
end)
after(function(req, res)
  res.headers["X-Status-Seen"] = tostring(res.status)
  res.headers["X-Powered-By"] = "lua"
end)
route("GET", "/new/:name", function(req) return "new " .. req.params.name end)
route("GET", "/private/data", function(req) return "secret data" end)
'''

    def test_before_rewrite_and_answer(self):
        s = self.server(self.CONFIG, files={"docs/file.txt": "rewritten to disk"})
        self.assertEqual(curl(s.url("/old/bob"))[2], b"new bob")
        self.assertEqual(curl(s.url("/legacy/file.txt"))[2], b"rewritten to disk")
        # a rewrite cannot leave the docroot: it is normalised like a request path
        self.assertIn(curl(s.url("/legacy/..%2f..%2fconfig.lua"))[0], (403, 404))
        status, _, body = curl(s.url("/private/data"))
        self.assertEqual((status, json.loads(body)), (401, {"error": "no token"}))
        self.assertEqual(curl("-H", "X-Token: s3cret", s.url("/private/data"))[2],
                         b"secret data")

    def test_after_sees_every_response(self):
        s = self.server(self.CONFIG, files={"a.txt": "A"})
        for path, status in (("/old/x", 200), ("/a.txt", 200), ("/missing", 404)):
            st, h, _ = curl(s.url(path))
            self.assertEqual(st, status)
            self.assertEqual(h["x-status-seen"], str(status))
            self.assertEqual(h["x-powered-by"], "lua")

    def test_hook_error_is_500(self):
        s = self.server('before(function(req) if req.path == "/x" then error("hook") end end)\n',
                        files={"a.txt": "A"})
        self.assertEqual(curl(s.url("/x"))[0], 500)
        self.assertEqual(curl(s.url("/a.txt"))[2], b"A")


class LuaConfig(ServerTest):
    def test_bad_route_pattern_is_a_config_error(self):
        s = self.server('\nroute("GET", "no-slash", function() end)\n', expect_start=False)
        self.assertEqual(s.wait(10 * SLOW), 1)
        self.assertRegex(s.stderr(), r"config\.lua:3:")
        code, out, err = run(["--check", "-c", s.config_path])
        self.assertEqual(code, 1)
        self.assertIn("config.lua:3:", out + err)

    def test_routes_in_required_module(self):
        s = self.server('require("api")\n', dirfiles={
            "scripts/api.lua": 'route("GET", "/m", function() return "from module" end)\n'})
        self.assertEqual(curl(s.url("/m"))[2], b"from module")

    def test_sighup_reloads_routes(self):
        s = self.server('route("GET", "/v", function() return "one" end)\n')
        kept = connect(s.port)
        rd = Reader(kept)
        kept.sendall(get("/v"))
        self.assertEqual(rd.response().body, b"one")
        s.rewrite_config('route("GET", "/v", function() return "two" end)\n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: curl(s.url("/v"))[2] == b"two", what="new route")
        kept.sendall(get("/v"))
        self.assertEqual(rd.response().body, b"two")
        s.rewrite_config('route("GET", "/v", function() return "three" end\n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: "reload failed" in s.stderr(), what="reload error")
        self.assertEqual(curl(s.url("/v"))[2], b"two")
        kept.close()

    def test_dev_error_page_for_loopback(self):
        s = self.server('-- line 2\nroute("GET", "/boom", function()\n'
                        '  local x = "<tag>"\n  error("dev detail " .. x)\nend)\n',
                        args=["--dev"])
        status, h, body = curl("-H", "X-Probe: seen", s.url("/boom?q=1"))
        self.assertEqual(status, 500)
        self.assertIn("text/html", h["content-type"])
        self.assertIn(b"dev detail &lt;tag&gt;", body)      # the error, escaped
        self.assertIn(b"stack traceback", body)
        self.assertRegex(body, rb"<b>\s*5 \|\s+error\(")     # the failing line, marked
        self.assertIn(b"local x", body)                      # and the lines around it
        self.assertIn(b"GET /boom?q=1", body)                # the request summary
        self.assertIn(b"X-Probe", body)
        plain = self.server('route("GET", "/boom", function() error("dev detail") end)\n')
        status, _, body = curl(plain.url("/boom"))
        self.assertEqual(status, 500)
        self.assertNotIn(b"dev detail", body)


class DevMode(ServerTest):
    def test_dev_reloads_on_save(self):
        s = self.server('require("greeting")\nroute("GET", "/v", function() return "one" end)\n',
                        args=["--dev"],
                        dirfiles={"scripts/greeting.lua":
                                  'route("GET", "/g", function() return "hi" end)\n'})
        self.assertEqual(curl(s.url("/v"))[2], b"one")
        time.sleep(0.05)
        s.rewrite_config('require("greeting")\nroute("GET", "/v", function() return "two" end)\n')
        t = time.time()
        self.wait_for(lambda: curl(s.url("/v"))[2] == b"two", timeout=3, what="config edit")
        self.assertLess(time.time() - t, 1.5 * SLOW)
        with open(os.path.join(s.dir, "scripts", "greeting.lua"), "w") as f:
            f.write('route("GET", "/g", function() return "hello" end)\n')
        self.wait_for(lambda: curl(s.url("/g"))[2] == b"hello", timeout=3, what="module edit")
        # a broken save keeps the last good config serving
        s.rewrite_config('route("GET", "/v", function() return "three" end\n')
        self.wait_for(lambda: "reload failed" in s.stderr(), what="reload error")
        self.assertEqual(curl(s.url("/v"))[2], b"two")

    def test_without_dev_no_reload_on_save(self):
        s = self.server('route("GET", "/v", function() return "one" end)\n')
        s.rewrite_config('route("GET", "/v", function() return "two" end)\n')
        time.sleep(1.0)
        self.assertEqual(curl(s.url("/v"))[2], b"one")


class Preemption(ServerTest):
    """With one worker, a handler that computes for long does not hold others up.
    The work is sized by time or by a flag file, never by a count of iterations that
    a slow machine (valgrind) could not finish in time."""

    CONFIG = r'''
workers = 1
limits = { handler_timeout_ms = 1500 }
route("GET", "/spin", function(req) shared.set(req.path, 1) while true do end end)
-- computes until the file "go" appears beside config.lua (or 60 s of CPU pass)
route("GET", "/sum", function(req)
  shared.set(req.path, 1)
  local s, n, t0 = 0, 0, os.clock()
  while os.clock() - t0 < 60 do
    for i = n + 1, n + 100000 do s = s + i % 7 end
    n = n + 100000
    local f = io.open("go") if f then f:close() break end
  end
  return { sum = s, n = n }
end)
route("GET", "/quick", function(req) return "quick" end)
route("GET", "/started", function(req) return tostring(shared.get(req.query.p)) end)
'''

    def started(self, s, path):
        """Wait until the handler for path has begun (answered between its slices)."""
        self.wait_for(lambda: curl(s.url("/started?p=" + path))[2] == b"1",
                      what=path + " to start")

    def test_others_served_while_a_handler_loops(self):
        s = self.server(self.CONFIG, files={"a.txt": "A"})
        results = {}

        def spin():
            results["spin"] = curl(s.url("/spin"), timeout=10)[0]

        t = threading.Thread(target=spin)
        t0 = time.time()
        t.start()
        self.started(s, "/spin")  # the handler is looping now
        for path, want in (("/quick", b"quick"), ("/a.txt", b"A")):
            t1 = time.time()
            self.assertEqual(curl(s.url(path), timeout=5)[2], want)
            self.assertLess(time.time() - t1, 0.5 * SLOW, "%s waited for the looping handler" % path)
        self.assertNotIn("spin", results)  # still looping while the others were answered
        t.join(10 * SLOW)
        self.assertEqual(results["spin"], 503)
        self.assertGreater(time.time() - t0, 1.3)

    def sum_in_thread(self, s, results):
        def long_sum():
            results["sum"] = curl(s.url("/sum"), timeout=60)

        t = threading.Thread(target=long_sum)
        t.start()
        return t

    def check_sum(self, result):
        status, _, body = result
        self.assertEqual(status, 200)
        got = json.loads(body)
        self.assertGreater(got["n"], 0)
        self.assertEqual(got["sum"], sum(i % 7 for i in range(1, got["n"] + 1)))

    def test_paused_handler_finishes_with_its_result(self):
        s = self.server(self.CONFIG.replace("1500", "60000"))
        results = {}
        t = self.sum_in_thread(s, results)
        self.started(s, "/sum")
        # it computes across many pauses while others are answered
        for _ in range(3):
            time.sleep(0.1)
            self.assertEqual(curl(s.url("/quick"), timeout=5)[2], b"quick")
        self.assertNotIn("sum", results)
        open(os.path.join(s.dir, "go"), "w").close()
        t.join(60 * SLOW)
        self.check_sum(results["sum"])

    def test_reload_while_a_handler_is_paused(self):
        s = self.server(self.CONFIG.replace("1500", "60000"))
        results = {}
        t = self.sum_in_thread(s, results)
        self.started(s, "/sum")  # on the state before the reload
        s.rewrite_config(self.CONFIG.replace('"quick"', '"reloaded"'))
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: curl(s.url("/quick"))[2] == b"reloaded", what="reload")
        self.assertNotIn("sum", results)  # still computing on the old state
        open(os.path.join(s.dir, "go"), "w").close()
        t.join(60 * SLOW)
        self.check_sum(results["sum"])  # finished on the state it started in
        self.assertIsNone(s.proc.poll())


class Scheduler(ServerTest):
    """CONTRACT 3, errors in Lua: every loop is stopped (a loop around
    coroutine.yield() included) with 503 within handler_timeout_ms, others are
    served meanwhile, coroutines a handler makes work at any uptime, and a handler
    whose client has gone is abandoned."""

    CONFIG = r'''
workers = 1
error_log = "error.log"
access_log = "access.log"
limits = { handler_timeout_ms = 1000 }
route("GET", "/yield-loop", function(req) shared.set(req.path, 1) while true do coroutine.yield() end end)
route("GET", "/gen-loop", function(req)
  shared.set(req.path, 1)
  coroutine.wrap(function() while true do end end)()
end)
route("GET", "/started", function(req) return tostring(shared.get(req.query.p)) end)
route("GET", "/unhook-loop", function(req) shared.set(req.path, 1) pcall(debug.sethook) while true do end end)
route("GET", "/pcall-yield-loop", function(req)
  shared.set(req.path, 1)
  while true do pcall(coroutine.yield) end
end)
-- a generator that yields for 0.1 s of CPU time, many time slices
route("GET", "/gen", function(req)
  local gen = coroutine.wrap(function()
    local t0, i = os.clock(), 0
    while os.clock() - t0 < 0.1 do i = i + 1; coroutine.yield(i) end
  end)
  local s, n = 0, 0
  for v in gen do s = s + v; n = n + 1 end
  return { n = n, s = s }
end)
-- the work loop itself, timed in CPU seconds; and the same loop n times
local function work(n) for k = 1, n do for i = 1, 1000 do end end end
route("GET", "/rate/:n", function(req)
  local t0 = os.clock()
  work(tonumber(req.params.n))
  return tostring(os.clock() - t0)
end)
route("GET", "/work/:n", function(req)
  work(tonumber(req.params.n))
  return "done"
end)
route("GET", "/quick", function(req) return "quick" end)
'''

    def setUp(self):
        super().setUp()
        self.s = self.server(self.CONFIG)

    def log(self, name="error.log"):
        with open(os.path.join(self.s.dir, name)) as f:
            return f.read()

    def test_loops_end_in_503_while_others_are_served(self):
        for path in ("/yield-loop", "/gen-loop", "/unhook-loop", "/pcall-yield-loop"):
            results = {}

            def slow():
                results["status"] = curl(self.s.url(path), timeout=10)[0]

            t0 = time.time()
            t = threading.Thread(target=slow)
            t.start()
            # looping once /started answers (itself answered between the loop's slices)
            self.wait_for(lambda: curl(self.s.url("/started?p=" + path))[2] == b"1",
                          what=path + " to start")
            t1 = time.time()
            self.assertEqual(curl(self.s.url("/quick"), timeout=5)[2], b"quick")
            self.assertLess(time.time() - t1, 0.5 * SLOW, path + " held the worker")
            t.join(10 * SLOW)
            self.assertEqual(results.get("status"), 503, path)
            self.assertLess(time.time() - t0, 2.0 * SLOW, path)  # handler_timeout_ms + 1 s
        self.assertIn("handler ran longer than limits.handler_timeout_ms", self.log())

    def test_generators_work_at_any_uptime(self):
        # the server's config-loading deadline (5 s after start) must not reach them
        first = json.loads(curl(self.s.url("/gen"))[2])
        started = os.path.getmtime(self.s.out_path)
        time.sleep(max(0.0, started + 5.5 - time.time()))
        for _ in range(2):  # nothing sticky is left by the first one
            status, _, body = curl(self.s.url("/gen"))
            self.assertEqual(status, 200, self.log())
            got = json.loads(body)
            self.assertEqual(got["s"], got["n"] * (got["n"] + 1) // 2)
        self.assertGreater(first["n"], 0)
        self.assertNotIn("config.lua ran longer", self.log())

    def test_time_limit_counts_run_time_not_waiting(self):
        # six handlers of 0.25 s of run time each take 1.5 s together on one worker;
        # each is within its own 1 s of run time, so each answers 200 (the margin,
        # 4x, is for a machine whose load changes between calibration and run)
        # 0.25 s of run time each, measured with the very loop they run
        n = 1000
        while True:
            secs = float(curl(self.s.url("/rate/%d" % n), timeout=60)[2])
            if secs >= 0.05:
                break
            n *= 4
        n = int(n * 0.25 / secs)
        # the six must together outlast the 1 s limit, or the test proves nothing;
        # a machine that got faster since calibration (valgrind's translation cache
        # warms up) gets n scaled by what was seen, up to three rounds
        for _ in range(3):
            results = []

            def work():
                results.append(curl(self.s.url("/work/%d" % n), timeout=20)[0])

            threads = [threading.Thread(target=work) for _ in range(6)]
            t0 = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join(20 * SLOW)
            took = time.time() - t0
            self.assertEqual(results, [200] * 6, self.log())
            if took > 1.0:
                break
            n = int(n * 1.5 / took)
        self.assertGreater(took, 1.0)  # they did wait for each other

    def test_client_that_leaves_abandons_its_handler(self):
        s = self.server(self.CONFIG.replace("1000", "60000"))
        for path in ("/gen-loop", "/yield-loop"):
            sock = connect(s.port)
            sock.sendall(get(path))
            # its first slice has run and it is paused between slices once /started
            # answers (a close that is in before then would be a half-close: answered)
            self.wait_for(lambda: curl(s.url("/started?p=" + path))[2] == b"1", what=path + " to start")
            leave(sock)
            self.wait_for(lambda: '"GET %s HTTP/1.1" 499' % path in
                          open(os.path.join(s.dir, "access.log")).read(),
                          timeout=3, what="the abandoned request in the access log")
        a = s.cpu_seconds()
        time.sleep(1.0)
        self.assertLess(s.cpu_seconds() - a, 0.3, "still burning CPU")
        self.assertEqual(curl(s.url("/quick"))[2], b"quick")

    def test_half_closed_client_gets_its_answer(self):
        # `printf ... | nc -N`: the request, then a half-close; the handler pauses
        sock = connect(self.s.port)
        sock.sendall(get("/gen"))
        sock.shutdown(socket.SHUT_WR)
        r = Reader(sock).response()
        self.assertEqual(r.status, 200)
        self.assertIn(b'"n"', r.body)
        sock.close()


def dump(source):
    """The bytecode the server's own Lua makes of source: string.dump in a config that
    allows it, run by --check."""
    d = tempfile.mkdtemp(prefix="lh-dump-")
    try:
        out = os.path.join(d, "chunk")
        with open(os.path.join(d, "gen.lua"), "w") as f:
            f.write('docroot = "."\nunsafe_libs = true\nlocal f = assert(io.open(%s, "wb"))\n'
                    'f:write(string.dump(assert(load(%s))))\nf:close()\n'
                    % (json.dumps(out), json.dumps(source)))
        code, stdout, stderr = run(["--check", "-c", os.path.join(d, "gen.lua")], cwd=d)
        assert code == 0, stdout + stderr
        with open(out, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Sandbox(ServerTest):
    """CONTRACT 3, built-in helpers: what blocks the worker, ends the process or
    undoes the time limit raises a Lua error naming it and unsafe_libs."""

    ROUTES = r'''
calls = {
  execute = function() return os.execute("true") end,
  popen = function() local p = io.popen("echo hi") local s = p:read("a") p:close() return s end,
  sethook = function() debug.sethook() return "unhooked" end,
  getinfo = function() return debug.getinfo(1, "l").currentline end,
  dump = function() return load(string.dump(function() return "from binary" end))() end,
  binary = function() return load("\27Lua\84\0 not really") end,
  exit = function() os.exit(3) end,
  stdin = function() return io.read("l") end,
  loadfile = function() return loadfile("scripts/binmod.lua")() end,
  dofile = function() return dofile("scripts/binmod.lua") end,
  require = function() return (require("binmod")) end,
  loadlib = function() return package.loadlib("libc.so.6", "*") end,
  native = function() return require("native") end,
  nativesub = function() return require("native.sub") end,
}
route("GET", "/call/:what", function(req) return tostring(calls[req.params.what]()) end)
route("GET", "/traceback", function(req) return debug.traceback("here", 1) end)
route("GET", "/text-load", function(req) return load("return 'text ok'")() end)
route("GET", "/text-require", function(req) return (require("textmod")) end)
route("GET", "/missing", function(req) return select(2, pcall(require, "nothere")) end)
route("GET", "/broken", function(req) return select(2, pcall(require, "broken")) end)
'''

    @classmethod
    def setUpClass(cls):
        # scripts/binmod.lua holds a binary chunk; ./native.so (on the default
        # package.cpath) is found, and refused, before anything opens it
        cls.FILES = {"scripts/binmod.lua": dump("return 'from binary module'"),
                     "scripts/textmod.lua": "return 'from text module'\n",
                     "scripts/broken.lua": "return = 1\n",
                     "native.so": b"\x7fELF not really\n"}

    def errlog(self, s):
        with open(os.path.join(s.dir, "error.log")) as f:
            return f.read()

    def test_guarded_functions_raise(self):
        s = self.server('error_log = "error.log"\n' + self.ROUTES, dirfiles=self.FILES)
        names = {"execute": "os.execute", "popen": "io.popen", "sethook": "debug.sethook",
                 "getinfo": "debug.getinfo", "dump": "string.dump", "binary": "load",
                 "exit": "os.exit", "stdin": "io.read", "loadfile": "loadfile",
                 "dofile": "dofile", "require": 'require("binmod")',
                 "loadlib": "package.loadlib", "native": 'require("native")',
                 "nativesub": 'require("native.sub")'}
        for what, name in names.items():
            self.assertEqual(curl(s.url("/call/" + what))[0], 500, what)
            self.wait_for(lambda: "%s is not available" % name in self.errlog(s), what=name)
        self.assertIn("unsafe_libs = true", self.errlog(s))
        self.assertIn("binmod.lua is a binary chunk", self.errlog(s))
        self.assertIn("native.so is a C library", self.errlog(s))
        status, _, body = curl(s.url("/traceback"))
        self.assertEqual(status, 200)
        self.assertIn(b"stack traceback", body)
        self.assertEqual(curl(s.url("/text-load"))[2], b"text ok")
        self.assertEqual(curl(s.url("/text-require"))[2], b"from text module")
        # a module found nowhere is still "not found", listing the places tried
        body = curl(s.url("/missing"))[2]
        self.assertIn(b"module 'nothere' not found", body)
        self.assertIn(b"nothere.so", body)
        body = curl(s.url("/broken"))[2]
        self.assertIn(b"error loading module 'broken'", body)
        self.assertIn(b"broken.lua:1:", body)
        self.assertIsNone(s.proc.poll())

    def test_unsafe_libs_gives_them_back(self):
        s = self.server('unsafe_libs = true\nassert(os.execute("true"))\n' + self.ROUTES,
                        dirfiles=self.FILES)
        self.assertEqual(curl(s.url("/call/execute"))[2], b"true")
        self.assertEqual(curl(s.url("/call/popen"))[2], b"hi\n")
        self.assertRegex(curl(s.url("/call/getinfo"))[2], rb"^\d+$")
        self.assertEqual(curl(s.url("/call/dump"))[2], b"from binary")
        for what in ("loadfile", "dofile", "require"):
            self.assertEqual(curl(s.url("/call/" + what))[2], b"from binary module", what)
        self.assertEqual(curl(s.url("/call/loadlib"))[2], b"true")
        # the C searcher is Lua's own again: it opens ./native.so, which is no library
        status, _, body = curl(s.url("/call/native"))
        self.assertEqual(status, 500)

    def test_config_file_binary_module_refused(self):
        s = self.server('\nrequire("binmod")\n', dirfiles=self.FILES, expect_start=False)
        self.assertEqual(s.wait(10 * SLOW), 1)
        self.assertIn('require("binmod") is not available', s.stderr())
        self.assertIn("binary chunk", s.stderr())
        self.assertIn("unsafe_libs = true", s.stderr())
        s = self.server('unsafe_libs = true\nassert(require("binmod") == "from binary module")\n',
                        dirfiles=self.FILES)
        self.assertIsNone(s.proc.poll())

    def test_config_file_is_guarded_too(self):
        s = self.server("\nos.execute(\"true\")\n", expect_start=False)
        self.assertEqual(s.wait(10 * SLOW), 1)
        self.assertIn("config.lua:3: os.execute is not available", s.stderr())


class LuaLogs(ServerTest):
    """CONTRACT 6: every error-log entry is one line (a traceback's lines follow, each
    starting with a tab); what came from a client or from Lua is escaped."""

    CONFIG = r'''
error_log = "error.log"
route("GET", "/l/*", function(req) log("visited", req.path) return "ok" end)
route("GET", "/err/*", function(req) error("bad item " .. req.params["*"]) end)
route("GET", "/lua-newline", function(req) log("a\nb\r\27[31mred") return "ok" end)
route("GET", "/nul-log", function(req) log("before\0after", req.query.x) return "ok" end)
route("GET", "/nul-error", function(req) error("e1\0e2") end)
'''

    def test_no_forged_lines(self):
        s = self.server(self.CONFIG)
        forged = "x%0a2026/12/01%2013:00:00%20%5Bnotice%5D%20forged"
        self.assertEqual(curl(s.url("/l/" + forged))[0], 200)
        self.assertEqual(curl(s.url("/err/" + forged))[0], 500)
        self.assertEqual(curl(s.url("/lua-newline"))[0], 200)
        path = os.path.join(s.dir, "error.log")
        self.wait_for(lambda: "red" in open(path).read(), what="log lines")
        with open(path) as f:
            text = f.read()
        for line in text.splitlines():
            self.assertRegex(line, r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] |\t)")
        self.assertIn(r"/l/x\n2026/12/01 13:00:00 [notice] forged", text)
        self.assertIn(r"bad item x\n2026/12/01", text)
        self.assertIn(r"a\nb\r\x1B[31mred", text)
        self.assertIn("\n\tstack traceback:\n\t", text)
        self.assertNotIn("userdata: 0x", text)

    def test_nul_is_escaped_and_what_follows_kept(self):
        s = self.server(self.CONFIG + 'access_log = "access.log"\n')
        self.assertEqual(curl(s.url("/nul-log?x=a%00b%09c"))[0], 200)
        self.assertEqual(curl(s.url("/nul-error"))[0], 500)
        # a NUL a client sends in the path or a header never reaches the access log raw
        self.assertEqual(curl(s.url("/l/a%00b"))[0], 404)
        path = os.path.join(s.dir, "error.log")
        self.wait_for(lambda: "e1" in open(path).read(), what="log lines")
        with open(path) as f:
            text = f.read()
        self.assertIn("before\\x00after\ta\\x00b\tc\n", text)  # tabs stay
        self.assertIn(": e1\\x00e2\n\tstack traceback:", text)
        access = os.path.join(s.dir, "access.log")
        self.wait_for(lambda: "/l/a%00b" in open(access).read(), what="access line")
        with open(access, "rb") as f:
            self.assertNotIn(b"\0", f.read())


class FoundByReading(ServerTest):
    """The issue's items found by reading the code."""

    def test_caught_json_error_then_other_error_is_500(self):
        s = self.server(r'''
route("POST", "/j", function(req)
  local ok = pcall(req.json, req)
  if not ok then error("another failure") end
  return "parsed"
end)
route("POST", "/echo", function(req) return req:json() end)
json = nil  -- the user's own global; req:json() and table bodies do not need it
''')
        self.assertEqual(curl("--data-binary", "{bad", s.url("/j"))[0], 500)
        self.assertEqual(curl("--data-binary", "{bad", s.url("/echo"))[0], 400)
        status, _, body = curl("--data-binary", '{"a":1}', s.url("/echo"))
        self.assertEqual((status, json.loads(body)), (200, {"a": 1}))

    def test_handler_may_assign_globals_named_like_settings(self):
        s = self.server('route("GET", "/g", function(req)\n'
                        '  port = "not a port"; hits = (hits or 0) + 1\n'
                        '  return tostring(hits) end)\n')
        self.assertEqual(curl(s.url("/g"))[:3:2], (200, b"1"))
        self.assertEqual(curl(s.url("/g"))[:3:2], (200, b"2"))

    def test_dev_page_only_for_a_local_host_name(self):
        s = self.server('route("GET", "/boom", function() error("dev detail") end)\n',
                        args=["--dev"])
        for host in ("localhost", "127.0.0.1:%d" % s.port, "[::1]"):
            self.assertIn(b"dev detail", curl("-H", "Host: " + host, s.url("/boom"))[2], host)
        for host in ("tunnel.example.com", "localhost.example.com"):
            status, _, body = curl("-H", "Host: " + host, s.url("/boom"))
            self.assertEqual(status, 500)
            self.assertNotIn(b"dev detail", body, host)
        # an absolute-form target's authority replaces Host (RFC 9112 3.2.2)
        r, _ = request(s.port, get("http://tunnel.example.com/boom", host="localhost"))
        self.assertEqual(r.status, 500)
        self.assertNotIn(b"dev detail", r.body)
        r, _ = request(s.port, get("http://localhost/boom", host="tunnel.example.com"))
        self.assertIn(b"dev detail", r.body)
