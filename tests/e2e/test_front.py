"""CONTRACT section 8 (serving front ends) and issue 14 item 5, through the real binary:
cors (preflights before the before hooks, Access-Control-* on every response),
fallback (the single-page-app file for a page nothing else answers), error_pages, and
JSON error bodies for JSON clients (with the Lua error in --dev, on this machine)."""

import json
import os
import shutil
import signal
import tempfile

from harness import ServerTest, curl, get, raw, request, run

ORIGIN = "https://app.example"
HTML = "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JSON = "Accept: application/json"

# a before hook that refuses the API without a token: a preflight must get past it
ROUTES = r'''
before(function(req)
  if req.path:sub(1, 5) == "/api/" and req.headers["x-token"] ~= "t" then
    return 401, { error = "token" }
  end
end)
route("GET", "/api/items", function(req) return { 1, 2 } end)
route("POST", "/api/items", function(req) return 201, { made = req:json().name } end)
route("GET", "/text", function(req) return "plain" end)
route("GET", "/own", function(req)
  return "own", { ["Access-Control-Allow-Origin"] = "https://mine.example" }
end)
route("GET", "/stream", function(req)
  local i = 0
  return function() i = i + 1; return i <= 2 and ("p" .. i) or nil end
end)
route("GET", "/boom", function(req) error("kaboom") end)
after(function(req, res)
  res.headers["X-Seen-ACAO"] = res.headers["Access-Control-Allow-Origin"] or "none"
  if req.path == "/changed" then res.headers["Access-Control-Allow-Origin"] = "https://hook.example" end
end)
'''
FILES = {"a.txt": "hello\n", "index.html": "<h1>app</h1>\n", "dir/x.txt": "x"}


def preflight(url, origin=ORIGIN, method="POST", headers=None):
    args = ["-X", "OPTIONS", "-H", "Origin: " + origin,
            "-H", "Access-Control-Request-Method: " + method]
    if headers:
        args += ["-H", "Access-Control-Request-Headers: " + headers]
    return curl(*args, url)


def header_lines(port, path, extra=b""):
    """One GET over a raw socket: (status, every header line as (name, value))."""
    r, rd = request(port, get(path, extra=extra))
    rd.sock.close()
    return r.status, r.headers


def head(port, path, *headers):
    """HEAD over a raw socket, read until the close: (status, headers dict, the bytes
    after the head, which must be none)."""
    extra = "".join(h + "\r\n" for h in headers)
    data = raw(port, ("HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n"
                      % (path, extra)).encode())
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    h = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split()[1]), h, rest


def acao_lines(headers):
    return [v for k, v in headers if k.lower() == "access-control-allow-origin"]


