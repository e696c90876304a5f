"""CONTRACT section 11: http.request/get/post and proxy(). Handlers call backends
started here on 127.0.0.1 (backends.py) and wait without blocking their worker:
keep-alive reuse seen from the backend, broken backends (a malformed head, a close
mid-body, too much body, silence), a client that leaves while its handler waits,
TLS against a self-signed certificate, DNS through /etc/hosts, waits inside pcall
and coroutines, and a reverse proxy that forwards and streams."""

import hashlib
import json
import os
import socket
import threading
import time
import urllib.parse

import backends
from harness import (SANITIZED, SLOW, VALGRIND, Reader, ServerTest, connect, curl, get, leave,
                     read_until_close)

ROUTES = r'''
workers = 1
access_log = "access.log"
error_log = "error.log"
-- making a TLS context runs in the handler: slow under valgrind
limits = { handler_timeout_ms = %(timeout)d }
local B = "http://127.0.0.1:%(port)d"
local function show(res, err)
  if not res then return 502, "ERR " .. err end
  return res.status, res.body, { ["X-Got"] = res.headers["x-b"] }
end
route("GET", "/get", function(req) return show(http.get(B .. (req.query.p or "/"), { timeout = tonumber(req.query.t) })) end)
route("GET", "/url", function(req)
  return show(http.get(req.query.u, { timeout = tonumber(req.query.t), verify = req.query.verify ~= "no",
                                      ca_file = req.query.ca }))
end)
route("POST", "/post", function(req)
  local res, err = http.post(B .. "/echo", req.body, { headers = { ["X-Mine"] = { "1", "2" } } })
  return res.body
end)
route("GET", "/request", function(req)
  local res = http.request{ method = "PUT", url = B .. "/echo?q=1", body = "put-body",
                            headers = { ["Content-Type"] = "text/plain" } }
  local e = json.decode(res.body)
  return { status = res.status, type = res.headers["content-type"], method = e.method, path = e.path, body = e.body }
end)
route("GET", "/max", function(req)
  return show(http.get(B .. "/big?n=" .. req.query.n, { max_body = tonumber(req.query.max) }))
end)
route("GET", "/cookies", function(req)
  local res = http.get(B .. "/cookies")
  return table.concat(res.headers["set-cookie"], ";")
end)
route("GET", "/redirect", function(req)
  local res = http.get(B .. "/redirect?to=" .. req.query.to, { redirects = tonumber(req.query.n) })
  return res.status .. " " .. (res.headers.location or "-") .. " " .. res.body:sub(1, 20)
end)
route("GET", "/quick", function(req) return "quick" end)
route("GET", "/pcall", function(req)
  local ok, res = pcall(http.get, B .. "/")
  local ok2, res2 = xpcall(function() return http.get(B .. "/?x") end, debug.traceback)
  return tostring(ok) .. res.body .. tostring(ok2) .. res2.body
end)
route("GET", "/coroutines", function(req)
  local gen = coroutine.wrap(function()
    for i = 1, 3 do coroutine.yield(http.get(B .. "/?i=" .. i).body .. i) end
  end)
  local out = {}
  for i = 1, 3 do out[#out + 1] = gen() end
  return table.concat(out, ",")
end)
route("GET", "/sort", function(req)
  local t = { 2, 1 }
  table.sort(t, function(a, b) http.get(B .. "/"); return a < b end)
  return "sorted"
end)
route("GET", "/bad", function(req)
  local ok, err = pcall(http.get, "ftp://x/")
  local ok2, err2 = pcall(http.request, { url = B .. "/", headers = { ["X-A"] = "a\r\nInjected: 1" } })
  return err .. "|" .. err2
end)
route("GET", "/side", function(req) return tostring(shared.get("after-wait")) end)
route("GET", "/waiting", function(req) return tostring(shared.get("leave-waits")) end)
route("GET", "/leave", function(req)
  shared.set("leave-waits", "yes") -- the test closes once this handler is paused
  http.get(B .. "/slow?s=3", { timeout = 60 })
  shared.set("after-wait", "yes")
  return "late"
end)
route("GET", "/timer", function(req)
  timer.after(0, function()
    local res, err = http.get(B .. "/?from-timer")
    shared.set("timer-got", res and res.body or err)
  end)
  return "armed"
end)
route("GET", "/timer-got", function(req) return tostring(shared.get("timer-got")) end)
route("*", "/api/*", proxy(B))
route("*", "/prefixed/*", proxy(B .. "/echo?from=proxy", { timeout = 0.5 }))
route("GET", "/slowproxy/*", proxy(B, { timeout = 0.5 }))
route("GET", "/deadproxy/*", proxy("http://127.0.0.1:%(dead)d"))
local fwd = proxy(B)
route("GET", "/upper/*", function(req)
  local st, body, h = fwd(req)
  return st, function() local p = body(); return p and p:upper() end, h
end)
route("GET", "/same/*", function(req) return fwd(req) end)
route("GET", "/edit/*", function(req)
  local st, body, h = fwd(req)
  h["X-Added"] = "by the handler"
  h["X-B"] = nil
  return st, body, h
end)
after(function(req, res)
  if req.path:find("^/api/") or req.path:find("^/edit/") then
    res.headers["X-After-Saw"] = tostring(res.headers["x-b"] or res.headers["set-cookie"] and "cookies")
  end
end)
'''


