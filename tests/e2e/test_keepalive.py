"""CONTRACT section 3 keep-alive policy and connection caps; section 5 persistence."""

import time

from harness import SLOW, Reader, ServerTest, connect, curl, get, request


class KeepAlive(ServerTest):
    FILES = {"a.txt": "A", "b.txt": "B"}

    def test_reuse(self):
        s = self.server("", files=self.FILES)
        c = connect(s.port)
        rd = Reader(c)
        for _ in range(5):
            c.sendall(get("/a.txt"))
            r = rd.response()
            self.assertEqual(r.body, b"A")
            self.assertIsNone(r.header("Connection"))
        c.close()

    def test_idle_timeout_closes(self):
        s = self.server("keepalive = { timeout = 1 }\n", files=self.FILES)
        r, rd = request(s.port, get("/a.txt"))
        self.assertEqual(r.status, 200)
        t = time.time()
        self.assertTrue(rd.closed(timeout=4))
        self.assertGreater(time.time() - t, 0.7)
        self.assertLess(time.time() - t, 3 * SLOW)
        rd.sock.close()

    def test_max_requests(self):
        s = self.server("keepalive = { max_requests = 3 }\n", files=self.FILES)
        c = connect(s.port)
        rd = Reader(c)
        for i in range(3):
            c.sendall(get("/a.txt"))
            r = rd.response()
            self.assertEqual(r.status, 200)
            if i < 2:
                self.assertIsNone(r.header("Connection"))
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(rd.closed())
        c.close()

    def test_keepalive_disabled(self):
        s = self.server("keepalive = { enabled = false }\n", files=self.FILES)
        r, rd = request(s.port, get("/a.txt"))
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(rd.closed())
        rd.sock.close()
        self.assertEqual(curl(s.url("/a.txt"))[1]["connection"], "close")

    def test_client_connection_close(self):
        s = self.server("", files=self.FILES)
        r, rd = request(s.port, get("/a.txt", extra=b"Connection: close\r\n"))
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(rd.closed())
        rd.sock.close()

    def _check_cap(self, s, cap):
        held = []
        for _ in range(cap):
            r, rd = request(s.port, get("/a.txt"))
            self.assertEqual(r.status, 200)
            held.append(rd)
        r, rd = request(s.port, get("/a.txt"))
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(rd.closed())
        rd.sock.close()
        held.pop().sock.close()
        deadline = time.time() + 3 * SLOW  # until the server has seen the close
        while True:
            r, rd = request(s.port, get("/b.txt"))
            rd.sock.close()
            if r.status == 200 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual((r.status, r.body), (200, b"B"))
        for rd in held:
            rd.sock.close()

    def test_max_per_client(self):
        self._check_cap(self.server("keepalive = { max_per_client = 2 }\n", files=self.FILES), 2)

    def test_max_connections(self):
        self._check_cap(self.server("max_connections = 2\n", files=self.FILES), 2)

    def test_caps_are_global_across_workers(self):
        s = self.server("keepalive = { max_per_client = 3 }\n", files=self.FILES,
                        args=["-w", "2"])
        self._check_cap(s, 3)

    def test_slow_request_gets_408_while_others_served(self):
        s = self.server("limits = { request_timeout = 1 }\n", files=self.FILES)
        slow = connect(s.port, timeout=5)
        slow.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t = time.time()
        self.assertEqual(curl(s.url("/b.txt"))[2], b"B")
        self.assertLess(time.time() - t, 0.9 * SLOW)
        rd = Reader(slow)
        r = rd.response()
        self.assertEqual(r.status, 408)
        self.assertLess(time.time() - t, 3 * SLOW)
        self.assertTrue(rd.closed())
        slow.close()

    def test_drip_feed_is_bounded_by_request_timeout(self):
        # one byte at a time keeps an inactivity timer alive forever; ours is a deadline
        s = self.server("limits = { request_timeout = 1 }\n", files=self.FILES)
        c = connect(s.port, timeout=5)
        t = time.time()
        closed = False
        for ch in b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"a" * 100:
            try:
                c.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
            if time.time() - t > 6 * SLOW:
                break
        self.assertTrue(closed, "a drip-feeding client was never disconnected")
        c.settimeout(2)
        try:
            data = c.recv(200)
        except ConnectionResetError:
            data = b""
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 408"), data)
        self.assertLess(time.time() - t, 5 * SLOW)
        c.close()