class Cors(ServerTest):
    def listed(self):
        return self.server('cors = { origins = { "%s" }, credentials = true,\n'
                           '  headers = { "Content-Type", "X-Token" }, max_age = 120 }\n'
                           % ORIGIN + ROUTES, files=FILES)

    def test_preflight_allowed_before_the_hooks(self):
        s = self.listed()
        st, h, body = preflight(s.url("/api/items"), headers="content-type, x-token")
        self.assertEqual((st, body), (204, b""))     # the token hook did not run
        self.assertEqual(h["access-control-allow-origin"], ORIGIN)
        self.assertEqual(h["access-control-allow-credentials"], "true")
        self.assertEqual(h["access-control-allow-methods"],
                         "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
        self.assertEqual(h["access-control-allow-headers"], "Content-Type, X-Token")
        self.assertEqual(h["access-control-max-age"], "120")
        self.assertEqual(h["vary"], "Origin")
        self.assertEqual(h["x-seen-acao"], ORIGIN)   # the after hooks see the preflight
        # a path without any route, and no OPTIONS route anywhere: the same
        self.assertEqual(preflight(s.url("/nowhere"))[0], 204)
        # then the call itself: the origin echoed, credentials allowed
        st, h, body = curl("-X", "POST", "-H", "Origin: " + ORIGIN, "-H", "X-Token: t",
                           "-H", "Content-Type: application/json", "-d", '{"name":"n"}',
                           s.url("/api/items"))
        self.assertEqual((st, json.loads(body)), (201, {"made": "n"}))
        self.assertEqual(h["access-control-allow-origin"], ORIGIN)
        self.assertEqual(h["access-control-allow-credentials"], "true")
        self.assertEqual(h["vary"], "Origin")

    def test_preflight_asking_no_headers_with_credentials(self):
        # "*" is no wildcard for a credentialed call: a name the browser understands
        s = self.server('cors = { origins = { "%s" }, credentials = true }\n' % ORIGIN + ROUTES,
                        files=FILES)
        st, h, _ = preflight(s.url("/api/items"))
        self.assertEqual((st, h["access-control-allow-headers"]), (204, "Content-Type"))
        st, h, _ = preflight(s.url("/api/items"), headers="x-token")
        self.assertEqual((st, h["access-control-allow-headers"]), (204, "x-token"))

    def test_preflight_refused_origin(self):
        s = self.listed()
        for origin in ("https://evil.example", ORIGIN + ".evil.example", ORIGIN + ":8443"):
            st, h, _ = preflight(s.url("/api/items"), origin=origin)
            self.assertEqual(st, 403, origin)
            self.assertEqual([k for k in h if k.startswith("access-control")], [], origin)
            self.assertEqual(h["vary"], "Origin")
        # other requests from it are answered, without Access-Control-* headers
        st, h, body = curl("-H", "Origin: https://evil.example", s.url("/a.txt"))
        self.assertEqual((st, body), (200, b"hello\n"))
        self.assertNotIn("access-control-allow-origin", h)
        self.assertEqual(h["vary"], "Origin")
        # and a request without Origin has none either
        self.assertNotIn("access-control-allow-origin", curl(s.url("/a.txt"))[1])

    def test_cors_true_on_every_response(self):
        s = self.server("cors = true\n" + ROUTES, files=FILES)
        st, h, _ = preflight(s.url("/api/items"), origin="https://any.example",
                             headers="content-type, x-custom")
        self.assertEqual(st, 204)
        self.assertEqual(h["access-control-allow-origin"], "*")
        self.assertNotIn("access-control-allow-credentials", h)
        self.assertEqual(h["access-control-allow-headers"], "content-type, x-custom")  # echoed
        self.assertEqual(h["access-control-max-age"], "600")
        # CONTRACT 8: a preflight that asks for no headers still gets all four fields
        st, h, _ = preflight(s.url("/api/items"), origin="https://any.example")
        self.assertEqual(st, 204)
        self.assertEqual({k: h.get("access-control-allow-" + k) for k in ("origin", "headers")},
                         {"origin": "*", "headers": "*"})
        self.assertIn("access-control-allow-methods", h)
        self.assertEqual(h["access-control-max-age"], "600")
        self.assertNotIn("vary", h)
        o = ("-H", "Origin: https://any.example")
        st, h, _ = curl(*o, s.url("/a.txt"))                       # a static file
        self.assertEqual((st, h["access-control-allow-origin"]), (200, "*"))
        st, h, _ = curl(*o, "-H", "If-None-Match: " + h["etag"], s.url("/a.txt"))
        self.assertEqual((st, h["access-control-allow-origin"]), (304, "*"))
        for path, status in (("/missing", 404), ("/text", 200), ("/api/items", 401),
                             ("/boom", 500), ("/stream", 200), ("/dir/", 403)):
            st, h, body = curl(*o, s.url(path))
            self.assertEqual((st, h.get("access-control-allow-origin")), (status, "*"), path)
        self.assertEqual(curl(*o, s.url("/stream"))[2], b"p1p2")
        self.assertEqual(head(s.port, "/a.txt")[1]["access-control-allow-origin"], "*")
        # the after hooks see the header, and may change it
        self.assertEqual(curl(s.url("/text"))[1]["x-seen-acao"], "*")
        self.assertEqual(curl(s.url("/changed"))[1]["access-control-allow-origin"],
                         "https://hook.example")

    def test_handler_header_wins_once(self):
        s = self.server("cors = true\n" + ROUTES, files=FILES)
        st, headers = header_lines(s.port, "/own", b"Origin: " + ORIGIN.encode() + b"\r\n")
        self.assertEqual(st, 200)
        self.assertEqual(acao_lines(headers), ["https://mine.example"])
        st, headers = header_lines(s.port, "/a.txt")
        self.assertEqual(acao_lines(headers), ["*"])

    def test_off_by_default(self):
        s = self.server(ROUTES, files=FILES)
        st, h, _ = preflight(s.url("/api/items"))
        self.assertEqual(st, 401)  # no preflight handling: the before hook answers
        self.assertNotIn("access-control-allow-origin", h)
        self.assertEqual(preflight(s.url("/a.txt"))[0], 405)
        self.assertNotIn("access-control-allow-origin", curl("-H", "Origin: " + ORIGIN,
                                                             s.url("/a.txt"))[1])

    def test_reload_picks_up_cors(self):
        s = self.server('cors = { origins = { "https://a.example" } }\n', files=FILES)
        self.assertNotIn("access-control-allow-origin",
                         curl("-H", "Origin: https://b.example", s.url("/a.txt"))[1])
        s.rewrite_config('cors = { origins = { "https://b.example" } }\n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: curl("-H", "Origin: https://b.example", s.url("/a.txt"))[1]
                      .get("access-control-allow-origin") == "https://b.example",
                      what="reload")
        s.rewrite_config('cors = false\n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: "vary" not in curl("-H", "Origin: https://b.example",
                                                 s.url("/a.txt"))[1], what="reload")
        self.assertNotIn("access-control-allow-origin",
                         curl("-H", "Origin: https://b.example", s.url("/a.txt"))[1])


