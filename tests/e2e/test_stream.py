"""CONTRACT section 3, "What a handler returns": a function as the body streams. The
server calls it until it returns nil and sends each piece at once, chunked on
HTTP/1.1, close-delimited on HTTP/1.0; HEAD gets the headers only. An error mid-stream
cuts the stream (no last chunk) and is logged; a client that goes away stops it; the
calls' Lua time counts into handler_timeout_ms; a slow reader holds the function back."""

import http.client
import signal
import subprocess
import threading
import time

from harness import SLOW, Reader, ServerTest, connect, curl, get, read_until_close

ROUTES = r'''
workers = 1
route("GET", "/lines", function(req)
  local n, i = tonumber(req.query.n or "10000"), 0
  return 200, function()
    i = i + 1
    if i > n then return nil end
    if i % 7 == 0 then return "" end          -- nothing sent, called again
    return "line " .. i .. " " .. req.path .. "\n"
  end, { ["Content-Type"] = "text/csv" }
end)
route("GET", "/plain", function(req)
  local i = 0
  return function()
    i = i + 1
    return i <= 3 and ("p" .. i) or nil
  end
end)
route("GET", "/counted", function(req)
  local i = 0
  return function()
    shared.incr("counted", 1)
    i = i + 1
    return i <= 3 and "c" or nil
  end
end)
route("GET", "/late", function(req)
  local t = os.clock()
  while os.clock() - t < 0.05 do end      -- the handler pauses before it answers
  local i = 0
  return function()
    i = i + 1
    return i <= 3 and ("late" .. i) or nil
  end
end)
route("GET", "/count/:k", function(req) return tostring(shared.get(req.params.k) or 0) end)
route("GET", "/ping", function(req) return "pong" end)
route("GET", "/boom", function(req)
  local i = 0
  return function()
    i = i + 1
    if i > 3 then error("boom in the stream") end
    return "piece " .. i .. "\n"
  end
end)
route("GET", "/notastring", function(req)
  local i = 0
  return function()
    i = i + 1
    if i > 2 then return 42 end
    return "ok\n"
  end
end)
route("GET", "/forever", function(req)
  local piece = string.rep("f", 1024)
  return function()
    shared.incr("forever", 1)
    return piece
  end
end)
route("GET", "/spin", function(req)
  local n, ms, i = tonumber(req.query.n), tonumber(req.query.ms), 0
  return function()
    shared.incr("spin", 1)
    i = i + 1
    if i > n or shared.get("stop") then return nil end
    local t = os.clock()
    while os.clock() - t < ms / 1000 do end
    return "s" .. i .. "\n"
  end
end)
route("GET", "/big", function(req)
  local n, i = tonumber(req.query.n), 0
  local piece = string.rep("b", 65536)
  return function()
    shared.incr("big", 1)
    i = i + 1
    if i > n then return nil end
    return piece
  end
end)
'''


def curl_run(*args, timeout=30):
    """curl -sS with args: (exit code, stdout, stderr)."""
    p = subprocess.run(["curl", "-sS", "--max-time", str(timeout * SLOW), *args],
                       capture_output=True, timeout=timeout * SLOW + 10)
    return p.returncode, p.stdout, p.stderr.decode()


def expected_lines(n, path="/lines"):
    return b"".join(b"line %d %s\n" % (i, path.encode()) for i in range(1, n + 1)
                    if i % 7 != 0)


def dechunk(data):
    """The body of a chunked message and whether it ended with the last chunk."""
    body, pos = b"", 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return body, False
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return body, data[eol + 2:eol + 4] == b"\r\n"
        start = eol + 2
        if len(data) < start + size + 2:
            return body + data[start:], False
        body += data[start:start + size]
        if data[start + size:start + size + 2] != b"\r\n":
            raise AssertionError("bad chunk framing at %d" % (start + size))
        pos = start + size + 2


