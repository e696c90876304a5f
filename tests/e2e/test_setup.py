"""CONTRACT section 1 (make run) and command-line defaults that need a working folder."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BINARY, SLOW, ServerTest, connect, curl, get

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def port_free(port, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_line(path, pattern, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        if proc.poll() is not None:
            return None
        time.sleep(0.1)
    return None


class Setup(ServerTest):
    def test_make_run_serves_html_on_8080(self):
        if not port_free(8080):
            self.skipTest("port 8080 is in use on this machine")
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        with tempfile.NamedTemporaryFile() as out:
            proc = subprocess.Popen(["make", "run"], cwd=REPO, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                m = wait_line(out.name, r"listening on http://127\.0\.0\.1:8080/", proc, 240)
                with open(out.name, errors="replace") as f:
                    self.assertIsNotNone(m, f.read()[-2000:])
                status, _, body = curl("http://127.0.0.1:8080/")
                with open(os.path.join(REPO, "html", "index.html"), "rb") as f:
                    self.assertEqual((status, body), (200, f.read()))
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)

    def test_config_lua_in_working_folder_is_the_default(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "site"))
            with open(os.path.join(d, "site", "hello.txt"), "w") as f:
                f.write("picked up")
            with open(os.path.join(d, "config.lua"), "w") as f:
                f.write('docroot = "site"\nport = 0\naccess_log = false\n')
            out = os.path.join(d, "out")
            with open(out, "w") as o:
                proc = subprocess.Popen([BINARY], cwd=d, stdout=o, stderr=subprocess.DEVNULL)
            try:
                m = wait_line(out, r"listening on http://127\.0\.0\.1:(\d+)/", proc, 5)
                self.assertIsNotNone(m)
                self.assertEqual(curl("http://127.0.0.1:%s/hello.txt" % m.group(1))[2],
                                 b"picked up")
            finally:
                proc.terminate()
                proc.wait(timeout=5)

    def test_shutdown_timeout_bounds_a_stuck_client(self):
        # a client that never reads its 5 MiB response cannot hold the stop up; the
        # download it abandons is logged, and the exit status says so
        s = self.server("shutdown_timeout = 1\n", files={"big.bin": b"x" * (5 << 20)})
        c = connect(s.port)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(get("/big.bin"))
        c.recv(1000)  # the response is under way: the stop waits for it
        t = time.time()
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait(timeout=6 * SLOW), 1)
        self.assertLess(time.time() - t, 3 * SLOW)
        self.assertIn("shutdown_timeout: abandoning a response being sent", s.stderr())
        c.close()

    def test_workers_flag(self):
        s = self.server("", files={"a.txt": "A"}, args=["-w", "3"])
        # the error log line may come a moment after the listening line
        self.wait_for(lambda: "3 worker(s)" in s.stderr(), what="the workers line")
        for _ in range(20):
            self.assertEqual(curl(s.url("/a.txt"))[2], b"A")
        s2 = self.server('workers = "auto"\n', files={"a.txt": "A"})
        self.wait_for(lambda: re.search(r"\b%d worker\(s\)" % os.cpu_count(), s2.stderr()),
                      what="the workers line")

    def test_ipv6_host(self):
        if not socket.has_ipv6 or not port_free(0, "::1"):
            self.skipTest("no IPv6 loopback here")
        s = self.server('host = "::1"\n', files={"a.txt": "six"}, expect_start=False)
        m = None
        deadline = time.time() + 5 * SLOW
        while not m and time.time() < deadline:
            m = re.search(r"listening on http://\[::1\]:(\d+)/", s.stdout())
            time.sleep(0.05)
        self.assertIsNotNone(m, s.stderr())
        self.assertEqual(curl("http://[::1]:%s/a.txt" % m.group(1))[2], b"six")


class Showcase(ServerTest):
    """The shipped config.lua and scripts/api.lua work as their comments say: run
    from a copy of the repository's config.lua, scripts/ and html/, so that the
    database the API creates (data/app.db) is the test's own."""

    def start_copy(self, d, *args):
        out = os.path.join(d, "out")
        with open(out, "w") as o:
            proc = subprocess.Popen([BINARY, "-c", os.path.join(d, "config.lua"), "-p", "0",
                                     *args], stdout=o, stderr=subprocess.DEVNULL)
        m = wait_line(out, r"listening on http://127\.0\.0\.1:(\d+)/", proc, 5)
        if not m:
            proc.kill()
            proc.wait()
            self.fail("the shipped config did not start")
        return proc, "http://127.0.0.1:%s" % m.group(1)

    def stop_copy(self, proc):
        proc.terminate()
        self.assertEqual(proc.wait(timeout=10), 0)
        os.unlink(os.path.join(os.path.dirname(proc.args[2]), "out"))

    def copy_repo(self, d):
        shutil.copy(os.path.join(REPO, "config.lua"), d)
        for sub in ("scripts", "html"):
            shutil.copytree(os.path.join(REPO, sub), os.path.join(d, sub))

    def test_shipped_api_hooks_and_site(self):
        import json
        with tempfile.TemporaryDirectory() as d:
            self.copy_repo(d)
            proc, base = self.start_copy(d)
            try:
                status, h, body = curl(base + "/api/items")
                self.assertEqual((status, body), (200, b"[]"))
                self.assertEqual(h["x-powered-by"], "luahttpd")
                status, h, body = curl("-X", "POST", "-d", '{"name":"milk"}', base + "/api/items")
                self.assertEqual(status, 201)
                self.assertEqual(json.loads(body), {"id": 1, "name": "milk"})
                self.assertEqual(h["location"], "/api/items/1")
                self.assertEqual(curl("-X", "POST", "-d", "nope", base + "/api/items")[0], 400)
                self.assertEqual(json.loads(curl(base + "/api/items/1")[2])["name"], "milk")
                self.assertEqual(json.loads(curl(base + "/api/items")[2]),
                                 [{"id": 1, "name": "milk"}])
                self.assertEqual(json.loads(curl(base + "/hello/world")[2]), {"hello": "world"})
                self.assertEqual(curl(base + "/admin/stats")[0], 401)
                status, _, body = curl("-H", "Authorization: Bearer letmein", base + "/admin/stats")
                self.assertEqual((status, json.loads(body)), (200, {"items": 1}))
                curl("-X", "POST", "-d", '{"name":"say \\"hi\\""}', base + "/api/items")
                st, h, body = curl(base + "/api/items.csv")
                self.assertEqual((st, h["transfer-encoding"], body),
                                 (200, "chunked", b'id,name\r\n1,"milk"\r\n2,"say ""hi"""\r\n'))
                self.assertEqual(json.loads(curl(base + "/api/stats")[2]),
                                 {"requests": 8, "items": 2})
                self.assertEqual(curl("-X", "DELETE", base + "/api/items/1")[0], 204)
                self.assertEqual(curl(base + "/api/items/1")[0], 404)
                status, h, _ = curl(base + "/")
                self.assertEqual((status, h["x-powered-by"]), (200, "luahttpd"))
                self.assertEqual(curl(base + "/no-such-page")[0], 404)
            finally:
                proc.terminate()
                proc.wait(timeout=5)
            self.assertTrue(os.path.exists(os.path.join(d, "data", "app.db")))

    def test_shipped_login_and_upload(self):
        # scripts/forms.lua: a login that sets a session cookie and redirects, and an
        # upload kept in SQLite
        import json
        with tempfile.TemporaryDirectory() as d:
            self.copy_repo(d)
            proc, base = self.start_copy(d, "-w", "2")
            try:
                self.assertEqual(curl(base + "/login")[0], 200)
                st, h, _ = curl("-d", "user=ada&password=nope", base + "/login")
                self.assertEqual(st, 401)
                st, h, _ = curl("-d", "user=ada&password=lovelace", base + "/login")
                self.assertEqual((st, h["location"]), (303, "/me"))
                cookie = h["set-cookie"].split(";")[0]
                self.assertRegex(cookie, r"^sid=[0-9a-f]{32}$")
                # the session is in shared: every worker knows it
                for _ in range(6):
                    self.assertEqual(json.loads(curl("-b", cookie, base + "/me")[2]),
                                     {"user": "ada"})
                self.assertEqual(curl(base + "/me")[0], 302)
                data = bytes(range(256)) * 8
                path = os.path.join(d, "up.bin")
                with open(path, "wb") as f:
                    f.write(data)
                st, h, _ = curl("-F", "file=@%s;type=application/x-demo" % path,
                                base + "/upload")
                self.assertEqual((st, h["location"]), (303, "/uploads/1"))
                self.assertEqual(json.loads(curl(base + "/uploads")[2]),
                                 [{"id": 1, "filename": "up.bin",
                                   "content_type": "application/x-demo", "size": 2048}])
                st, h, body = curl(base + "/uploads/1")
                self.assertEqual((st, h["content-type"], body), (200, "application/x-demo", data))
                st, h, _ = curl("-b", cookie, base + "/logout")
                self.assertEqual(st, 303)
                self.assertEqual(curl("-b", cookie, base + "/me")[0], 302)
            finally:
                self.stop_copy(proc)

    def test_items_survive_a_restart_and_every_worker_sees_them(self):
        import json
        with tempfile.TemporaryDirectory() as d:
            self.copy_repo(d)
            proc, base = self.start_copy(d, "-w", "4")
            try:
                for name in ("milk", "eggs", "bread"):
                    self.assertEqual(curl("-X", "POST", "-d", json.dumps({"name": name}),
                                          base + "/api/items")[0], 201)
                want = [{"id": 1, "name": "milk"}, {"id": 2, "name": "eggs"},
                        {"id": 3, "name": "bread"}]
                # 40 connections at once, so that all four workers answer some
                lists = []
                threads = [threading.Thread(target=lambda: lists.append(
                    json.loads(curl(base + "/api/items")[2]))) for _ in range(40)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                self.assertEqual(lists, [want] * 40)
            finally:
                self.stop_copy(proc)
            proc, base = self.start_copy(d)
            try:
                self.assertEqual(json.loads(curl(base + "/api/items/2")[2])["name"], "eggs")
                self.assertEqual(json.loads(curl(base + "/api/items")[2]), want)
                # the counter is in memory: a restart starts it again
                self.assertEqual(json.loads(curl(base + "/api/stats")[2]),
                                 {"requests": 3, "items": 3})
            finally:
                self.stop_copy(proc)