FALLBACK = r'''
fallback = "index.html"
route("GET", "/api/things/:id", function(req)
  if req.params.id == "missing" then return 404, "no such thing" end
  if req.params.id == "pass" then return end
  return "thing " .. req.params.id
end)
'''


class Fallback(ServerTest):
    def test_pages_get_the_fallback(self):
        s = self.server(FALLBACK, files=FILES)
        for path in ("/users/42", "/", "/deep/link/", "/v1.2/"):
            st, h, body = curl("-H", HTML, s.url(path))
            self.assertEqual((st, body), (200, b"<h1>app</h1>\n"), path)
        st, h, body = curl("-H", HTML, s.url("/users/42"))
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertIn("etag", h)
        self.assertIn("last-modified", h)
        self.assertIn("Accept", h["vary"])
        st, h2, body = curl("-H", HTML, "-H", "If-None-Match: " + h["etag"], s.url("/users/7"))
        self.assertEqual((st, body), (304, b""))
        st, h2, rest = head(s.port, "/users/42", HTML)
        self.assertEqual((st, rest, h2["content-length"]), (200, b"", "13"))
        # a route that passes the request on: nothing answered it, so the fallback
        self.assertEqual(curl("-H", HTML, s.url("/api/things/pass"))[2], b"<h1>app</h1>\n")
        # files and routes are served as ever
        self.assertEqual(curl("-H", HTML, s.url("/a.txt"))[2], b"hello\n")
        self.assertEqual(curl("-H", HTML, s.url("/api/things/1"))[2], b"thing 1")

    def test_not_for_other_requests(self):
        s = self.server(FALLBACK, files=FILES)
        # a file's name (an extension), a JSON client, curl's */*, a POST
        self.assertEqual(curl("-H", HTML, s.url("/app.js"))[0], 404)
        self.assertEqual(curl("-H", HTML, s.url("/assets/logo.png"))[0], 404)
        st, h, body = curl("-H", JSON, s.url("/users/42"))
        self.assertEqual((st, json.loads(body)), (404, {"error": "Not Found", "status": 404}))
        self.assertEqual(curl(s.url("/users/42"))[0], 404)
        self.assertEqual(curl("-H", "Accept: text/html;q=0", s.url("/users/42"))[0], 404)
        self.assertEqual(curl("-X", "POST", "-H", HTML, s.url("/users/42"))[0], 404)
        # a route's own 404 is kept
        st, h, body = curl("-H", HTML, s.url("/api/things/missing"))
        self.assertEqual((st, body), (404, b"no such thing"))
        # a GET route that passes the request on, nothing else answering: 404, not 405
        self.assertEqual(curl(s.url("/api/things/pass"))[0], 404)
        self.assertEqual(curl("-X", "DELETE", s.url("/api/things/pass"))[0], 405)

    def test_missing_fallback_file(self):
        s = self.server('fallback = "app/shell.html"\n', files={"a.txt": "A"})
        st, h, body = curl("-H", HTML, s.url("/users/42"))
        self.assertEqual(st, 404)
        self.assertIn(b"404 Not Found", body)
        self.wait_for(lambda: "fallback" in s.stderr(), what="a warning")
        self.assertIn("app/shell.html", s.stderr())
        s.write("app/shell.html", "shell")
        self.assertEqual(curl("-H", HTML, s.url("/users/42"))[:3:2], (200, b"shell"))