class Stream(ServerTest):
    def count(self, s, key):
        return int(curl(s.url("/count/" + key))[2])

    def test_many_pieces_arrive_whole_and_in_order(self):
        s = self.server(ROUTES)
        want = expected_lines(10000)
        st, h, body = curl(s.url("/lines"), timeout=60)
        self.assertEqual(st, 200)
        self.assertEqual(h["transfer-encoding"], "chunked")
        self.assertNotIn("content-length", h)
        self.assertEqual(h["content-type"], "text/csv")
        self.assertEqual(body, want)
        # Python's own parser of chunked framing
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30 * SLOW)
        c.request("GET", "/lines")
        r = c.getresponse()
        self.assertEqual((r.status, r.getheader("Transfer-Encoding")), (200, "chunked"))
        self.assertEqual(r.read(), want)
        c.close()
        # one chunk per piece, none for an empty piece, and the last chunk
        sock = connect(s.port, timeout=30)
        sock.sendall(get("/lines?n=20", extra=b"Connection: close\r\n"))
        raw = read_until_close(sock)
        sock.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        self.assertTrue(rest.startswith(b"e\r\nline 1 /lines\n\r\n"), rest[:40])
        self.assertTrue(rest.endswith(b"\r\n0\r\n\r\n"), rest[-20:])
        self.assertEqual(dechunk(rest), (expected_lines(20), True))
        self.wait_for(lambda: '"GET /lines HTTP/1.1" 200 %d ' % len(want) in s.stdout(),
                      what="the access log line with the bytes sent")

    def test_default_content_type_and_after_hooks(self):
        s = self.server(ROUTES + r'''
after(function(req, res)
  res.headers["X-After"] = tostring(res.status)
end)
''')
        st, h, body = curl(s.url("/plain"))
        self.assertEqual((st, body), (200, b"p1p2p3"))
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertEqual(h["x-after"], "200")

    def test_handler_that_paused_streams_too(self):
        s = self.server(ROUTES + "limits = { handler_timeout_ms = 60000 }\n")
        st, h, body = curl(s.url("/late"))
        self.assertEqual((st, body, h["transfer-encoding"]), (200, b"late1late2late3", "chunked"))

    def test_http10_is_close_delimited(self):
        s = self.server(ROUTES)
        sock = connect(s.port, timeout=30)
        sock.sendall(get("/lines?n=50", version=b"HTTP/1.0"))
        raw = read_until_close(sock)  # the end of the body is the close
        sock.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        head = head.decode().lower()
        self.assertTrue(head.startswith("http/1.0 200 ok"), head)
        self.assertNotIn("transfer-encoding", head)
        self.assertNotIn("content-length", head)
        self.assertIn("connection: close", head)
        self.assertEqual(body, expected_lines(50))
        # asked for keep-alive, still closed: nothing else can end the body
        sock = connect(s.port, timeout=30)
        sock.sendall(get("/plain", version=b"HTTP/1.0", extra=b"Connection: keep-alive\r\n"))
        raw = read_until_close(sock)
        sock.close()
        self.assertTrue(raw.endswith(b"\r\n\r\np1p2p3"), raw)
        self.assertIn(b"Connection: close\r\n", raw)

    def test_head_sends_headers_and_never_calls(self):
        s = self.server(ROUTES)
        sock = connect(s.port)
        sock.sendall(b"HEAD /counted HTTP/1.1\r\nHost: x\r\n\r\n")
        rd = Reader(sock)
        r = rd.response(head_request=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(r.header("Content-Length"))
        # the connection goes on, and nothing came after the head
        sock.sendall(get("/ping"))
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, b"pong"))
        sock.close()
        self.assertEqual(self.count(s, "counted"), 0)
        self.assertEqual(curl(s.url("/counted"))[2], b"ccc")
        self.assertEqual(self.count(s, "counted"), 4)

    def test_error_mid_stream_cuts_it(self):
        s = self.server(ROUTES)
        rc, out, err = curl_run(s.url("/boom"))
        self.assertEqual(rc, 18, err)  # transfer closed with outstanding read data
        self.assertEqual(out, b"piece 1\npiece 2\npiece 3\n")
        self.wait_for(lambda: "boom in the stream" in s.stderr(), what="the error logged")
        self.assertIn("route GET /boom", s.stderr())
        sock = connect(s.port)
        sock.sendall(get("/boom"))
        raw = read_until_close(sock)  # closed by the server
        sock.close()
        body, complete = dechunk(raw.partition(b"\r\n\r\n")[2])
        self.assertEqual((body, complete), (b"piece 1\npiece 2\npiece 3\n", False))
        # a value that is neither a string nor nil
        rc, out, err = curl_run(s.url("/notastring"))
        self.assertEqual((rc, out), (18, b"ok\nok\n"), err)
        self.wait_for(lambda: "must return a string or nil, got number" in s.stderr(),
                      what="the bad value logged")
        self.assertEqual(curl(s.url("/ping"))[2], b"pong")  # and the server goes on

    def test_client_that_leaves_stops_the_function(self):
        s = self.server(ROUTES)
        sock = connect(s.port, timeout=10)
        sock.sendall(get("/forever"))
        got = 0
        while got < 200000:
            got += len(sock.recv(65536))
        sock.close()
        self.wait_for(lambda: '"GET /forever HTTP/1.1" 200 ' in s.stdout(), timeout=10,
                      what="the stream's access log line once the client left")
        before = self.count(s, "forever")
        time.sleep(0.5 * SLOW)
        self.assertEqual(self.count(s, "forever"), before)
        self.assertEqual(curl(s.url("/ping"))[2], b"pong")

    def test_time_limit_counts_the_calls(self):
        s = self.server(ROUTES + "limits = { handler_timeout_ms = 300 }\n")
        # pieces of 50 ms each: the limit is reached after about six of them
        rc, out, err = curl_run(s.url("/spin?n=40&ms=50"))
        self.assertEqual(rc, 18, err)
        self.assertTrue(out.startswith(b"s1\ns2\n"), out)
        self.assertLess(out.count(b"\n"), 12)
        self.wait_for(lambda: "handler_timeout_ms" in s.stderr(), what="the timeout logged")
        self.assertIn("route GET /spin", s.stderr())
        # pieces that take little time each are not cut
        rc, out, err = curl_run(s.url("/spin?n=40&ms=1"))
        self.assertEqual((rc, out.count(b"\n")), (0, 40), err)

    def test_other_clients_are_served_meanwhile(self):
        s = self.server(ROUTES + "limits = { handler_timeout_ms = 600000 }\n" +
                        'route("GET", "/stop", function() shared.set("stop", true) return "" end)\n')
        # pieces of 20 ms of CPU each until /stop: a stream that outlasts the test's
        # waits on any machine (it stops itself after 10,000, 200 s)
        done = threading.Event()
        result = {}

        def stream():
            result["r"] = curl_run(s.url("/spin?n=10000&ms=20"), timeout=300)
            done.set()

        t = threading.Thread(target=stream)
        t.start()
        try:
            # the stream has started (the count is answered between its pieces)
            self.wait_for(lambda: self.count(s, "spin") > 0, what="the stream")
            start = time.time()
            self.assertEqual(curl(s.url("/ping"))[2], b"pong")
            took = time.time() - start
            self.assertFalse(done.is_set(), "the stream should still be running")
            self.assertLess(took, 1.0 * SLOW)
        finally:
            curl(s.url("/stop"))
            t.join(300)
        rc, out, err = result["r"]
        lines = out.split(b"\n")[:-1]
        self.assertEqual(rc, 0, err)
        self.assertGreater(len(lines), 1)
        self.assertEqual(lines, [b"s%d" % i for i in range(1, len(lines) + 1)])

    def test_keepalive_after_a_stream(self):
        s = self.server(ROUTES)
        sock = connect(s.port, timeout=10)
        sock.sendall(get("/lines?n=100"))
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):
            d = sock.recv(65536)
            self.assertTrue(d, "closed before the end of the stream")
            data += d
        self.assertEqual(dechunk(data.partition(b"\r\n\r\n")[2]), (expected_lines(100), True))
        sock.sendall(get("/ping"))
        r = Reader(sock).response()
        self.assertEqual((r.status, r.body), (200, b"pong"))
        # a second stream on the same connection, then a pipelined request behind it
        sock.sendall(get("/plain") + get("/ping"))
        rd = Reader(sock)
        while b"0\r\n\r\n" not in rd.buf:
            rd._fill()
        head, _, rest = rd.buf.partition(b"\r\n\r\n")
        body, complete = dechunk(rest)
        self.assertEqual((body, complete), (b"p1p2p3", True))
        rd.buf = rest[rest.index(b"0\r\n\r\n") + 5:]
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, b"pong"))
        sock.close()

    def test_slow_reader_holds_the_function_back(self):
        pieces = 3200  # 64 KiB each: 200 MiB, most of it in the kernel, not valgrind's
        s = self.server(ROUTES + "limits = { handler_timeout_ms = 600000 }\n")
        sock = connect(s.port, timeout=60)
        sock.sendall(get("/big?n=%d" % pieces))
        time.sleep(1.0 * SLOW)  # read nothing: the socket buffers fill
        first = self.count(s, "big")
        time.sleep(0.5 * SLOW)
        held = self.count(s, "big")
        self.assertEqual(held, first, "the function went on while nothing was read")
        # what the socket buffers hold (about 4 MiB here), far from the whole body
        self.assertLess(held, pieces // 4)
        total = 0
        tail = b""
        while True:
            d = sock.recv(1 << 20)
            self.assertTrue(d, "closed before the end of the stream")
            total += len(d)
            tail = (tail + d)[-16:]
            if tail.endswith(b"\r\n0\r\n\r\n"):
                break
        sock.close()
        self.assertGreater(total, pieces * 65536)
        self.assertEqual(self.count(s, "big"), pieces + 1)  # the last call returned nil

    def test_reload_and_shutdown_let_the_stream_finish(self):
        s = self.server(ROUTES + "limits = { handler_timeout_ms = 60000 }\n"
                        "shutdown_timeout = 30\n")
        for sig in (signal.SIGHUP, signal.SIGTERM):
            sock = connect(s.port, timeout=60)
            sock.sendall(get("/spin?n=50&ms=10"))
            data = sock.recv(65536)
            s.signal(sig)
            while not data.endswith(b"\r\n0\r\n\r\n"):
                d = sock.recv(65536)
                self.assertTrue(d, "cut by %s" % sig)
                data += d
            sock.close()
            body, complete = dechunk(data.partition(b"\r\n\r\n")[2])
            self.assertEqual(body.count(b"\n"), 50)
            self.assertTrue(complete)
        self.assertEqual(s.wait(10 * SLOW), 0)

    def test_shutdown_timeout_cuts_an_endless_stream(self):
        s = self.server(ROUTES + "shutdown_timeout = 1\n")
        sock = connect(s.port, timeout=30)
        sock.sendall(get("/forever"))
        self.assertTrue(sock.recv(65536))
        s.signal(signal.SIGTERM)
        s.wait(15 * SLOW)
        self.assertIn("abandoning GET /forever", s.stderr())
        self.assertIn("(a streamed response)", s.stderr())
        sock.close()
