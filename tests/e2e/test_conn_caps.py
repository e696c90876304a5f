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


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


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
