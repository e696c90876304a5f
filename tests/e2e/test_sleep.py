"""CONTRACT section 11, the first step: sleep(seconds) suspends the request's Lua code
(handler, hooks, a streamed body, inside pcall and the handler's own coroutines)
while the worker serves others, and the time asleep is not run time; where Lua
cannot suspend it says so. worker.id and worker.count."""

import json
import os
import signal
import socket
import threading
import time

from harness import HALF_CLOSE, SLOW, Reader, ServerTest, connect, curl, get, leave, read_until_close

ROUTES = r'''
workers = 1
access_log = "access.log"
error_log = "error.log"
limits = { handler_timeout_ms = 200 }
route("GET", "/sleep", function(req)
  shared.set("sleeping", "yes") -- the tests go on once a sleep has begun
  sleep(tonumber(req.query.s or "1"))
  return "slept"
end)
route("GET", "/sleeping", function(req) return tostring(shared.get("sleeping")) end)
route("GET", "/quick", function(req) return "quick" end)
route("GET", "/busy", function(req) while true do end end)
route("GET", "/pcall", function(req)
  local ok, err = pcall(sleep, 0.1)
  local ok2 = pcall(function() sleep(0) end)
  return tostring(ok) .. tostring(err) .. tostring(ok2)
end)
route("GET", "/bad-arg", function(req)
  local ok, err = pcall(sleep, -1)
  local ok2, err2 = pcall(sleep, 0/0)
  return tostring(ok) .. " " .. err .. "|" .. tostring(ok2)
end)
route("GET", "/wrap", function(req)
  local gen = coroutine.wrap(function()
    for i = 1, 3 do sleep(0.05); coroutine.yield(i) end
  end)
  local out = {}
  for i = 1, 3 do out[#out + 1] = gen() end
  local co = coroutine.create(function(a) sleep(0.05); local b = coroutine.yield(a + 1); sleep(0.05); return b * 2 end)
  local ok1, v1 = coroutine.resume(co, 1)
  local ok2, v2 = coroutine.resume(co, 10)
  return table.concat(out, ",") .. ";" .. tostring(v1) .. "," .. tostring(v2)
end)
route("GET", "/sort", function(req)
  local t = {3, 1, 2}
  table.sort(t, function(a, b) sleep(0.01); return a < b end)
  return "sorted"
end)
route("GET", "/gsub", function(req)
  return (string.gsub("abc", "%w", function(c) sleep(0.01); return c end))
end)
route("GET", "/tostring", function(req)
  return tostring(setmetatable({}, { __tostring = function() sleep(0.01); return "x" end }))
end)
route("GET", "/sort-wrap", function(req)
  local t = {3, 1, 2}
  table.sort(t, function(a, b) coroutine.wrap(function() sleep(0.01) end)(); return a < b end)
  return "sorted"
end)
route("GET", "/require", function(req) return require("slowmod") end)
route("GET", "/waiting", function(req) return tostring(shared.get("leave-sleeps")) end)
route("GET", "/leave", function(req)
  shared.set("leave-sleeps", "yes") -- the test closes once this handler is paused
  sleep(5)
  shared.set("after-sleep", "yes")
  return "late"
end)
route("GET", "/side", function(req) return tostring(shared.get("after-sleep")) end)
route("GET", "/sse", function(req)
  local i = 0
  return 200, function()
    i = i + 1
    if i > 5 then return nil end
    if i > 1 then sleep(0.2) end
    return "data: " .. i .. "\n\n"
  end, { ["Content-Type"] = "text/event-stream" }
end)
route("GET", "/worker", function(req) return { id = worker.id, count = worker.count } end)
route("GET", "/worker-write", function(req) worker.id = 7 end)
before(function(req)
  if req.path == "/before" then sleep(0.2); return "from before" end
end)
after(function(req, res)
  if req.path == "/after" then sleep(0.2); res.headers["X-After"] = "slept" end
end)
route("GET", "/after", function(req) return "body" end)
'''

MODULE = {"scripts/slowmod.lua": 'sleep(0.01)\nreturn "loaded"\n'}