def config(port):
    return ROUTES % {"port": port, "dead": dead_port(), "timeout": 2000 * SLOW}


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    return port


class Client(ServerTest):
    def setUp(self):
        super().setUp()
        self.b = backends.Server().start()
        self.addCleanup(self.b.close)
        self.s = self.server(config(self.b.port))

    def errlog(self):
        with open(os.path.join(self.s.dir, "error.log")) as f:
            return f.read()

    def test_get_post_request(self):
        st, h, body = curl(self.s.url("/get?p=/"))
        self.assertEqual((st, body, h.get("x-got")), (200, b"hello", "b-value"))
        with open(os.path.join(self.s.dir, "post-body"), "wb") as f:
            f.write(b"post\x00body")
        st, _, body = curl("--data-binary", "@" + f.name, self.s.url("/post"))
        e = json.loads(body)
        self.assertEqual((e["method"], e["path"], e["body"]), ("POST", "/echo", "post\x00body"))
        hdrs = e["headers"]
        self.assertIn(["content-length", "9"], hdrs)
        self.assertEqual([v for k, v in hdrs if k == "x-mine"], ["1", "2"])
        self.assertIn(["host", "127.0.0.1:%d" % self.b.port], hdrs)
        self.assertIn(["user-agent", "luahttpd"], hdrs)
        st, _, body = curl(self.s.url("/request"))
        self.assertEqual(json.loads(body), {"status": 200, "type": "application/json",
                                            "method": "PUT", "path": "/echo?q=1",
                                            "body": "put-body"})
        self.assertEqual(curl(self.s.url("/cookies"))[2], b"a=1;b=2")

    def test_chunked_and_close_delimited(self):
        self.assertEqual(curl(self.s.url("/get?p=/chunked"))[2], b"chunked body")
        self.assertEqual(curl(self.s.url("/get?p=/close"))[2], b"until close")
        # the close-delimited one was not pooled; the chunked one was
        self.assertEqual(curl(self.s.url("/get?p=/"))[2], b"hello")

    def test_keepalive_reuse(self):
        s = connect(self.s.port, timeout=10 * SLOW)
        rd = Reader(s)
        for i in range(100):
            s.sendall(get("/get?p=/%3Fi=" + str(i)))
            r = rd.response()
            self.assertEqual((r.status, r.body), (200, b"hello"))
        s.close()
        self.assertEqual(self.b.connections, 1)
        self.assertEqual(len(self.b.paths), 100)

    def test_slow_backend_does_not_block_the_worker(self):
        got = {}

        def slow():
            t0 = time.time()
            got["slow"] = curl(self.s.url("/get?p=/slow%3Fs=2"), timeout=30)
            got["took"] = time.time() - t0

        t = threading.Thread(target=slow)
        t.start()
        # the quick ones go while the slow one waits: once the backend has its request
        self.wait_for(lambda: "/slow?s=2" in self.b.paths, what="the slow request at the backend")
        s = connect(self.s.port, timeout=10 * SLOW)
        rd = Reader(s)
        times = []
        for _ in range(50):
            a = time.time()
            s.sendall(get("/quick"))
            self.assertEqual(rd.response().body, b"quick")
            times.append(time.time() - a)
        s.close()
        busy_until = time.time()
        t.join(30 * SLOW)
        self.assertEqual(got["slow"][2], b"slow")
        self.assertGreaterEqual(got["took"], 2.0)
        self.assertLess(busy_until, time.time())
        # each answered in under 100 ms (more under the sanitizers and valgrind)
        self.assertLess(max(times), 0.1 * (3 if SANITIZED else 1) * SLOW, times)

    def test_many_waits_at_once(self):
        # 20 handlers wait on a 1 s backend together: about 1 s, not 20
        results = []

        def one():
            results.append(curl(self.s.url("/get?p=/slow%3Fs=1"), timeout=30))

        t0 = time.time()
        ts = [threading.Thread(target=one) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30 * SLOW)
        self.assertEqual([r[2] for r in results], [b"slow"] * 20)
        self.assertLess(time.time() - t0, 1.0 + 4 * SLOW)

    def test_max_body(self):
        self.assertEqual(curl(self.s.url("/max?n=1000&max=2000"))[0], 200)
        st, _, body = curl(self.s.url("/max?n=10485760&max=1048576"))
        self.assertEqual(st, 502)
        self.assertIn(b"larger than max_body (1048576 bytes)", body)
        self.assertEqual(curl(self.s.url("/quick"))[2], b"quick")

    def test_redirects_followed_only_when_asked(self):
        st, _, body = curl(self.s.url("/redirect?to=/status%3Fcode=201&n=0"))
        self.assertEqual(body, b"302 /status?code=201 ")
        st, _, body = curl(self.s.url("/redirect?to=/status%3Fcode=201&n=2"))
        self.assertEqual(body, b"201 - status 201")

    def test_waits_inside_pcall_and_coroutines(self):
        self.assertEqual(curl(self.s.url("/pcall"))[2], b"truehellotruehello")
        self.assertEqual(curl(self.s.url("/coroutines"))[2], b"hello1,hello2,hello3")
        self.assertEqual(curl(self.s.url("/sort"))[0], 500)
        self.assertIn("http.get: cannot wait here: inside a C function", self.errlog())
        self.assertNotIn("C-call boundary", self.errlog())

    def test_misuse_raises(self):
        st, _, body = curl(self.s.url("/bad"))
        self.assertIn(b"only http:// and https:// URLs", body)
        self.assertIn(b"holds CR, LF or NUL", body)

    def test_localhost_resolves_through_hosts(self):
        st, _, body = curl(self.s.url("/url?u=http://localhost:%d/" % self.b.port))
        self.assertEqual((st, body), (200, b"hello"))

    def test_unknown_name_fails_clearly(self):
        st, _, body = curl(self.s.url("/url?u=http://no-such-host.invalid/&t=5"), timeout=20)
        self.assertEqual(st, 502)
        self.assertTrue(b"cannot resolve no-such-host.invalid" in body or
                        b"resolving the name no-such-host.invalid" in body, body)
        self.assertEqual(curl(self.s.url("/quick"))[2], b"quick")

    def test_timer_waits_for_a_backend(self):
        self.assertEqual(curl(self.s.url("/timer"))[2], b"armed")
        self.wait_for(lambda: curl(self.s.url("/timer-got"))[2] == b"hello",
                      what="the timer's http.get")
        self.assertIn("/?from-timer", self.b.paths)

    def test_config_lua_cannot_wait(self):
        s = self.server('http.get("http://127.0.0.1:1/")\n', expect_start=False)
        self.assertNotEqual(s.wait(10 * SLOW), 0)
        self.assertIn("http.get: cannot wait here: while config.lua loads", s.stderr())

    def test_client_that_leaves_cancels_the_wait(self):
        log = lambda: open(os.path.join(self.s.dir, "access.log")).read()
        sock = connect(self.s.port)
        sock.sendall(get("/get?p=/slow%3Fs=3"))
        # the request goes to the backend once the handler has paused (a client whose
        # close is in before then is one that half-closed: answered)
        self.wait_for(lambda: "/slow?s=3" in self.b.paths, what="the request at the backend")
        leave(sock)
        self.wait_for(lambda: '"GET /get?p=/slow%3Fs=3 HTTP/1.1" 499' in log(),
                      what="the first abandoned request in the access log")
        # the handler never goes on: nothing after its wait runs
        sock = connect(self.s.port)
        sock.sendall(get("/leave"))
        # one worker: once /waiting answers, /leave's handler has paused in its wait
        # (a client whose close is in before then is one that half-closed: answered)
        self.wait_for(lambda: curl(self.s.url("/waiting"))[2] == b"yes", what="the handler's wait")
        t0 = time.time()
        leave(sock)
        self.wait_for(lambda: '"GET /leave HTTP/1.1" 499' in log(),
                      what="the abandoned request in the access log")
        # past the backend's answer 3 s on, which a wait that went on would have had
        time.sleep(max(0.0, t0 + 3 + 0.5 * SLOW - time.time()))
        self.assertEqual(curl(self.s.url("/side"))[2], b"nil")


