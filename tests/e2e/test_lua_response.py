"""CONTRACT section 3, "What a handler returns": the helpers that build a return
value, redirect(url [, status]) and file(path [, headers]), through the real binary."""

import subprocess

from harness import ServerTest, curl


def curl_out(*args):
    """What curl -s writes to stdout."""
    return subprocess.run(["curl", "-sS", "--max-time", "30", *args], capture_output=True,
                          timeout=40).stdout

ROUTES = r'''
route("GET", "/f/*", function(req) return file(req.params["*"], { ["X-From"] = "lua" }) end)
route("POST", "/thanks", function(req) return file("/sub/page.html") end)
route("GET", "/up", function(req) return file("../config.lua") end)
route("GET", "/r", function(req) return redirect("/a.txt") end)
route("POST", "/login", function(req)
  return redirect("/", 303, { ["Set-Cookie"] = { "sid=1; HttpOnly", "theme=dark" } })
end)
route("GET", "/bad", function(req) return redirect("/a.txt", 200) end)
'''

FILES = {"a.txt": "hello file\n", "sub/page.html": "<h1>thanks</h1>\n", ".env": "secret\n",
         "dir/index.html": "index of dir\n", "a b.txt": "spaced\n", "a%20b.txt": "percent\n"}


class Helpers(ServerTest):
    def test_file_serves_as_a_static_get_would(self):
        s = self.server(ROUTES, files=FILES)
        st, h, body = curl(s.url("/f/a.txt"))
        plain = curl(s.url("/a.txt"))
        self.assertEqual((st, body), (200, b"hello file\n"))
        self.assertEqual(h["x-from"], "lua")
        for name in ("etag", "last-modified", "content-type", "accept-ranges"):
            self.assertEqual(h[name], plain[1][name], name)
        # conditional and range requests, as for the file itself
        self.assertEqual(curl("-H", "If-None-Match: " + h["etag"], s.url("/f/a.txt"))[0], 304)
        st, h, body = curl("-H", "Range: bytes=0-4", s.url("/f/a.txt"))
        self.assertEqual((st, body, h["content-range"]), (206, b"hello", "bytes 0-4/11"))
        head = curl_out("-I", s.url("/f/a.txt")).decode()
        self.assertTrue(head.startswith("HTTP/1.1 200 OK\r\n"), head)
        self.assertIn("Content-Length: 11\r\n", head)
        self.assertTrue(head.endswith("\r\n\r\n"), head)  # and no body
        # a folder gives its index; the name is taken as it is, never percent-decoded
        self.assertEqual(curl(s.url("/f/dir/"))[2], b"index of dir\n")
        self.assertEqual(curl(s.url("/f/a%2520b.txt"))[2], b"percent\n")

    def test_file_keeps_the_static_rules(self):
        s = self.server(ROUTES, files=FILES)
        self.assertEqual(curl(s.url("/f/missing.txt"))[0], 404)
        self.assertEqual(curl(s.url("/f/.env"))[0], 404)   # dotfiles = false
        self.assertEqual(curl(s.url("/up"))[0], 403)       # never above the docroot
        # a POST handler answers with the page (static files alone answer GET and HEAD)
        st, h, body = curl("-X", "POST", s.url("/thanks"))
        self.assertEqual((st, body), (200, b"<h1>thanks</h1>\n"))
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")

    def test_redirect(self):
        s = self.server(ROUTES, files=FILES)
        st, h, body = curl(s.url("/r"))
        self.assertEqual((st, h["location"], h["content-length"], body), (302, "/a.txt", "0", b""))
        # curl follows it: the file arrives
        self.assertEqual(curl_out("-L", s.url("/r")), b"hello file\n")
        # a status and headers of one's own: the cookie set on the way
        out = curl("-X", "POST", s.url("/login"))
        self.assertEqual((out[0], out[1]["location"]), (303, "/"))
        raw = curl_out("-i", "-X", "POST", s.url("/login")).decode()
        self.assertIn("Set-Cookie: sid=1; HttpOnly\r\n", raw)
        self.assertIn("Set-Cookie: theme=dark\r\n", raw)
        # a status that is not a redirect is the handler's error
        self.assertEqual(curl(s.url("/bad"))[0], 500)
        self.assertIn("a redirect's status is 3xx", s.stderr())


PAUSED_FILE = r'''
workers = 1
limits = { handler_timeout_ms = 30000 }
route("GET", "/slow", function(req)
  coroutine.yield()              -- paused: the rest runs from the run queue
  return file("a.css")
end)
after(function(req, res)
  if req.path == "/slow" then
    shared.incr("in-after")  -- the test changes the file once both are here
    while not shared.get("go") do coroutine.yield() end
  end
end)
route("GET", "/go", function() shared.set("go", true) return "ok" end)
route("GET", "/in-after", function() return tostring(shared.get("in-after")) end)
'''


class PausedFile(ServerTest):
    def test_file_kept_while_an_after_hook_pauses(self):
        """file() answered in a slice after a pause and an after hook pauses again:
        the body must not point into the small-file cache (or its gzip-coded copy),
        which a request for the changed file refills meanwhile."""
        import threading
        import time
        from harness import SLOW, get, request
        old = b"body { color: red }\n" * 100          # 2000 bytes: cached, and coded
        new = b"p { margin: 0 }\n" * 125
        s = self.server(PAUSED_FILE, files={"a.css": old})
        got = {}

        def slow(name, extra):
            got[name] = request(s.port, get("/slow", extra=extra), timeout=30)[0]
        threads = [threading.Thread(target=slow, args=("plain", b"")),
                   threading.Thread(target=slow, args=("gzip", b"Accept-Encoding: gzip\r\n"))]
        for t in threads:
            t.start()
        # both wait in the after hook, their bodies made from the old file
        self.wait_for(lambda: curl(s.url("/in-after"))[2] == b"2",
                      what="both requests in the after hook")
        s.write("a.css", new)
        time.sleep(1.1)                 # the cache's second over: the next ones refill it
        for extra in (b"", b"Accept-Encoding: gzip\r\n"):
            r = request(s.port, get("/a.css", extra=extra))[0]
            self.assertEqual(r.status, 200)
        self.assertEqual(request(s.port, get("/go"))[0].status, 200)
        for t in threads:
            t.join(30 * SLOW)
        import gzip
        self.assertEqual(got["plain"].body, old)
        self.assertEqual(gzip.decompress(got["gzip"].body), old)