class Sleep(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(ROUTES, dirfiles=MODULE)

    def errlog(self):
        with open(os.path.join(self.s.dir, "error.log")) as f:
            return f.read()

    def accesslog(self):
        with open(os.path.join(self.s.dir, "access.log")) as f:
            return f.read()

    def test_others_are_served_while_one_sleeps(self):
        got = {}

        def sleeper():
            t0 = time.time()
            got["sleep"] = curl(self.s.url("/sleep?s=1"), timeout=20)
            got["took"] = time.time() - t0

        t = threading.Thread(target=sleeper)
        t.start()
        self.wait_sleeping()
        t0 = time.time()
        times = []
        for _ in range(50):
            a = time.time()
            self.assertEqual(curl(self.s.url("/quick"))[2], b"quick")
            times.append(time.time() - a)
        t.join(20 * SLOW)
        self.assertEqual(got["sleep"][2], b"slept")
        self.assertGreaterEqual(got["took"], 1.0)
        # each quick request was answered in well under the sleep: none waited for it
        self.assertLess(max(times), 0.5 * 1.0, times)
        self.assertLess(time.time() - t0, got["took"] + 5 * SLOW)

    def wait_sleeping(self):
        # one worker: once /sleeping answers, /sleep's handler is paused in its sleep
        self.wait_for(lambda: curl(self.s.url("/sleeping"))[2] == b"yes", what="the sleep")

    def test_sleep_is_not_run_time(self):
        self.assertEqual(curl(self.s.url("/sleep?s=1"))[0], 200)
        self.assertEqual(curl(self.s.url("/busy"))[0], 503)

    def test_pcall_and_argument_checks(self):
        self.assertEqual(curl(self.s.url("/pcall"))[2], b"truenil" + b"true")
        st, _, body = curl(self.s.url("/bad-arg"))
        self.assertEqual(st, 200)
        self.assertIn(b"false bad argument #1 to", body)
        self.assertIn(b"finite number of seconds >= 0", body)
        self.assertTrue(body.endswith(b"|false"), body)

    def test_coroutines_pass_the_sleep_through(self):
        t0 = time.time()
        st, _, body = curl(self.s.url("/wrap"))
        self.assertEqual((st, body), (200, b"1,2,3;2,20"))
        self.assertGreaterEqual(time.time() - t0, 0.25)

    def test_hooks_sleep(self):
        t0 = time.time()
        self.assertEqual(curl(self.s.url("/before"))[2], b"from before")
        self.assertGreaterEqual(time.time() - t0, 0.2)
        t0 = time.time()
        st, h, body = curl(self.s.url("/after"))
        self.assertEqual((st, h.get("x-after"), body), (200, "slept", b"body"))
        self.assertGreaterEqual(time.time() - t0, 0.2)

    def test_stream_arrives_piece_by_piece(self):
        sock = connect(self.s.port, timeout=10)
        sock.sendall(get("/sse"))
        t0 = time.time()
        buf, arrivals = b"", []
        while buf.count(b"data: ") < 5 or not buf.endswith(b"0\r\n\r\n"):
            d = sock.recv(65536)
            if not d:
                break
            n = buf.count(b"data: ")
            buf += d
            arrivals += [time.time() - t0] * (buf.count(b"data: ") - n)
        sock.close()
        self.assertIn(b"text/event-stream", buf)
        self.assertEqual(len(arrivals), 5, buf)
        self.assertTrue(buf.endswith(b"0\r\n\r\n"), buf)
        # 0.2 s apart, roughly: the last comes 0.8 s after the first, not all at once
        self.assertGreaterEqual(arrivals[4] - arrivals[0], 0.75)
        self.assertGreaterEqual(arrivals[2] - arrivals[0], 0.35)
        self.assertLess(arrivals[1] - arrivals[0], 0.2 + 0.5 * SLOW)

    def test_cannot_wait_here(self):
        for path, reason in (("/sort", "inside a C function"),
                             ("/gsub", "inside a C function"),
                             ("/tostring", "inside a C function"),
                             ("/sort-wrap", "around a coroutine"),
                             ("/require", "top level of a require'd file")):
            self.assertEqual(curl(self.s.url(path))[0], 500, path)
            log = self.errlog()
            self.assertIn("sleep: cannot wait here: ", log, path)
            self.assertIn(reason, log.split("route GET %s:" % path)[-1].split("\n")[0], path)
            self.assertNotIn("C-call boundary", log)
        self.assertEqual(curl(self.s.url("/quick"))[2], b"quick")

    def test_client_that_leaves_cancels_the_sleep(self):
        sock = connect(self.s.port)
        sock.sendall(get("/leave"))
        # one worker: once /waiting answers, /leave's handler has paused in its sleep
        # (a client whose close is in before then is one that half-closed: answered)
        self.wait_for(lambda: curl(self.s.url("/waiting"))[2] == b"yes", what="the handler's sleep")
        leave(sock)
        t0 = time.time()
        self.wait_for(lambda: '"GET /leave HTTP/1.1" 499' in self.accesslog(), timeout=2,
                      what="the abandoned request in the access log")
        self.assertLess(time.time() - t0, 2 * SLOW)
        a = self.s.cpu_seconds()
        time.sleep(max(0.0, 5.5 - (time.time() - t0)))  # past the sleep's end
        self.assertLess(self.s.cpu_seconds() - a, 0.3, "still burning CPU")
        self.assertEqual(curl(self.s.url("/side"))[2], b"nil")

    def test_half_close_right_after_the_request_is_answered(self):
        # `printf ... | nc -N`: the close may come just after the handler paused
        for _ in range(5):
            sock = connect(self.s.port, timeout=10 * SLOW)
            sock.sendall(get("/sleep?s=0.05"))
            sock.shutdown(socket.SHUT_WR)
            data = read_until_close(sock)
            sock.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
            self.assertTrue(data.endswith(b"slept"), data[-100:])

    def test_pipelined_requests_then_a_half_close_are_all_answered(self):
        # CONTRACT 5: the close comes long after, while the first handler sleeps; the
        # requests behind it say the client wants its answers
        sock = connect(self.s.port, timeout=10 * SLOW)
        sock.sendall(get("/sleep?s=2") + get("/quick") + get("/sleep?s=0.1"))
        self.wait_sleeping()
        time.sleep(3 * HALF_CLOSE)
        sock.shutdown(socket.SHUT_WR)
        data = read_until_close(sock)
        sock.close()
        self.assertEqual(data.count(b"HTTP/1.1 200 "), 3, data)
        bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 200 ")[1:]]
        self.assertEqual([b[-5:] for b in bodies], [b"slept", b"quick", b"slept"])
        self.assertNotIn(" 499 ", self.accesslog())

    def test_sigterm_waits_for_a_sleeping_request(self):
        got = {}

        def sleeper():
            got["r"] = curl(self.s.url("/sleep?s=1"), timeout=20)

        t = threading.Thread(target=sleeper)
        t.start()
        self.wait_sleeping()
        self.s.signal(signal.SIGTERM)
        t.join(20 * SLOW)
        self.assertEqual(got["r"][2], b"slept")
        self.assertEqual(self.s.wait(timeout=10 * SLOW), 0)

    def test_worker_with_one(self):
        st, _, body = curl(self.s.url("/worker"))
        self.assertEqual(json.loads(body), {"id": 0, "count": 1})
        self.assertEqual(curl(self.s.url("/worker-write"))[0], 500)
        self.assertIn("worker is read-only", self.errlog())


PID = '''
workers = 2
unsafe_libs = true
route("GET", "/id", function(req) return tostring(worker.id) .. "/" .. tostring(worker.count) end)
-- the file "napping" beside config.lua says a worker is in its blocking call
route("GET", "/nap", function(req) os.execute("touch napping; sleep 1") return "rested" end)
'''


class Workers(ServerTest):
    def test_each_worker_knows_its_id(self):
        s = self.server(PID)
        self.wait_for(lambda: len(s.workers()) == 2, what="the workers")
        first = connect(s.port, timeout=10 * SLOW)
        frd = Reader(first)
        first.sendall(get("/id"))
        a = frd.response().body
        first.sendall(get("/nap"))  # its worker blocks in C: only the other one accepts
        self.wait_for(lambda: os.path.exists(os.path.join(s.dir, "napping")), what="the nap")
        second = connect(s.port, timeout=10 * SLOW)
        srd = Reader(second)
        second.sendall(get("/id"))
        b = srd.response().body
        self.assertEqual(frd.response().body, b"rested")
        self.assertEqual({a, b}, {b"0/2", b"1/2"})
        # after a reload, each worker's new state knows it too (asked on each
        # worker's connection once it answers by the new file)
        s.rewrite_config(PID + 'route("GET", "/v", function() return "two" end)\n')
        s.signal(signal.SIGHUP)
        seen = set()
        for sock, rd in ((first, frd), (second, srd)):
            def reloaded():
                sock.sendall(get("/v"))
                return rd.response().body == b"two"
            self.wait_for(reloaded, what="the reload")
            sock.sendall(get("/id"))
            seen.add(rd.response().body)
            sock.close()
        self.assertEqual(seen, {b"0/2", b"1/2"})

    def test_config_top_level(self):
        s = self.server('workers = 2\nlog("top", worker.id, worker.count)\n'
                        'route("GET", "/", function() return "x" end)\n'
                        'error_log = "error.log"\n')
        self.assertEqual(curl(s.url("/"))[2], b"x")
        s.signal(signal.SIGTERM)
        s.wait(10 * SLOW)
        with open(os.path.join(s.dir, "stderr")) as f:
            self.assertIn("top\tnil\tnil", f.read())

    def test_sleep_while_config_loads(self):
        s = self.server('x = 1\nsleep(1)\n', expect_start=False)
        self.assertEqual(s.wait(timeout=10 * SLOW), 1)
        err = s.stderr()
        self.assertIn("config.lua:3:", err)
        self.assertIn("sleep: cannot wait here: while config.lua loads", err)

