"""CONTRACT section 7, live reload in --dev without a browser: the script in every HTML
page (static and Lua, Content-Length and ETag to match; a streamed page before its
</body>, or at the end when that came split across pieces), the event stream at
/__luahttpd/events and what goes out on it when a file is saved, a Lua file reloads
or a reload fails; Cache-Control: no-cache; and none of it without --dev. The
browser's side is in test_browser.py."""

import os
import signal
import socket
import time

from harness import SLOW, ServerTest, connect, curl, get

TAG = b'<script src="/__luahttpd/live.js"></script>'
PAGE = b"<!doctype html><html><head><link rel=stylesheet href=/style.css></head>" \
       b"<body><h1>1</h1></body></html>"
CONFIG = r'''
route("GET", "/lua", function() return "<html><BODY><p>lua</p></BODY></html>" end)
route("GET", "/fragment", function() return "<p>no body tag</p>" end)
route("GET", "/json", function() return { html = "</body>" } end)
route("GET", "/typed", function()
  return 200, "<html><body>x</body></html>", { ["Content-Type"] = "text/plain" }
end)
-- a streamed body, one piece per entry of ?p= (split at "|"), of ?type= (HTML if none)
route("GET", "/stream", function(req)
  local parts, i = {}, 0
  for part in (req.query.p or ""):gmatch("[^|]+") do parts[#parts + 1] = part end
  return 200, function() i = i + 1; return parts[i] end,
    { ["Content-Type"] = req.query.type or "text/html" }
end)
'''