PAGES = r'''
error_pages = { [404] = "errors/404.html", [403] = "errors/403.html",
                [405] = "errors/405.html", [500] = "errors/500.html", [413] = "errors/413.html" }
limits = { body_bytes = 100 }
route("GET", "/boom", function(req) error("kaboom") end)
route("POST", "/only-post", function(req) return "posted" end)
route("GET", "/own", function(req) return 404, "my own 404" end)
'''
PAGE_FILES = {"a.txt": "A", "dir/x.txt": "x", "errors/404.html": "<p>custom 404</p>\n",
              "errors/403.html": "<p>custom 403</p>\n", "errors/405.html": "<p>custom 405</p>\n",
              "errors/500.html": "<p>custom 500</p>\n", "errors/413.html": "too big\n",
              "404.html": "<p>the docroot 404</p>\n"}


class ErrorPages(ServerTest):
    def test_pages_keep_the_status(self):
        s = self.server(PAGES, files=PAGE_FILES)
        for args, status, body in (((s.url("/missing"),), 404, b"<p>custom 404</p>\n"),
                                   ((s.url("/dir/"),), 403, b"<p>custom 403</p>\n"),
                                   (("-X", "DELETE", s.url("/a.txt")), 405, b"<p>custom 405</p>\n"),
                                   ((s.url("/only-post"),), 405, b"<p>custom 405</p>\n"),
                                   ((s.url("/boom"),), 500, b"<p>custom 500</p>\n")):
            st, h, got = curl(*args)
            self.assertEqual((st, got), (status, body), args)
            self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertEqual(curl("-X", "DELETE", s.url("/a.txt"))[1]["allow"], "GET, HEAD")
        self.assertEqual(curl(s.url("/only-post"))[1]["allow"], "POST")
        # HEAD: the page's length, no body
        st, h, rest = head(s.port, "/missing")
        self.assertEqual((st, rest, h["content-length"]), (404, b"", "18"))
        # a handler's own error body stays its own
        self.assertEqual(curl(s.url("/own"))[:3:2], (404, b"my own 404"))
        # the connection layer's refusal of a request it has read
        st, h, body = curl("-d", "x" * 200, s.url("/only-post"))
        self.assertEqual((st, body), (413, b"too big\n"))

    def test_default_404_page_and_missing_pages(self):
        s = self.server('error_pages = { [500] = "gone.html" }\n'
                        'route("GET", "/boom", function(req) error("kaboom") end)\n',
                        files={"404.html": "<p>the docroot 404</p>\n"})
        self.assertEqual(curl(s.url("/missing"))[:3:2], (404, b"<p>the docroot 404</p>\n"))
        for _ in range(3):
            st, h, body = curl(s.url("/boom"))
            self.assertEqual(st, 500)
            self.assertIn(b"500 Internal Server Error", body)
        self.wait_for(lambda: "gone.html" in s.stderr(), what="a warning")
        self.assertEqual(s.stderr().count("error_pages[500]"), 1)  # once, not per request

    def test_pages_for_refusals_before_a_request(self):
        """The parser's refusals and 408 come before any request struct: the page all
        the same, with Connection: close and the connection closed."""
        statuses = (400, 408, 414, 417, 431, 505)
        s = self.server("error_pages = { %s }\n"
                        "limits = { header_bytes = 1024, request_timeout = 1 }\n"
                        % ", ".join('[%d] = "e%d.html"' % (n, n) for n in statuses),
                        files=dict({"a.txt": "A"},
                                   **{"e%d.html" % n: "<p>page %d</p>" % n for n in statuses}))
        for data, status in (
                (b"GET /a.txt HTTP/1.1\r\n\r\n", 400),                    # no Host
                (b"GET /a.txt HTTP/1.1\r\n" + JSON.encode() + b"\r\n\r\n", 400),
                (get("/a.txt", extra=b"Content-Length: 1\r\n"
                     b"Transfer-Encoding: chunked\r\n"), 400),
                (get("/" + "a" * 2000), 414),
                (get("/a.txt", extra=b"X-Big: " + b"b" * 2000 + b"\r\n"), 431),
                (get("/a.txt", extra=b"Expect: foo\r\n"), 417),
                (get("/a.txt", version=b"HTTP/2.0"), 505),
                (b"GET /a.txt HTTP/1.1\r\nHost: x\r\n", 408)):         # never ends
            r, rd = request(s.port, data, timeout=5)
            try:
                self.assertEqual((r.status, r.body), (status, b"<p>page %d</p>" % status),
                                 data[:60])
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
                self.assertEqual(r.header("Connection"), "close")
                self.assertTrue(rd.closed(), data[:60])
            finally:
                rd.sock.close()
        self.assertEqual(curl(s.url("/a.txt"))[2], b"A")

    def test_bad_percent_escape_gets_the_page_and_closes(self):
        s = self.server('error_pages = { [400] = "e.html" }\n',
                        files={"a.txt": "A", "e.html": "<p>bad</p>"})
        for path in ("/f%zz", "/f%2"):
            # a second request behind it on the same connection is not answered
            r, rd = request(s.port, get(path) + get("/a.txt"))
            try:
                self.assertEqual((r.status, r.body), (400, b"<p>bad</p>"), path)
                self.assertEqual(r.header("Connection"), "close")
                self.assertTrue(rd.closed(), path)
            finally:
                rd.sock.close()
        # a 404 from the same decoding is an ordinary answer: the connection stays
        r, rd = request(s.port, get("/a%2fb") + get("/a.txt"))
        try:
            self.assertEqual(r.status, 404)
            self.assertEqual(rd.response().body, b"A")
        finally:
            rd.sock.close()

    def test_cors_on_refusals_before_a_request(self):
        s = self.server("cors = true\nlimits = { header_bytes = 1024 }\n",
                        files={"a.txt": "A"})
        r, rd = request(s.port, get("/a.txt", extra=b"X-Big: " + b"b" * 2000 + b"\r\n"))
        rd.sock.close()
        self.assertEqual(r.status, 431)
        self.assertEqual(acao_lines(r.headers), ["*"])


