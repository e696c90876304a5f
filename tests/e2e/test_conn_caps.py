"""Connections and their caps (issue 10): pipelined requests followed by a half-close
(CONTRACT section 5), short connections below keepalive.max_per_client, refusals over
max_per_client / max_connections in both logs (sections 3 and 6), and the bound on
sockets kept open for a lingering close."""

import os
import re
import resource
import socket
import threading
import time

from harness import SLOW, Reader, ServerTest, connect, get

FILES = {"f%d.txt" % i: "body-%d" % i for i in range(40)}
FILES["a.txt"] = "A"


def raise_nofile(want):
    """Let this process hold `want` sockets; False when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        return False
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return True


class PipelineHalfClose(ServerTest):
    """`printf 'GET ...GET ...' | nc`: the client sends its requests, then shuts down
    its sending side. Every complete request is answered, in order, then the server
    closes."""

    def _pipeline(self, n, tail=b""):
        s = self.server("", files=FILES)
        c = connect(s.port, timeout=5)
        try:
            c.sendall(b"".join(get("/f%d.txt" % i) for i in range(n)) + tail)
            c.shutdown(socket.SHUT_WR)
            rd = Reader(c)
            for i in range(n):
                r = rd.response()
                self.assertEqual((i, r.status, r.body), (i, 200, b"body-%d" % i))
                if i < n - 1:  # keep-alive as without the half-close
                    self.assertIsNone(r.header("Connection"), "response %d" % i)
            self.assertTrue(rd.closed(timeout=5), "nothing may follow the last response")
        finally:
            c.close()

    def test_20_pipelined_then_half_close(self):
        self._pipeline(20)

    def test_40_pipelined_then_half_close(self):
        self._pipeline(40)

    def test_incomplete_request_after_half_close_is_dropped(self):
        # the client can never finish it: no answer, as nginx does, and the close
        self._pipeline(20, tail=b"GET /f0.txt HTTP/1.1\r\nHost: x\r\n")


class ShortConnections(ServerTest):
    """A client that opens one connection per request (ab without -k, HTTP/1.0,
    nginx's default proxy_http_version) at a concurrency below max_per_client."""

    def test_no_503_below_max_per_client(self):
        # Each thread keeps its earlier connections open and never reads their FIN:
        # the server then keeps them in a lingering close for a while. Those cannot
        # carry another request and must not count against the cap.
        s = self.server("keepalive = { max_per_client = 10 }\n", files=FILES)
        statuses, lock = [], threading.Lock()

        def client(t):
            held = []
            try:
                for n in range(10):
                    c = connect(s.port, timeout=5)
                    held.append(c)
                    if (t + n) % 2:
                        c.sendall(get("/a.txt", extra=b"Connection: close\r\n"))
                    else:
                        c.sendall(get("/a.txt", version=b"HTTP/1.0"))
                    r = Reader(c).response()
                    with lock:
                        statuses.append(r.status)
            finally:
                for c in held:
                    c.close()

        threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60 * SLOW)
        self.assertEqual(sorted(statuses), [200] * 80)


def refusal_counts(stderr):
    """Connections the error log's refusal lines account for, as (total, lines)."""
    counts = [int(m) for m in re.findall(r"refused (\d+) connections? with 503", stderr)]
    return sum(counts), counts


class Refusals(ServerTest):
    """Refusals over a cap show in the error log (rate-limited, with the cap and the
    client's address) and in the access log (one 503 line each)."""

    def _refuse(self, config, cap_text):
        s = self.server(config, files=FILES)
        held = []
        start = time.time()
        try:
            for _ in range(2):
                c = connect(s.port)
                c.sendall(get("/a.txt"))
                self.assertEqual(Reader(c).response().status, 200)
                held.append(c)
            for _ in range(3):
                c = connect(s.port)
                held.append(c)
                c.sendall(get("/a.txt"))
                rd = Reader(c)
                self.assertEqual(rd.response().status, 503)
                self.assertTrue(rd.closed())
            # the first refusal is logged at once, the others within a second or so
            self.wait_for(lambda: refusal_counts(s.stderr())[0] == 3, timeout=5,
                          what="the refusals in the error log")
        finally:
            for c in held:
                c.close()
        lines = [l for l in s.stderr().splitlines() if "refused" in l]
        # at most one line a second
        self.assertLessEqual(len(lines), 1 + int(time.time() - start) + 1, lines)
        for line in lines:
            self.assertIn("[warn]", line)
            self.assertIn(cap_text, line)
            self.assertIn("127.0.0.1", line)
        access = [l for l in s.stdout().splitlines() if l.startswith("127.0.0.1 ")]
        refused = [l for l in access if '"-" 503 ' in l]
        self.assertEqual(len(refused), 3, access)
        self.assertEqual(len([l for l in access if '"GET /a.txt HTTP/1.1" 200 ' in l]), 2)

    def test_over_max_per_client_is_logged(self):
        self._refuse("keepalive = { max_per_client = 2 }\n", "keepalive.max_per_client = 2")

    def test_over_max_connections_is_logged(self):
        self._refuse("max_connections = 2\n", "max_connections = 2")


class LingerBound(ServerTest):
    def test_refused_flood_holds_a_bounded_number_of_sockets(self):
        # A client floods past max_connections and keeps every refused connection
        # open. Each would otherwise stay in a lingering close for two seconds,
        # uncounted, so the flood could take every descriptor the process has.
        flood = 1500
        if not raise_nofile(flood + 200):
            self.skipTest("not enough file descriptors here")
        s = self.server("max_connections = 1\nkeepalive = { timeout = 60 }\n", files=FILES)
        held = []
        try:
            first = connect(s.port)
            held.append(first)
            first.sendall(get("/a.txt"))
            self.assertEqual(Reader(first).response().status, 200)
            peak = 0
            start = time.time()
            for i in range(flood):
                c = connect(s.port)
                held.append(c)
                c.sendall(get("/a.txt"))
                self.assertEqual(Reader(c).response().status, 503)
                if i % 100 == 99:
                    peak = max(peak, s.open_fds())
            peak = max(peak, s.open_fds())
            # at most 1024 lingering sockets, and the rest of what the server holds
            self.assertLess(peak, 1024 + 100)
            # the first connection still works
            first.sendall(get("/a.txt"))
            self.assertEqual(Reader(first).response().status, 200)
            self.wait_for(lambda: refusal_counts(s.stderr())[0] == flood, timeout=5,
                          what="every refusal in the error log")
        finally:
            for c in held:
                c.close()
        total, counts = refusal_counts(s.stderr())
        self.assertEqual(total, flood)
        self.assertLessEqual(len(counts), 1 + int(time.time() - start) + 1, counts)