def replying(data):
    """A backend script: read one request head, answer data, close."""
    def script(b, c):
        b.read_head(c)
        c.sendall(data)
    return script


class Broken(ServerTest):
    """Backends that misbehave: the handler gets nil and a message, the worker lives."""

    def serve(self, script):
        b = backends.Scripted(script)
        self.addCleanup(b.close)
        return b, self.server(config(b.port))

    def check(self, s, path, want):
        st, _, body = curl(s.url(path), timeout=20)
        self.assertEqual(st, 502, body)
        self.assertIn(want, body)
        self.assertEqual(curl(s.url("/quick"))[2], b"quick")

    def test_malformed_head(self):
        b, s = self.serve(replying(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"))
        self.check(s, "/get?p=/", b"malformed response head")

    def test_not_http(self):
        b, s = self.serve(replying(b"SSH-2.0-OpenSSH\r\n\r\n"))
        self.check(s, "/get?p=/", b"malformed response head")

    def test_close_mid_body(self):
        b, s = self.serve(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"))
        self.check(s, "/get?p=/", b"closed the connection before the response body ended")

    def test_silent_backend_times_out(self):
        def script(b, c):
            b.read_head(c)
            b.wait_peer_close(c)
        b, s = self.serve(script)
        t0 = time.time()
        self.check(s, "/get?p=/&t=0.5", b"timeout after 0.5 s (waiting for the response)")
        self.assertLess(time.time() - t0, 0.5 + 3 * SLOW)
        # the backend saw its connection closed (not pooled after a timeout)
        self.assertTrue(b.peer_closed.wait(5 * SLOW))

    def test_client_that_leaves_closes_the_backend_connection(self):
        asked = threading.Event()

        def script(b, c):
            b.read_head(c)
            asked.set()
            b.wait_peer_close(c)
        b, s = self.serve(script)
        sock = connect(s.port)
        sock.sendall(get("/get?p=/&t=60"))
        # the request goes out once the connection is made, after the handler paused: a
        # client whose close is in before then is one that half-closed, and is answered
        self.assertTrue(asked.wait(10 * SLOW), "the backend got no request")
        leave(sock)
        self.assertTrue(b.peer_closed.wait(5 * SLOW), "the backend connection stayed open")
        self.assertEqual(curl(s.url("/quick"))[2], b"quick")

    def test_client_that_leaves_mid_proxied_body_closes_the_backend(self):
        def script(b, c):
            b.read_head(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
            try:
                for _ in range(16384):  # 1 GiB at most; the proxy reads only as fast as its client
                    c.sendall(b"x" * 65536)
            except OSError:
                b.peer_closed.set()
        b, s = self.serve(script)
        sock = connect(s.port, timeout=10 * SLOW)
        sock.sendall(get("/api/big"))
        got = 0
        while got < 1 << 20:
            got += len(sock.recv(65536))
        sock.close()
        self.assertTrue(b.peer_closed.wait(5 * SLOW), "the backend connection stayed open")
        self.assertEqual(curl(s.url("/quick"))[2], b"quick")

    def test_close_mid_long_proxied_body_is_cut(self):
        # the client was promised the backend's length: it gets fewer bytes and a close
        def script(b, c):
            b.read_head(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 200000)
            c.close()
        b, s = self.serve(script)
        sock = connect(s.port, timeout=10 * SLOW)
        sock.sendall(get("/api/cut"))
        data = read_until_close(sock)
        sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nContent-Length: 1048576\r\n", head + b"\r\n")
        self.assertEqual(body, b"x" * 200000)
        self.wait_for(lambda: b"closed the connection before the response body ended" in
                      open(os.path.join(s.dir, "error.log"), "rb").read(), what="the log line")
        self.assertEqual(curl(s.url("/quick"))[2], b"quick")

    def test_a_head_the_response_cannot_carry_is_a_500(self):
        # Content-Type twice, after more fields than a response keeps inline: answered
        # as a handler returning it would be, nothing left behind (ASan, valgrind)
        fields = b"".join(b"X-H%d: v\r\n" % i for i in range(70))
        b, s = self.serve(replying(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Type: text/a\r\n"
                                   b"Content-Type: text/b\r\nContent-Length: 2\r\n\r\nok"))
        st, _, body = curl(s.url("/api/x"), timeout=20)
        self.assertEqual(st, 500)
        self.assertIn(b'"Content-Type" takes exactly one value',
                      open(os.path.join(s.dir, "error.log"), "rb").read())
        self.assertEqual(curl(s.url("/quick"))[2], b"quick")

    def test_silence_between_pieces_of_a_proxied_body_times_out(self):
        # the proxy's timeout (0.5 s here) runs between two pieces once the head is in
        def script(b, c):
            b.read_head(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 100000)
            b.wait_peer_close(c)
        b, s = self.serve(script)
        sock = connect(s.port, timeout=10 * SLOW)
        t0 = time.time()
        sock.sendall(get("/slowproxy/x"))
        data = read_until_close(sock)
        sock.close()
        self.assertEqual(data.partition(b"\r\n\r\n")[2], b"x" * 100000)
        self.assertGreater(time.time() - t0, 0.45)
        self.assertLess(time.time() - t0, 0.5 + 3 * SLOW)
        self.wait_for(lambda: b"timeout after 0.5 s between two pieces of the body" in
                      open(os.path.join(s.dir, "error.log"), "rb").read(), what="the log line")
        self.assertTrue(b.peer_closed.wait(5 * SLOW), "the backend connection stayed open")

    def test_extra_bytes_are_not_pooled(self):
        def script(b, c):
            while b.read_head(c):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
        b, s = self.serve(script)
        for _ in range(3):
            self.assertEqual(curl(s.url("/get?p=/"))[2], b"ok")
        self.assertEqual(b.connections, 3)

    def test_stale_pooled_connection_is_retried(self):
        # the backend closes each connection after one answer that said keep-alive
        def script(b, c):
            b.read_head(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.1)
        b, s = self.serve(script)
        for _ in range(3):
            self.assertEqual(curl(s.url("/get?p=/"))[2], b"ok")
            time.sleep(0.3)


class TLS(ServerTest):
    def setUp(self):
        super().setUp()
        self.folder = self.server("").dir  # a folder to keep the certificate in
        self.cert, key = backends.self_signed(self.folder)
        self.b = backends.tls_server(self.cert, key)
        self.addCleanup(self.b.close)
        self.s = self.server(config(self.b.port))

    def test_refused_by_default(self):
        st, _, body = curl(self.s.url("/url?u=https://localhost:%d/" % self.b.port))
        self.assertEqual(st, 502)
        self.assertIn(b"certificate verify failed", body)

    def test_accepted_with_ca_file(self):
        st, _, body = curl(self.s.url("/url?u=https://localhost:%d/&ca=%s" % (self.b.port, self.cert)))
        self.assertEqual((st, body), (200, b"hello"))
        for _ in range(3):  # pooled: the TLS connection is reused
            self.assertEqual(curl(self.s.url("/url?u=https://localhost:%d/&ca=%s" %
                                             (self.b.port, self.cert)))[2], b"hello")
        self.assertEqual(self.b.connections, 1)

    def test_refused_on_a_name_mismatch(self):
        # the certificate is for localhost, not for the address
        st, _, body = curl(self.s.url("/url?u=https://127.0.0.1:%d/&ca=%s" % (self.b.port, self.cert)))
        self.assertEqual(st, 502)
        self.assertIn(b"certificate verify failed", body)

    def test_verify_false(self):
        st, _, body = curl(self.s.url("/url?u=https://127.0.0.1:%d/&verify=no" % self.b.port))
        self.assertEqual((st, body), (200, b"hello"))


class Proxy(ServerTest):
    def setUp(self):
        super().setUp()
        self.b = backends.Server().start()
        self.addCleanup(self.b.close)
        self.s = self.server(config(self.b.port))

    def test_forwards_method_path_query_headers_body(self):
        st, h, body = curl("-X", "PROPFIND", "-H", "Connection: X-Secret", "-H", "X-Secret: 1",
                           "-H", "TE: trailers", "-H", "X-Forwarded-For: 10.0.0.1",
                           "-H", "X-Keep: kept", "--data-binary", "the body",
                           self.s.url("/api/echo/a%20b?x=1&y=2"))
        self.assertEqual(st, 200)
        self.assertEqual(h.get("x-backend"), "yes")
        e = json.loads(body)
        hd = dict(e["headers"])
        self.assertEqual(e["method"], "PROPFIND")
        self.assertEqual(e["path"], "/echo/a%20b?x=1&y=2")
        self.assertEqual(e["body"], "the body")
        self.assertEqual(hd["x-forwarded-for"], "10.0.0.1, 127.0.0.1")
        self.assertEqual(hd["x-forwarded-proto"], "http")
        self.assertEqual(hd["x-forwarded-host"], "127.0.0.1:%d" % self.s.port)
        self.assertEqual(hd["host"], "127.0.0.1:%d" % self.s.port)
        self.assertEqual(hd["x-keep"], "kept")
        for gone in ("x-secret", "te", "connection"):
            self.assertNotIn(gone, hd)

    def test_every_field_connection_names_is_dropped(self):
        # many names (the proxy keeps 16 at hand and looks the rest up), in two fields
        names = ["X-Hop%d" % i for i in range(20)]
        args = ["-H", "Connection: " + ", ".join(names[:12]),
                "-H", "Connection: " + ",".join(names[12:]) + ", keep-alive"]
        for n in names:
            args += ["-H", "%s: v" % n]
        e = json.loads(curl(*args, "-H", "X-Stays: s", self.s.url("/api/echo"))[2])
        hd = dict(e["headers"])
        self.assertEqual(hd.get("x-stays"), "s")
        for n in names:
            self.assertNotIn(n.lower(), hd)

    def test_prefix_of_the_url_and_its_query(self):
        e = json.loads(curl(self.s.url("/prefixed/more?z=9"))[2])
        self.assertEqual(e["path"], "/echo/more?from=proxy&z=9")

    def test_response_headers(self):
        st, h, body = curl("-v", self.s.url("/api/cookies"))
        self.assertEqual(body, b"c")
        p = curl_raw_head(self.s.port, "/api/cookies")
        self.assertEqual(p.count(b"Set-Cookie: "), 2)
        # a small body of a known length comes whole: Content-Length, not chunked
        self.assertIn(b"\r\nContent-Length: 1", p)
        self.assertNotIn(b"chunked", p)
        self.assertNotIn(b"X-Drop", p)
        self.assertNotIn(b"timeout=5", p)

    def test_streams_a_large_body(self):
        n = 8 << 20
        st, h, body = curl(self.s.url("/api/big?n=%d" % n), timeout=60)
        self.assertEqual(st, 200)
        # streamed, and still with the backend's length (a download shows its progress)
        self.assertEqual(h.get("content-length"), str(n))
        self.assertNotIn("transfer-encoding", h)
        self.assertEqual(len(body), n)
        self.assertEqual(hashlib.sha256(body).hexdigest(), h["x-sha"])
        rss = self.s.rss()
        self.assertLess(rss, 200 << 20)

    def test_headers_as_the_backend_sent_them_for_hooks_and_handlers(self):
        # proxy() as the route's handler: the server's own Date and Server (CONTRACT 5,
        # and nginx's way), the backend's other headers, which after hooks see
        p = curl_raw_head(self.s.port, "/api/")
        self.assertEqual(p.count(b"\r\nServer: "), 1)
        self.assertIn(b"\r\nServer: luahttpd/", p)
        self.assertEqual(p.count(b"\r\nDate: "), 1)
        self.assertIn(b"\r\nX-B: b-value\r\n", p)
        self.assertIn(b"\r\nX-After-Saw: b-value", p)
        p = curl_raw_head(self.s.port, "/api/cookies")
        self.assertEqual(p.count(b"Set-Cookie: "), 2)
        self.assertIn(b"\r\nX-After-Saw: cookies", p)
        # a handler that calls it gets the headers as a table it may change
        st, h, body = curl(self.s.url("/edit/"))
        self.assertEqual((st, body), (200, b"hello"))
        self.assertEqual(h.get("x-added"), "by the handler")
        self.assertNotIn("x-b", h)
        self.assertEqual(h.get("x-after-saw"), "nil")
        self.assertTrue(h["server"].startswith("luahttpd/"), h["server"])

    def test_a_long_body_keeps_its_length_on_http_1_0_and_the_connection(self):
        n = 300000
        s = connect(self.s.port, timeout=10 * SLOW)
        rd = Reader(s)
        for _ in range(2):  # the second request on the same connection
            s.sendall(b"GET /api/big?n=%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % n)
            r = rd.response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Length"), str(n))
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), r.header("X-Sha"))
        s.close()

    def test_a_long_chunked_body_stays_chunked(self):
        n = 300000
        st, h, body = curl(self.s.url("/api/bigchunked?n=%d" % n), timeout=60)
        self.assertEqual((st, body), (200, b"c" * n))
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        self.assertNotIn("content-length", h)
        # a handler that changes the proxied pieces cannot keep the length either
        n = 300000
        st, h, body = curl(self.s.url("/upper/big?n=%d" % n), timeout=60)
        self.assertEqual(body, (b"0123456789ABCDEF" * (n // 16 + 1))[:n])
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        # one that hands them on as they are keeps it
        st, h, body = curl(self.s.url("/same/big?n=%d" % n), timeout=60)
        self.assertEqual(h.get("content-length"), str(n))
        self.assertEqual(len(body), n)

    def test_keepalive_to_the_backend(self):
        s = connect(self.s.port, timeout=10 * SLOW)
        rd = Reader(s)
        for _ in range(50):
            s.sendall(get("/api/"))
            self.assertEqual(rd.response().body, b"hello")
        s.close()
        self.assertEqual(self.b.connections, 1)

    def test_backend_down_is_502(self):
        st, _, body = curl(self.s.url("/deadproxy/x"))
        self.assertEqual(st, 502)
        self.assertIn("cannot connect to 127.0.0.1", open(os.path.join(self.s.dir, "error.log")).read())
        st, _, body = curl("-H", "Accept: application/json", self.s.url("/deadproxy/x"))
        self.assertEqual(json.loads(body)["status"], 502)

    def test_slow_backend_is_504(self):
        t0 = time.time()
        st, _, body = curl(self.s.url("/slowproxy/slow?s=3"))
        self.assertEqual(st, 504)
        self.assertLess(time.time() - t0, 2.5 * SLOW)

    def test_head_and_statuses(self):
        st, h, body = curl("-I", self.s.url("/api/"))
        self.assertEqual(st, 200)
        self.assertEqual(h.get("content-length"), "5")  # the backend's, not 0
        st, h, body = curl(self.s.url("/api/"))
        self.assertEqual((st, body), (200, b"hello"))
        self.assertNotIn("content-type", h)  # the backend sent none; nor does the proxy
        st, h, body = curl(self.s.url("/api/echo"))
        self.assertEqual(h.get("content-type"), "application/json")
        for code in (201, 404, 500):
            st, _, body = curl(self.s.url("/api/status?code=%d" % code))
            self.assertEqual((st, body), (code, b"status %d" % code))


def curl_raw_head(port, path):
    r = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    r.sendall(get(path, extra=b"Connection: close\r\n"))
    data = b""
    while True:
        d = r.recv(65536)
        if not d:
            break
        data += d
    r.close()
    return data.partition(b"\r\n\r\n")[0]


class Review(ServerTest):
    """Found in review: each test shows a bug that was fixed."""

    def scripted(self, script, extra=""):
        b = backends.Scripted(script)
        self.addCleanup(b.close)
        return b, self.server(config(b.port) + extra)

    def test_failed_requests_do_not_keep_their_bodies(self):
        # what a failed exchange read (here 16 MiB each, over max_body) is C memory the
        # Lua collector does not see: it must go when the call returns, not at a
        # collection that an idle Lua state may never make
        b = backends.Server().start()
        self.addCleanup(b.close)
        s = self.server(config(b.port) + r'''
route("GET", "/failmany", function(req)
  local errs = {}
  for i = 1, 8 do
    local res, err = http.get("http://127.0.0.1:%d/big?n=33554432", { max_body = 16 << 20, timeout = 30 })
    errs[#errs + 1] = res and "ok" or err
  end
  return errs[8]
end)
''' % b.port)
        before = s.rss()
        st, _, body = curl(s.url("/failmany"), timeout=120)
        self.assertIn(b"larger than max_body", body)
        # ASan's quarantine keeps freed memory resident, and so does valgrind's
        # allocator (its free queue and an arena it never gives back): RSS says
        # nothing about this program there, only in the plain run
        if not (SANITIZED or VALGRIND):
            self.assertLess(s.rss() - before, 64 << 20)

    def test_proxy_as_a_hook(self):
        # as an after hook (whose results are not taken) it changes nothing of the
        # response; as a before hook it answers
        b = backends.Server().start()
        self.addCleanup(b.close)
        s = self.server(config(b.port) + r'''
after(proxy("http://127.0.0.1:%d"))
route("GET", "/mine", function(req) return "mine", { ["X-Mine"] = "1" } end)
''' % b.port)
        st, h, body = curl(s.url("/mine"))
        self.assertEqual((st, body, h.get("x-mine")), (200, b"mine", "1"))
        self.assertNotIn("x-b", h)
        self.assertTrue(h["server"].startswith("luahttpd/"), h["server"])
        s = self.server(config(b.port) + 'before(proxy("http://127.0.0.1:%d"))' % b.port)
        st, h, body = curl(s.url("/quick"))
        self.assertEqual((st, body, h.get("x-b")), (200, b"hello", "b-value"))

    def test_redirect_to_another_server_drops_credentials(self):
        a = backends.Server().start()
        self.addCleanup(a.close)
        b = backends.Server().start()
        self.addCleanup(b.close)
        s = self.server(config(a.port) + r'''
route("GET", "/authredir", function(req)
  local res = http.get(req.query.u, { redirects = 1, headers = {
    Authorization = "Bearer secret", Cookie = "c=1", ["X-Other"] = "o" } })
  return res.body
end)
''')
        def sent(to):
            u = "http://127.0.0.1:%d/redirect?to=%s" % (a.port, to)
            body = curl(s.url("/authredir?u=" + urllib.parse.quote(u, safe="")))[2]
            return dict(json.loads(body)["headers"])
        other = sent("http://127.0.0.1:%d/echo" % b.port)
        self.assertEqual(other["x-other"], "o")
        for gone in ("authorization", "cookie"):
            self.assertNotIn(gone, other)
        self.assertEqual(other["host"], "127.0.0.1:%d" % b.port)
        same = sent("/echo")  # the same server: all of them
        self.assertEqual((same["authorization"], same["cookie"]), ("Bearer secret", "c=1"))

    def test_redirect_locations(self):
        # Location as servers write it: a #fragment (dropped, not a failure), a query
        # alone (the same path), one that is no URL at all (not followed)
        def script(b, c):
            while True:
                head = b.read_head(c)
                if not head:
                    return
                target = head.split(b" ")[1]
                if b"to=" in target:
                    to = urllib.parse.unquote(target.partition(b"to=")[2].decode()).encode()
                    c.sendall(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % to)
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target))
        b, s = self.scripted(script)
        for to, want in (("/there#part", b"200 - /there"),
                         ("?page=2", b"200 - /redirect?page=2"),
                         ("/a b", b"302 /a b ")):
            st, _, body = curl(s.url("/redirect?n=1&to=" + urllib.parse.quote(urllib.parse.quote(to, safe=""))))
            self.assertEqual((st, body), (200, want), to)

    def test_proxy_called_from_a_timer_does_not_crash(self):
        b = backends.Server().start()
        self.addCleanup(b.close)
        s = self.server(config(b.port) + r'''
local P = proxy("http://127.0.0.1:%d")
route("GET", "/ptimer", function(req)
  timer.after(0, function() local ok, err = pcall(P, {}); shared.set("ptimer", tostring(err)) end)
  return "armed"
end)
route("GET", "/ptimer-got", function(req) return tostring(shared.get("ptimer")) end)
''' % b.port)
        self.assertEqual(curl(s.url("/ptimer"))[2], b"armed")
        self.wait_for(lambda: curl(s.url("/ptimer-got"))[2] != b"nil", what="the timer's result")
        self.assertIn(b"outside a request", curl(s.url("/ptimer-got"))[2])
