"""CONTRACT section 2 (signals, listening line, SO_REUSEADDR) and section 6 (logs)."""

import os
import re
import signal
import socket
import subprocess
import time

from harness import BINARY, SLOW, Reader, Server, ServerTest, connect, curl, get, request

BIG = 5 * 1024 * 1024


class Signals(ServerTest):
    def test_sigterm_and_sigint_exit_0(self):
        # workers = 1 serves on the main thread, which also takes the signals
        for sig, workers in ((signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)):
            s = self.server("shutdown_timeout = 2\nworkers = %d\n" % workers,
                            files={"a.txt": "A"})
            self.assertEqual(curl(s.url("/a.txt"))[0], 200)
            t = time.time()
            s.signal(sig)
            self.assertEqual(s.wait(timeout=6 * SLOW), 0)
            self.assertLess(time.time() - t, 4 * SLOW)

    def test_idle_keepalive_closed_on_stop(self):
        s = self.server("", files={"a.txt": "A"})
        r, rd = request(s.port, get("/a.txt"))
        self.assertEqual(r.status, 200)
        s.signal(signal.SIGTERM)
        self.assertTrue(rd.closed(timeout=3))
        rd.sock.close()
        self.assertEqual(s.wait(timeout=6 * SLOW), 0)

    def test_download_in_flight_completes(self):
        for workers in (1, 2):
            with self.subTest(workers=workers):
                self.download_in_flight_completes(workers)

    def download_in_flight_completes(self, workers):
        data = os.urandom(BIG)
        s = self.server("shutdown_timeout = 10\nworkers = %d\n" % workers,
                        files={"big.bin": data})
        c = connect(s.port, timeout=5)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        c.sendall(get("/big.bin"))
        got = c.recv(65536)
        s.signal(signal.SIGTERM)
        # the rest is read while the server stops
        self.wait_for(lambda: "stopping" in s.stderr(), what="the stop")
        deadline = time.time() + 8 * SLOW
        while time.time() < deadline:
            d = c.recv(65536)
            if not d:
                break
            got += d
            if len(got) < BIG // 2:
                time.sleep(0.002)  # a slow reader, for the first half
        c.close()
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d" % BIG, head)
        self.assertEqual(len(body), BIG)
        self.assertEqual(body, data)
        self.assertEqual(s.wait(timeout=10 * SLOW), 0)

    def test_new_connections_refused_after_stop(self):
        s = self.server("shutdown_timeout = %d\n" % (3 * SLOW), files={"big.bin": b"x" * BIG})
        c = connect(s.port)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.sendall(get("/big.bin"))
        c.recv(1000)  # a request in flight keeps the server alive for a while

        def refused():
            try:
                n = socket.create_connection(("127.0.0.1", s.port), timeout=1 * SLOW)
                try:
                    n.sendall(get("/big.bin"))
                    return n.recv(100) == b""  # closed without an answer
                finally:
                    n.close()
            except OSError:
                return True
        s.signal(signal.SIGTERM)
        # soon after the signal (well within shutdown_timeout), while still running
        self.wait_for(refused, timeout=1.0, what="new connections to be refused")
        self.assertIsNone(s.proc.poll())
        c.close()
        self.assertEqual(s.wait(timeout=6 * SLOW), 0)

    def test_sighup_reload(self):
        s = self.server("", files={"a.txt": "A", "home.html": "new index",
                                   "index.html": "old index"})
        self.assertEqual(curl(s.url("/"))[2], b"old index")
        kept = connect(s.port)
        rd = Reader(kept)
        kept.sendall(get("/a.txt"))
        self.assertEqual(rd.response().body, b"A")
        s.rewrite_config('index = "home.html"\nkeepalive = { enabled = false }\n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: curl(s.url("/"))[2] == b"new index", what="reload")
        self.assertEqual(curl(s.url("/a.txt"))[1].get("connection"), "close")
        # the connection opened before the reload is still served
        kept.sendall(get("/a.txt"))
        self.assertEqual(rd.response().body, b"A")
        kept.close()
        self.assertIsNone(s.proc.poll())

    def test_sighup_to_another_docroot_forgets_misses(self):
        s = self.server("workers = 2\n")
        for _ in range(4):
            self.assertEqual(curl(s.url("/only2.txt"))[0], 404)
        os.mkdir(os.path.join(s.dir, "www2"))  # outside the watched docroot: no event
        with open(os.path.join(s.dir, "www2", "only2.txt"), "w") as f:
            f.write("second root")
        s.rewrite_config('docroot = "www2"\nworkers = 2\n')
        s.signal(signal.SIGHUP)
        # both workers switch; neither answers from what it remembered of the old root
        self.wait_for(lambda: all(curl(s.url("/only2.txt"))[2] == b"second root"
                                  for _ in range(6)), what="reload")
        for _ in range(4):
            self.assertEqual(curl(s.url("/later.txt"))[0], 404)
        with open(os.path.join(s.dir, "www2", "later.txt"), "w") as f:
            f.write("later")
        self.assertEqual(curl(s.url("/later.txt"))[:3:2], (200, b"later"))

    def test_sighup_with_broken_file_keeps_old_config(self):
        s = self.server('index = "one.html"\n', files={"one.html": "one", "two.html": "two"})
        self.assertEqual(curl(s.url("/"))[2], b"one")
        s.rewrite_config('index = "two.html"\nport = \n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: "config.lua" in s.stderr() and "reload" in s.stderr().lower(),
                      what="reload error in the log")
        self.assertEqual(curl(s.url("/"))[2], b"one")
        # and a wrong value, not just bad syntax
        s.rewrite_config('index = "two.html"\nworkers = -3\n')
        failed = s.stderr().count("reload failed")
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: s.stderr().count("reload failed") > failed,
                      what="the second reload error in the log")
        self.assertEqual(curl(s.url("/"))[2], b"one")
        self.assertIsNone(s.proc.poll())

    def test_restart_binds_same_port_at_once(self):
        s = self.server("", files={"a.txt": "A"})
        port = s.port
        c = connect(port)
        c.sendall(get("/a.txt"))
        Reader(c).response()
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait(timeout=6 * SLOW), 0)
        c.close()
        s2 = self.server("", files={"a.txt": "again"}, args=["-p", str(port)],
                         expect_start=False)
        deadline = time.time() + 5 * SLOW
        while "listening on" not in s2.stdout() and time.time() < deadline:
            self.assertIsNone(s2.proc.poll(), s2.stderr())
            time.sleep(0.05)
        self.assertIn("listening on http://127.0.0.1:%d/" % port, s2.stdout())

    def test_listening_line_is_flushed_with_real_port(self):
        s = self.server("", files={"a.txt": "A"})
        lines = s.stdout().splitlines()
        self.assertEqual(lines[0], "listening on http://127.0.0.1:%d/" % s.port)
        self.assertNotEqual(s.port, 0)


