"""Hostile clients and bad luck (issue 5): slow-loris, resets, readers that never
read, descriptor exhaustion, files that change under a download, a full disk."""

import os
import resource
import socket
import struct
import time
import unittest

from harness import SANITIZED, SLOW, VALGRIND, ServerTest, connect, curl, get

BIG = 5 * 1024 * 1024


def has_data(sock):
    """Whether bytes wait on sock (not read: they stay for a later recv)."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # a socket with a timeout would wait for them
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    finally:
        sock.settimeout(timeout)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Hostile(ServerTest):
    def test_slowloris_1000_while_others_served(self):
        if raise_nofile() < 2500:
            self.skipTest("not enough file descriptors here")
        s = self.server("keepalive = { max_per_client = 5000 }\nmax_connections = 5000\n"
                        "limits = { request_timeout = 30 }\n", files={"a.txt": "A"})
        held = []
        try:
            for _ in range(1000):
                c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                held.append(c)
            for _ in range(10):
                t = time.time()
                self.assertEqual(curl(s.url("/a.txt"), timeout=5)[2], b"A")
                self.assertLess(time.time() - t, 1.0 * SLOW)
        finally:
            for c in held:
                c.close()
        self.assertIsNone(s.proc.poll())

    @unittest.skipIf(SANITIZED or VALGRIND, "connections come from malloc in sanitizer "
                     "builds, and under valgrind RSS is valgrind's")
    def test_idle_connections_memory_returns(self):
        if raise_nofile() < 4000:
            self.skipTest("not enough file descriptors here")
        s = self.server("keepalive = { timeout = 1, max_per_client = 5000 }\n"
                        "max_connections = 5000\naccess_log = false\n", files={"a.txt": "A"})
        for rnd in range(2):  # the second round shows the first one's memory came back
            curl(s.url("/a.txt"))
            base = s.rss()
            conns = []
            try:
                for _ in range(3000):
                    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                    c.sendall(get("/a.txt"))
                    conns.append(c)
                for c in conns:
                    c.recv(4096)
                held = s.rss()
                # all of them idle: the server closes each after a second
                self.wait_for(lambda: all(c.recv(1) == b"" for c in conns), timeout=5,
                              what="the idle timeout")
                time.sleep(0.3)
                after = s.rss()
            finally:
                for c in conns:
                    c.close()
            grown, kept = held - base, after - base
            self.assertGreater(grown, 3000 * 200, "3000 idle connections cost nothing?")
            self.assertLess(kept, grown / 3, "round %d: %d of %d bytes still held after the "
                            "idle connections closed" % (rnd, kept, grown))

    def test_reset_mid_response(self):
        s = self.server("", files={"big.bin": b"x" * BIG, "a.txt": "A"})
        for _ in range(20):
            c = connect(s.port)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            c.sendall(get("/big.bin"))
            c.recv(4096)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()  # RST while the server is still sending
        self.assertEqual(curl(s.url("/a.txt"))[2], b"A")
        self.assertIsNone(s.proc.poll())

    def test_readers_that_never_read_cost_little_memory(self):
        s = self.server("", files={"big.bin": b"x" * BIG, "a.txt": "A"})
        curl(s.url("/a.txt"))
        base = s.rss()
        held = []
        for _ in range(50):
            c = connect(s.port)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sendall(get("/big.bin"))
            held.append(c)
        # measured once every download is under way (its head has come)
        self.wait_for(lambda: all(has_data(c) for c in held), what="the 50 downloads to start")
        grown = s.rss() - base
        self.assertLess(grown, 10 << 20, "%d bytes for 50 stalled 5 MiB downloads" % grown)
        self.assertEqual(curl(s.url("/a.txt"))[2], b"A")
        for c in held:
            c.close()

    def test_descriptor_exhaustion_no_spin_and_recovery(self):
        limit = 48

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        s = self.server("keepalive = { max_per_client = 1000 }\n", files={"a.txt": "A"},
                        preexec=low_limit)
        held = []
        for _ in range(limit + 20):
            try:
                c = socket.create_connection(("127.0.0.1", s.port), timeout=2)
                held.append(c)
            except OSError:
                break
        # it really ran out: measured from then on
        self.wait_for(lambda: "Too many open files" in s.stderr(), what="accept to fail")
        before = s.cpu_seconds()
        time.sleep(2.0)
        used = s.cpu_seconds() - before
        self.assertLess(used, 0.5, "the server spun while out of descriptors")
        for c in held:
            c.close()
        deadline = time.time() + 5 * SLOW
        body = None
        while time.time() < deadline:
            try:
                body = curl(s.url("/a.txt"), timeout=2)[2]
                if body == b"A":
                    break
            except AssertionError:
                pass
            time.sleep(0.2)
        self.assertEqual(body, b"A")

    def test_file_truncated_while_sent(self):
        s = self.server("", files={"big.bin": b"x" * BIG, "a.txt": "A"})
        c = connect(s.port, timeout=5)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        c.sendall(get("/big.bin"))
        got = c.recv(8192)
        with open(os.path.join(s.www, "big.bin"), "r+b") as f:
            f.truncate(1000)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                d = c.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            got += d
        c.close()
        # the promised length cannot be met: the connection ends short, nothing else
        self.assertLess(len(got), BIG)
        self.assertEqual(curl(s.url("/a.txt"))[2], b"A")

    def test_file_deleted_while_sent(self):
        # the server reads from the descriptor it opened: the download completes
        # with the content it started with, as with nginx and lighttpd
        # larger than what the two socket buffers can hold, so that the server is
        # still sending when the file goes (a small receive window did the same, at
        # 0.1 s per window)
        def most(name):
            with open("/proc/sys/net/ipv4/" + name) as f:
                return int(f.read().split()[2])
        size = most("tcp_wmem") + most("tcp_rmem") + (4 << 20)
        body = bytes(range(256)) * (size // 256)
        s = self.server("", files={"big.bin": body, "a.txt": "A"})
        c = connect(s.port, timeout=5)
        c.sendall(get("/big.bin"))
        first = c.recv(8192)
        os.unlink(os.path.join(s.www, "big.bin"))
        head, _, rest = first.partition(b"\r\n\r\n")
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        got = bytearray(rest)
        while len(got) < len(body):
            d = c.recv(1 << 20)
            if not d:
                break
            got += d
        c.close()
        self.assertTrue(got == body, "%d of %d bytes, or other bytes" % (len(got), len(body)))
        self.assertEqual(curl(s.url("/big.bin"))[0], 404)
        self.assertEqual(curl(s.url("/a.txt"))[2], b"A")

    def test_lua_errors_in_hooks(self):
        s = self.server('before(function(req) if req.path == "/b" then error("in before") end end)\n'
                        'after(function(req, res)\n'
                        '  if req.path == "/a.txt" or req.path == "/r" then error("in after") end\n'
                        'end)\n'
                        'route("GET", "/r", function() return "from route" end)\n'
                        'route("GET", "/ok", function() return "fine" end)\n',
                        files={"a.txt": "A", "b.txt": "B"})
        for _ in range(3):
            self.assertEqual(curl(s.url("/b"))[0], 500)       # before hook raised
            self.assertEqual(curl(s.url("/r"))[0], 500)       # after hook, Lua response
            self.assertEqual(curl(s.url("/a.txt"))[0], 500)   # after hook, static file
            self.assertEqual(curl(s.url("/ok"))[2], b"fine")  # everyone else is served
            self.assertEqual(curl(s.url("/b.txt"))[2], b"B")
        self.assertIn("in before", s.stderr())
        self.assertIn("in after", s.stderr())
        self.assertIsNone(s.proc.poll())

    def test_access_log_on_a_full_disk(self):
        s = self.server('access_log = "/dev/full"\n', files={"a.txt": "A"})
        for _ in range(20):
            self.assertEqual(curl(s.url("/a.txt"))[2], b"A")
        self.assertIsNone(s.proc.poll())

    def test_access_log_removed(self):
        s = self.server('access_log = "access.log"\n', files={"a.txt": "A"})
        curl(s.url("/a.txt"))
        os.unlink(os.path.join(s.dir, "access.log"))
        for _ in range(5):
            self.assertEqual(curl(s.url("/a.txt"))[2], b"A")
        self.assertIsNone(s.proc.poll())