class Events:
    """A page's event stream, read from a raw socket."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = connect(port, timeout=5 * SLOW)
        self.sock.sendall(get("/__luahttpd/events", host=host))
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill(time.time() + 5 * SLOW)
        self.head, _, self.buf = self.buf.partition(b"\r\n\r\n")

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.time()))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the event stream closed")
        self.buf += data

    def next(self, timeout=2.0):
        """The next event as (name, data), comments skipped; None after timeout."""
        deadline = time.time() + timeout * SLOW
        while True:
            while b"\n\n" in self.buf:
                block, _, self.buf = self.buf.partition(b"\n\n")
                name, data = None, []
                for line in block.decode().split("\n"):
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                if name:
                    return name, "\n".join(data)
            try:
                self._fill(deadline)
            except socket.timeout:
                return None

    def closed(self):
        """Whether the server has closed the stream (what came before is kept)."""
        try:
            self._fill(time.time() + 0.05)
        except socket.timeout:
            return False
        except (EOFError, ConnectionResetError):
            return True
        return False

    def close(self):
        self.sock.close()


class Live(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(CONFIG, files={"index.html": PAGE, "style.css": "h1{color:red}",
                                            "sub/deep.html": PAGE, "app.js": "1"},
                             args=("--dev",))
        self.streams = []

    def tearDown(self):
        for e in self.streams:
            e.close()
        super().tearDown()

    def events(self):
        e = Events(self.s.port)
        self.streams.append(e)
        self.assertEqual(e.next()[0], "hello")
        return e

    @staticmethod
    def _raw_start(port):
        sock = connect(port)
        sock.sendall(get("/__luahttpd/events", host="127.0.0.1"))
        data = b""
        while b"event: hello" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        return data.split(b"\r\n")

    def save(self, name, data):
        """As an editor saves: a new file renamed over the old one."""
        path = os.path.join(self.s.www, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(path + ".tmp", path)

    # ---- the script in pages ----

    def test_static_page_gets_the_script_before_body_end(self):
        status, h, body = curl(self.s.url("/"))
        self.assertEqual(body, PAGE.replace(b"</body>", TAG + b"</body>"))
        self.assertEqual(int(h["content-length"]), len(body))
        self.assertEqual(h["cache-control"], "no-cache")
        self.assertTrue(h["etag"].endswith('-live"'), h["etag"])
        # a HEAD says the same length; the tag of the page is its own and gives a 304
        status, h2, body = curl("-I", self.s.url("/"))
        self.assertEqual(h2["content-length"], h["content-length"])
        status, _, _ = curl("-H", "If-None-Match: " + h["etag"], self.s.url("/"))
        self.assertEqual(status, 304)
        # a range goes with the page as sent (the script in it), which the validators
        # name: a download resumed with If-Range, by tag or by date, must fit the
        # bytes it has
        status, h, full = curl(self.s.url("/"))
        for validator in (h["etag"], h["last-modified"], None):
            extra = ("-H", "If-Range: " + validator) if validator else ()
            status, h2, body = curl("-r", "20-", *extra, self.s.url("/"))
            self.assertEqual(full[:20] + body if status == 206 else body, full, validator)
            if status == 206:
                self.assertTrue(h2["content-range"].endswith("/%d" % len(full)), validator)

    def test_a_coded_page_revalidates_with_its_own_tag(self):
        # over 1 KiB: the page is gzip-coded after the script went in, with a tag of its
        # own; a browser revalidating with that tag gets a 304 that varies as the 200 did
        big = PAGE.replace(b"</body>", b"<p>" + b"words " * 400 + b"</p></body>")
        self.save("big.html", big)
        gz = ("-H", "Accept-Encoding: gzip")
        status, h, body = curl(*gz, self.s.url("/big.html"))
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertTrue(h["etag"].endswith('-live-gzip"'), h["etag"])
        self.assertEqual(h["vary"], "Accept-Encoding")
        status, h2, body = curl(*gz, "-H", "If-None-Match: " + h["etag"], self.s.url("/big.html"))
        self.assertEqual((status, body), (304, b""))
        self.assertEqual(h2["etag"], h["etag"])
        self.assertEqual(h2.get("vary"), "Accept-Encoding")
        # the identity page: its own tag, its own 304, the same Vary
        status, h3, body = curl(self.s.url("/big.html"))
        self.assertTrue(h3["etag"].endswith('-live"'), h3["etag"])
        status, h4, body = curl("-H", "If-None-Match: " + h3["etag"], self.s.url("/big.html"))
        self.assertEqual(status, 304)
        self.assertEqual(h4.get("vary"), "Accept-Encoding")
        # neither tag is taken for the other
        status, _, body = curl(*gz, "-H", "If-None-Match: " + h3["etag"], self.s.url("/big.html"))
        self.assertEqual(status, 200)
        status, _, body = curl("-H", "If-None-Match: " + h["etag"], self.s.url("/big.html"))
        self.assertEqual(status, 200)

    def test_lua_page_gets_the_script_and_others_do_not(self):
        status, h, body = curl(self.s.url("/lua"))
        self.assertEqual(body, b"<html><BODY><p>lua</p>" + TAG + b"</BODY></html>")
        self.assertEqual(int(h["content-length"]), len(body))
        for path in ("/fragment", "/json", "/typed", "/app.js", "/style.css"):
            self.assertNotIn(TAG, curl(self.s.url(path))[2], path)

    @staticmethod
    def _stream_url(s, *parts, type=None):
        from urllib.parse import urlencode
        q = {"p": "|".join(parts)}
        if type:
            q["type"] = type
        return s.url("/stream?" + urlencode(q))

    def _stream(self, *parts, type=None, http10=False):
        """The body of a streamed response, and the headers, read with curl."""
        extra = ("--http1.0",) if http10 else ()
        status, h, body = curl(*extra, self._stream_url(self.s, *parts, type=type))
        self.assertEqual(status, 200)
        self.assertNotIn("content-length", h)
        return body, h

    def test_streamed_page_gets_the_script_before_body_end(self):
        parts = ("<html><body>s", "tream", "</BODY></html>")
        for http10 in (False, True):
            body, h = self._stream(*parts, http10=http10)
            self.assertEqual(body, b"<html><body>stream" + TAG + b"</BODY></html>", http10)
        # once: a piece after the one that took it goes as it is
        body, _ = self._stream("<body>a</body>", "<!-- </body> -->")
        self.assertEqual(body, b"<body>a" + TAG + b"</body><!-- </body> -->")
        # the chunks are framed right: the next response on the connection reads well
        from harness import Reader
        sock = connect(self.s.port)
        try:
            path = self._stream_url(self.s, *parts)[len(self.s.url("")):]
            sock.sendall(get(path) + get("/app.js"))
            rd = Reader(sock)
            self.assertEqual(rd.response().body, b"<html><body>stream" + TAG + b"</BODY></html>")
            self.assertEqual(rd.response().body, b"1")
        finally:
            sock.close()

    def test_streamed_page_with_a_split_body_end_gets_the_script_at_the_end(self):
        parts = ("<html><body>s</bo", "dy></html>")
        for http10 in (False, True):
            body, _ = self._stream(*parts, http10=http10)
            self.assertEqual(body, b"<html><body>s</body></html>" + TAG, http10)
        body, _ = self._stream("<body>s</", "B", "ody></html>")
        self.assertEqual(body, b"<body>s</Body></html>" + TAG)
        # a stream with no </body> at all is a fragment (htmx), left as a string one is
        body, _ = self._stream("<p>a</p>", "<p>b</p>")
        self.assertEqual(body, b"<p>a</p><p>b</p>")

    def test_streamed_head_and_other_types_are_left_alone(self):
        body, _ = self._stream("<html><body>x</body></html>", type="text/plain")
        self.assertEqual(body, b"<html><body>x</body></html>")
        body, _ = self._stream("<p>a", "</p>", type="application/json")
        self.assertEqual(body, b"<p>a</p>")
        # a HEAD gets no body, tag or not: the next response reads well
        from harness import Reader
        sock = connect(self.s.port)
        try:
            path = self._stream_url(self.s, "<body>", "</body>")[len(self.s.url("")):]
            sock.sendall(b"HEAD " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n" +
                         get("/app.js"))
            rd = Reader(sock)
            self.assertEqual(rd.response(head_request=True).status, 200)
            self.assertEqual(rd.response().body, b"1")
        finally:
            sock.close()

    def test_the_script_and_unknown_names(self):
        status, h, body = curl(self.s.url("/__luahttpd/live.js"))
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/javascript"))
        self.assertIn(b"EventSource('/__luahttpd/events')", body)
        self.assertEqual(curl(self.s.url("/__luahttpd/nothing"))[0], 404)
        self.assertEqual(curl("-X", "POST", self.s.url("/__luahttpd/events"))[0], 405)

    def test_head_of_the_server_paths_has_no_body(self):
        """A HEAD is answered without a body, or the next response on the connection
        would be read from the middle of it."""
        from harness import Reader
        for path in ("/__luahttpd/nothing", "/__luahttpd/events", "/__luahttpd/live.js"):
            sock = connect(self.s.port)
            try:
                sock.sendall(b"HEAD " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n" +
                             get("/app.js"))
                rd = Reader(sock)
                head = rd.response(head_request=True)
                self.assertIn(head.status, (200, 404, 405), path)
                r = rd.response()
                self.assertEqual((r.status, r.body), (200, b"1"), path)
            finally:
                sock.close()

    def test_nothing_of_it_without_dev(self):
        s = self.server(CONFIG, files={"index.html": PAGE})
        status, h, body = curl(s.url("/"))
        self.assertEqual(body, PAGE)
        self.assertNotIn("cache-control", h)
        self.assertNotIn(TAG, curl(s.url("/lua"))[2])
        for parts in (("<html><body>s", "</body></html>"), ("<body>s</bo", "dy>")):
            self.assertEqual(curl(self._stream_url(s, *parts))[2], "".join(parts).encode())
        self.assertEqual(curl(s.url("/__luahttpd/live.js"))[0], 404)
        self.assertEqual(curl(s.url("/__luahttpd/events"))[0], 404)

    # ---- the event stream ----

    def test_stream_head(self):
        e = self.events()
        head = e.head.decode()
        self.assertIn("HTTP/1.1 200 OK", head)
        self.assertIn("Content-Type: text/event-stream", head)
        self.assertIn("Cache-Control: no-cache", head)
        # the master's pid and start: a page that sees another one after reconnecting
        # reloads (the server was restarted)
        e2 = Events(self.s.port)
        self.streams.append(e2)
        name, data = e2.next()
        self.assertEqual(name, "hello")
        self.assertTrue(data.startswith(str(self.s.proc.pid) + "."), data)
        self.assertTrue(e2.buf == b"" or e2.buf.startswith(b":"))
        self.assertIn(b"retry: 500\n", b"\n".join(self._raw_start(self.s.port)))

    def test_saved_page_reloads_within_half_a_second(self):
        e = self.events()
        for name in ("index.html", "sub/deep.html", "app.js"):
            t0 = time.time()
            self.save(name, PAGE + b" ")
            self.assertEqual(e.next(), ("reload", ""), name)
            self.assertLess(time.time() - t0, 0.5 * SLOW, name)
        # an in-place write, as some editors do
        with open(os.path.join(self.s.www, "index.html"), "ab") as f:
            f.write(b"\n")
        self.assertEqual(e.next(), ("reload", ""))
        # the page then has the new bytes at once (no second of small-file cache)
        self.assertTrue(curl(self.s.url("/"))[2].endswith(b"</html> \n"))

    def test_saved_stylesheet_is_swapped(self):
        e = self.events()
        self.save("style.css", "h1{color:blue}")
        self.assertEqual(e.next(), ("css", "/style.css"))
        self.save("sub/more.css", "p{}")
        self.assertEqual(e.next(), ("css", "/sub/more.css"))
        os.unlink(os.path.join(self.s.www, "sub/more.css"))  # gone: the page reloads
        self.assertEqual(e.next(), ("reload", ""))

    def test_new_folder_is_watched(self):
        e = self.events()
        os.makedirs(os.path.join(self.s.www, "new/inner"))
        self.assertEqual(e.next(), ("reload", ""))
        time.sleep(0.2)
        self.save("new/inner/page.html", PAGE)
        self.assertEqual(e.next(), ("reload", ""))

    def test_renamed_folder_is_watched_under_its_new_name(self):
        e = self.events()
        os.makedirs(os.path.join(self.s.www, "a"))
        self.assertEqual(e.next(), ("reload", ""))
        os.rename(os.path.join(self.s.www, "a"), os.path.join(self.s.www, "b"))
        self.assertEqual(e.next(), ("reload", ""))
        time.sleep(0.2)
        self.save("b/style.css", "p{}")
        self.assertEqual(e.next(), ("css", "/b/style.css"))

    def test_folders_removed_again_and_again_leave_nothing_behind(self):
        """A build that deletes and makes its output folder again at every run: the
        watches of the folders that are gone are forgotten, so that a folder made
        after many such runs is still watched."""
        import shutil
        e = self.events()
        out = os.path.join(self.s.dir, "build")
        for _ in range(5):
            for i in range(1000):
                os.makedirs(os.path.join(out, "d%d" % i))
            os.rename(out, os.path.join(self.s.www, "dist"))  # 1001 folders in at once
            self.assertEqual(e.next(timeout=5), ("reload", ""))
            time.sleep(0.2)
            shutil.rmtree(os.path.join(self.s.www, "dist"))
            self.assertEqual(e.next(timeout=5), ("reload", ""))
            while e.next(timeout=0.3):
                pass
        os.makedirs(os.path.join(self.s.www, "fresh"))
        self.assertEqual(e.next(), ("reload", ""))
        time.sleep(0.2)
        self.save("fresh/style.css", "p{}")
        self.assertEqual(e.next(), ("css", "/fresh/style.css"))

    def test_folders_made_while_the_event_queue_overflowed_are_watched(self):
        """The kernel drops a watch's events past fs.inotify.max_queued_events while
        the worker is busy (a build writing many files): the folders made meanwhile
        are watched all the same once the worker looks again."""
        try:
            with open("/proc/sys/fs/inotify/max_queued_events") as f:
                limit = int(f.read())
        except (OSError, ValueError):
            self.skipTest("no fs.inotify.max_queued_events")
        if limit > 100000:
            self.skipTest("fs.inotify.max_queued_events too large for this test")
        # /busy makes the file "busy" beside config.lua (outside the docroot) once in
        # its blocking call
        s = self.server('workers = 1\nunsafe_libs = true\n'
                        'route("GET", "/busy", function() os.execute("touch busy; sleep 2") return "ok" end)\n',
                        files={"index.html": PAGE}, args=("--dev",))
        e = Events(s.port)
        self.streams.append(e)
        self.assertEqual(e.next()[0], "hello")
        bulk = os.path.join(s.www, "bulk")
        os.mkdir(bulk)
        self.assertEqual(e.next(), ("reload", ""))  # watched
        import threading
        busy = threading.Thread(target=curl, args=(s.url("/busy"),))
        busy.start()
        self.wait_for(lambda: os.path.exists(os.path.join(s.dir, "busy")),
                      what="the worker to be in os.execute")
        for i in range(limit // 2 + 100):            # two events a file: past the limit
            with open(os.path.join(bulk, "f%d.txt" % i), "wb"):
                pass
        os.makedirs(os.path.join(s.www, "late/inner"))
        busy.join(30)
        self.assertEqual(e.next(timeout=5), ("reload", ""))
        while e.next(timeout=0.5):
            pass
        with open(os.path.join(s.www, "late/inner/style.css"), "w") as f:
            f.write("p{}")
        self.assertEqual(e.next(), ("css", "/late/inner/style.css"))

    def test_editor_droppings_change_nothing(self):
        e = self.events()
        for name in (".index.html.swp", "4913", "index.html~", "data.db-journal", ".hidden"):
            self.save(name, "x")
        self.assertIsNone(e.next(timeout=0.5))

    def test_lua_reload_and_failed_reload(self):
        e = self.events()
        self.s.rewrite_config(CONFIG + 'route("GET", "/new", function() return "new" end)\n')
        self.assertEqual(e.next(timeout=3), ("reload", ""))
        self.assertEqual(curl(self.s.url("/new"))[2], b"new")
        # a broken save: every open page hears why, and a page opened now too
        self.s.rewrite_config(CONFIG + "route(\n")
        name, data = e.next(timeout=3)
        self.assertEqual(name, "config-error")
        self.assertRegex(data, r"config\.lua:\d+: unexpected symbol near <eof>")
        late = self.events()
        self.assertEqual(late.next()[0], "config-error")
        self.assertEqual(curl(self.s.url("/new"))[2], b"new")  # the old config serves on
        # the fix reloads them all, and a page opened after it hears nothing old
        self.s.rewrite_config(CONFIG)
        self.assertEqual(e.next(timeout=3), ("reload", ""))
        self.assertEqual(late.next(timeout=3), ("reload", ""))
        self.assertIsNone(self.events().next(timeout=0.3))

    def test_reload_error_detail_only_to_this_machine(self):
        """As for a Lua error's page: the detail of a failed reload (file, line, code)
        goes to pages on this machine only; one reached through a tunnel or proxy on
        this machine (Host: its public name) hears that the reload failed, not why."""
        near = self.events()
        far = Events(self.s.port, host="dev.tunnel.example")
        self.streams.append(far)
        self.assertEqual(far.next()[0], "hello")
        self.s.rewrite_config(CONFIG + "route(\n")
        name, data = near.next(timeout=3)
        self.assertEqual(name, "config-error")
        self.assertIn("config.lua", data)
        name, data = far.next(timeout=3)
        self.assertEqual(name, "config-error")
        self.assertNotIn("config.lua", data)
        self.assertNotIn("unexpected symbol", data)
        late = Events(self.s.port, host="dev.tunnel.example")  # a page opened now
        self.streams.append(late)
        self.assertEqual(late.next()[0], "hello")
        name, data = late.next()
        self.assertEqual(name, "config-error")
        self.assertNotIn("config.lua", data)

    def module_reloads(self, name, path):
        """A module config.lua requires, saved: the pages reload, the route changes."""
        s = self.server('route("GET", "/m", require("%s"))\n' % name,
                        dirfiles={path: 'return function() return "1" end\n'},
                        args=("--dev",))
        e = Events(s.port)
        self.streams.append(e)
        self.assertEqual(e.next()[0], "hello")
        with open(os.path.join(s.dir, path), "w") as f:
            f.write('return function() return "22" end\n')
        self.assertEqual(e.next(timeout=3), ("reload", ""))
        self.assertEqual(curl(s.url("/m"))[2], b"22")

    def test_module_in_scripts_reloads(self):
        self.module_reloads("mod", "scripts/mod.lua")

    def test_module_in_a_folder_beside_config_reloads(self):
        # require("lib.util") finds lib/util.lua beside config.lua: it is watched too
        self.module_reloads("lib.util", "lib/util.lua")

    def test_hello_differs_for_a_restarted_server_with_the_same_pid(self):
        """A page reloads when the server it follows was restarted (what changed while
        it was down cannot be told otherwise). In a container the server is often pid
        1 every time: the pid alone cannot tell one run from the next."""
        import re
        import shutil
        import subprocess
        import tempfile
        from harness import BINARY, SANITIZED, VALGRIND, child_pids
        if VALGRIND or SANITIZED or shutil.which("unshare") is None:
            self.skipTest("needs unshare(1), without valgrind or sanitizers")
        probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("no PID namespace here: " + probe.stderr.decode().strip())
        hellos = []
        for _ in range(2):
            d = tempfile.mkdtemp(prefix="lh-e2e-")
            os.mkdir(os.path.join(d, "www"))
            out = open(os.path.join(d, "stdout"), "wb")
            p = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child=SIGTERM",
                                  BINARY, "-r", os.path.join(d, "www"), "-p", "0", "--dev"],
                                 stdout=out, stderr=subprocess.DEVNULL)
            try:
                port = None
                deadline = time.time() + 5 * SLOW
                while port is None and time.time() < deadline:
                    with open(os.path.join(d, "stdout"), "rb") as f:
                        m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)/", f.read())
                    port = m and int(m.group(1))
                    time.sleep(0.02)
                self.assertIsNotNone(port, "the server did not start")
                e = Events(port)
                hellos.append(e.next())
                e.close()
            finally:
                for pid in child_pids(p.pid):  # unshare itself ignores SIGTERM
                    os.kill(pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10 * SLOW)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                out.close()
                shutil.rmtree(d, ignore_errors=True)
        self.assertEqual([h[0] for h in hellos], ["hello", "hello"])
        self.assertNotEqual(hellos[0][1], hellos[1][1])

    def test_stream_does_not_hold_shutdown(self):
        self.events()
        t0 = time.time()
        self.s.signal(signal.SIGTERM)
        self.assertEqual(self.s.wait(timeout=10 * SLOW), 0)
        self.assertLess(time.time() - t0, 2.0 * SLOW)

    def test_stream_asked_while_stopping_does_not_hold_shutdown(self):
        """A request for the stream that was on its way when SIGTERM came is refused,
        not held open until shutdown_timeout ends it (and the exit status says
        requests were abandoned)."""
        page = self.events()  # on the one worker, which closes it as it begins to stop
        sock = connect(self.s.port)
        try:
            sock.sendall(b"GET /__luahttpd/events HTTP/1.1\r\nHost: x\r\n")
            # the worker takes one connection a turn: once a request on a later one is
            # answered, it has read this head's start (one with nothing read yet would
            # be closed as idle at the stop)
            self.assertEqual(curl(self.s.url("/app.js"))[0], 200)
            t0 = time.time()
            self.s.signal(signal.SIGTERM)
            self.wait_for(page.closed, what="the worker to stop")
            sock.sendall(b"\r\n")
            self.assertTrue(sock.recv(100).startswith(b"HTTP/1.1 503 "))
            self.assertEqual(self.s.wait(timeout=10 * SLOW), 0)
            self.assertLess(time.time() - t0, 2.0 * SLOW)
        finally:
            sock.close()

    def test_page_that_leaves_is_forgotten(self):
        for _ in range(3):
            self.events().close()
        self.streams.clear()
        e = self.events()
        self.save("index.html", PAGE)
        self.assertEqual(e.next(), ("reload", ""))
        # the server serves on, and the access log has the streams
        self.assertEqual(curl(self.s.url("/app.js"))[0], 200)