class Logs(ServerTest):
    LINE = re.compile(r'^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                      r'"GET /index\.html HTTP/1\.1" 200 4 "http://ref/" "test-agent/1"$')

    def test_access_log_file_combined_format(self):
        s = self.server('access_log = "access.log"\n', files={"index.html": "home"})
        curl("-A", "test-agent/1", "-e", "http://ref/", s.url("/index.html"))
        path = os.path.join(s.dir, "access.log")
        self.wait_for(lambda: os.path.exists(path) and open(path).read().strip(), what="log")
        with open(path) as f:
            line = f.read().strip().splitlines()[-1]
        self.assertRegex(line, self.LINE)

    def test_access_log_stdout_and_dashes(self):
        s = self.server("", files={"index.html": "home"})
        r, rd = request(s.port, get("/missing"))
        rd.sock.close()
        self.wait_for(lambda: "/missing" in s.stdout(), what="log line on stdout")
        self.assertRegex(s.stdout(), r'"GET /missing HTTP/1\.1" 404 \d+ "-" "-"')

    def test_access_log_off(self):
        s = self.server("access_log = false\n", files={"index.html": "home"})
        curl(s.url("/index.html"))
        time.sleep(0.2)
        self.assertEqual(s.stdout().strip().splitlines(),
                         ["listening on http://127.0.0.1:%d/" % s.port])

    def test_error_log_start_and_stop(self):
        s = self.server('error_log = "error.log"\n', files={"index.html": "home"})
        path = os.path.join(s.dir, "error.log")
        self.wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, what="log")
        with open(path) as f:
            self.assertIn("start", f.read().lower())
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait(10 * SLOW), 0)
        with open(path) as f:
            self.assertIn("stop", f.read().lower())

    def test_config_warning_in_error_log(self):
        s = self.server('error_log = "error.log"\nmax_conections = 5\n',
                        files={"index.html": "home"})
        with open(os.path.join(s.dir, "error.log")) as f:
            text = f.read()
        self.assertIn("max_conections", text)
        self.assertIn("max_connections", text)  # the suggestion
