"""CONTRACT section 5: HTTP/1.x framing, strict parsing, limits, pipelining."""

import re
import socket
import time

from harness import Reader, ServerTest, connect, curl, get, raw, request


def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", resp)
    return int(m.group(1)) if m else None


class Http(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server("limits = { header_bytes = 1024, body_bytes = 100 }\n",
                             files={"index.html": "home", "a.txt": "A", "b.txt": "B",
                                    "c.txt": "C"})

    def assertClosedWith(self, data, status):
        """The server answers data with status and then closes the connection."""
        s = connect(self.s.port)
        try:
            s.sendall(data)
            rd = Reader(s)
            r = rd.response()
            self.assertEqual(r.status, status, data[:80])
            self.assertTrue(rd.closed(), "connection left open after %d" % status)
        finally:
            s.close()
        # and the server still serves everyone else
        self.assertEqual(curl(self.s.url("/a.txt"))[2], b"A")

    def test_every_response_has_date_server_and_length(self):
        for path in ("/a.txt", "/missing", "/"):
            status, h, body = curl(self.s.url(path))
            self.assertRegex(h["date"], r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$")
            self.assertTrue(h["server"].startswith("luahttpd/"))
            self.assertEqual(int(h["content-length"]), len(body))
        r, _ = request(self.s.port, b"GARBAGE\r\n\r\n")
        self.assertIsNotNone(r.header("Date"))
        self.assertTrue(r.header("Server").startswith("luahttpd/"))
        self.assertIsNotNone(r.header("Content-Length"))

    def test_malformed_requests_get_400_and_close(self):
        bad = [
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",                                     # no Host
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n continued\r\n\r\n",
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        ]
        for data in bad:
            self.assertClosedWith(data, 400)

    def test_unsupported_version(self):
        for v in (b"HTTP/2.0", b"HTTP/1.2"):
            resp = raw(self.s.port, b"GET / " + v + b"\r\nHost: x\r\n\r\n")
            self.assertIn(status_of(resp), (400, 505))

    def test_unknown_method_501(self):
        r, _ = request(self.s.port, b"FOO /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(r.status, 501)

    def test_limits(self):
        self.assertClosedWith(get("/a.txt", extra=b"X-Big: " + b"a" * 1100 + b"\r\n"), 431)
        self.assertClosedWith(get("/" + "a" * 2000), 414)
        self.assertClosedWith(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n",
                              413)
        chunked = b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + \
            b"40\r\n" + b"a" * 64 + b"\r\n" + b"40\r\n" + b"a" * 64 + b"\r\n0\r\n\r\n"
        self.assertClosedWith(chunked, 413)

    def test_chunked_body_consumed_then_next_request(self):
        s = connect(self.s.port)
        s.sendall(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n" + get("/b.txt"))
        rd = Reader(s)
        self.assertEqual(rd.response().status, 405)
        self.assertEqual(rd.response().body, b"B")
        s.close()

    def test_content_length_body_consumed(self):
        s = connect(self.s.port)
        s.sendall(b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /" +
                  get("/c.txt"))
        rd = Reader(s)
        self.assertEqual(rd.response().status, 405)
        self.assertEqual(rd.response().body, b"C")
        s.close()

    def test_expect_100_continue(self):
        s = connect(self.s.port)
        s.sendall(b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        interim = s.recv(100)
        self.assertEqual(interim, b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"abc")
        self.assertEqual(Reader(s).response().status, 405)
        s.close()

    def test_pipelined_in_order(self):
        s = connect(self.s.port)
        s.sendall(get("/a.txt") + get("/b.txt") + get("/c.txt"))
        rd = Reader(s)
        self.assertEqual([rd.response().body for _ in range(3)], [b"A", b"B", b"C"])
        s.close()

    def test_http10(self):
        r, rd = request(self.s.port, b"GET /a.txt HTTP/1.0\r\n\r\n")
        self.assertEqual((r.status, r.body), (200, b"A"))
        self.assertTrue(rd.closed())
        r, rd = request(self.s.port, b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        self.assertEqual(r.header("Connection").lower(), "keep-alive")
        rd.sock.sendall(b"GET /b.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        self.assertEqual(rd.response().body, b"B")
        rd.sock.close()

    def test_absolute_form_target(self):
        r, _ = request(self.s.port, b"GET http://x/a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((r.status, r.body), (200, b"A"))

    def test_server_survives_garbage_flood(self):
        for i in range(50):
            try:
                raw(self.s.port, bytes((i * 7 + k) % 256 for k in range(300)), timeout=2)
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertEqual(curl(self.s.url("/a.txt"))[2], b"A")