JSON_ROUTES = r'''
route("GET", "/boom", function(req) error("kaboom") end)
route("POST", "/parse", function(req) local t = req:json() return { got = t } end)
route("GET", "/api/maybe", function(req)
  if req.query.fail then error("it failed") end
  return { ok = true }
end)
route("GET", "/api/text", function(req)
  if req.query.fail then error("it failed") end
  return '{"ok":true}', { ["Content-Type"] = "application/json; charset=utf-8" }
end)
route("GET", "/page", function(req)
  if req.query.fail then error("it failed") end
  return "<p>page</p>"
end)
'''


class JsonErrors(ServerTest):
    REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
               500: "Internal Server Error"}

    def assertJson(self, result, status, detail=None):
        """result (from curl) is the JSON error for status, with that detail if any."""
        st, h, body = result
        self.assertEqual(st, status)
        self.assertEqual(h["content-type"], "application/json")
        want = {"error": self.REASONS[status], "status": status}
        if detail is not None:
            want["detail"] = detail
        got = json.loads(body)
        self.assertEqual(got, want)
        return got

    def test_accept_json(self):
        s = self.server(JSON_ROUTES, files={"a.txt": "A"})
        self.assertJson(curl("-H", JSON, s.url("/missing")), 404)
        got = curl("-H", JSON, "-X", "DELETE", s.url("/a.txt"))
        self.assertJson(got, 405)
        self.assertEqual(got[1]["allow"], "GET, HEAD")
        self.assertJson(curl("-H", JSON, s.url("/boom")), 500)   # no detail outside --dev
        self.assertNotIn(b"kaboom", curl("-H", JSON, s.url("/boom"))[2])
        # a client that prefers HTML gets the page
        st, h, body = curl("-H", "Accept: text/html, application/json;q=0.9", s.url("/missing"))
        self.assertIn("text/html", h["content-type"])
        # HEAD: no body
        st, h, rest = head(s.port, "/missing", JSON)
        self.assertEqual((st, rest, h["content-type"]), (404, b"", "application/json"))
        self.assertEqual(h["content-length"], "34")

    def test_bad_json_body(self):
        s = self.server(JSON_ROUTES)
        st, h, body = curl("-H", JSON, "-d", "{bad", s.url("/parse"))
        detail = json.loads(body).get("detail", "")
        self.assertIn("character 2", detail)          # the decoder's message
        self.assertJson((st, h, body), 400, detail=detail)
        # a client that sends JSON (fetch() accepts anything by default) gets JSON too
        st, h, body = curl("-H", "Content-Type: application/json", "-d", "{bad", s.url("/parse"))
        self.assertEqual((st, h["content-type"]), (400, "application/json"))
        # a good body works
        self.assertEqual(json.loads(curl("-H", JSON, "-d", '{"a":1}', s.url("/parse"))[2]),
                         {"got": {"a": 1}})

    def test_route_that_answered_json(self):
        s = self.server(JSON_ROUTES)
        # before it has answered JSON: the HTML page
        self.assertIn("text/html", curl(s.url("/api/maybe?fail=1"))[1]["content-type"])
        self.assertEqual(curl(s.url("/api/maybe"))[2], b'{"ok":true}')
        # from then on its errors are JSON, without Accept
        self.assertJson(curl(s.url("/api/maybe?fail=1")), 500)
        self.assertJson(curl("-X", "DELETE", s.url("/api/maybe")), 405)
        # a JSON Content-Type of the handler's own counts too
        self.assertEqual(curl(s.url("/api/text"))[0], 200)
        self.assertJson(curl(s.url("/api/text?fail=1")), 500)
        # an HTML route stays HTML
        self.assertEqual(curl(s.url("/page"))[0], 200)
        self.assertIn("text/html", curl(s.url("/page?fail=1"))[1]["content-type"])

    def test_dev_detail_on_this_machine_only(self):
        s = self.server(JSON_ROUTES, args=["--dev"])
        got = curl("-H", JSON, s.url("/boom"))
        body = json.loads(got[2])
        self.assertEqual((got[0], body["error"], body["status"]), (500, "Internal Server Error", 500))
        self.assertRegex(body["detail"], r"config\.lua:\d+: kaboom")
        self.assertIn("stack traceback", body["traceback"])
        self.assertRegex(body["traceback"], r"config\.lua:\d+")
        # a browser still gets the --dev page
        st, h, page = curl("-H", HTML, s.url("/boom"))
        self.assertIn("text/html", h["content-type"])
        self.assertIn(b"stack traceback", page)
        # asked for another host (a tunnel to this machine): no detail
        body = json.loads(curl("-H", JSON, "-H", "Host: example.com", s.url("/boom"))[2])
        self.assertEqual(body, {"error": "Internal Server Error", "status": 500})
        # and without --dev, none
        plain = self.server(JSON_ROUTES)
        self.assertEqual(json.loads(curl("-H", JSON, plain.url("/boom"))[2]),
                         {"error": "Internal Server Error", "status": 500})


class FrontConfig(ServerTest):
    def check(self, text):
        d = tempfile.mkdtemp(prefix="lh-front-")
        path = os.path.join(d, "config.lua")
        os.mkdir(os.path.join(d, "html"))
        with open(path, "w") as f:
            f.write(text)
        try:
            code, out, err = run(["--check", "-c", path])
        finally:
            shutil.rmtree(d, ignore_errors=True)
        return code, (out + err).replace(path, "config.lua")

    def test_check_reports_file_and_line(self):
        cases = [
            ('port = 1\ncors = "yes"\n', 'config.lua:2: cors must be true, false or a table'),
            ('cors = { origins = { "https://a.example/" } }\n',
             'config.lua:1: cors.origins[1] must be an origin'),
            ('cors = { metods = {} }\n',
             "config.lua:1: unknown setting 'cors.metods' (did you mean 'cors.methods'?)"),
            ('cors = { credentials = true }\n', 'config.lua:1: cors.credentials = true needs '
             'cors.origins'),
            ('\n\nfallback = "/srv/index.html"\n', 'config.lua:3: fallback must be a file in '
             'docroot'),
            ('error_pages = { [200] = "ok.html" }\n', 'config.lua:1: error_pages keys must be '
             'error statuses'),
            ('error_pages = { [404] = "../404.html" }\n', 'config.lua:1: error_pages[404] must '
             'be a file in docroot'),
            ('compress = 1\n', 'config.lua:1: compress must be true or false, got 1'),
        ]
        for text, want in cases:
            code, out = self.check(text)
            self.assertEqual(code, 1, text)
            self.assertIn(want, out, text)
        code, out = self.check('cors = { origins = { "https://a.example" }, methods = { "GET" },\n'
                               '  headers = {}, credentials = true, max_age = 60 }\n'
                               'fallback = "index.html"\ncompress = false\n'
                               'error_pages = { [404] = "404.html", [500] = "50x.html" }\n')
        self.assertEqual((code, out.strip()), (0, "config OK"))
