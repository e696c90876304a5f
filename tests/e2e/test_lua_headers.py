"""CONTRACT section 3, "What a handler returns" (headers) and "Hooks" (after): response
headers set from Lua. The server owns framing (Content-Length, Transfer-Encoding,
Connection, Keep-Alive and the other hop-by-hop names), Date/Server/Content-Type from
Lua replace the server's own, names must be tokens and values free of control bytes,
a header may repeat (an array value), and nothing is dropped silently."""

import json
import os
import shutil
import socket
import subprocess
import unittest

from harness import SLOW, Reader, ServerTest, connect, curl, get, raw, request

CONFIG = r'''
error_log = "error.log"
route("GET", "/cl", function(req) return 200, "hello", { ["Content-Length"] = "2" } end)
route("GET", "/framing", function(req)
  return "hello", { ["transfer-encoding"] = "chunked", ["KEEP-ALIVE"] = "timeout=5",
                    Upgrade = "h2c", TE = "trailers", Trailer = "X-T",
                    ["Proxy-Connection"] = "keep-alive", ["X-Kept"] = "yes" }
end)
route("GET", "/own", function(req)
  return "o", { date = "Mon, 01 Jan 2001 00:00:00 GMT", SERVER = "mine/1",
                ["content-type"] = "text/plain" }
end)
route("GET", "/no-type", function(req) return "raw", { ["Content-Type"] = false } end)
route("GET", "/false-server", function(req) return "s", { Server = false } end)
route("GET", "/cookies", function(req)
  return "c", { ["Set-Cookie"] = { "a=1", "b=2" }, ["X-One"] = { "only" } }
end)
route("GET", "/close", function(req) return "abc", { Connection = "close" } end)
route("GET", "/close-list", function(req) return "abc", { connection = "foo, Close" } end)
route("GET", "/keep", function(req) return "abc", { Connection = "keep-alive" } end)
route("GET", "/bad/:what", function(req)
  local bad = {
    colon = { ["X: y"] = "1" }, space = { ["a b"] = "1" }, empty = { [""] = "1" },
    crlf = { ["X-Bad"] = "a\r\nInjected: 1" }, nul = { ["X-Bad"] = "a\0b" },
    ctl = { ["X-Bad"] = "a\1b" }, del = { ["X-Bad"] = "a\127b" },
    nlname = { ["X\nInjected"] = "1" }, nulname = { ["X\0Hidden"] = "1" },
    bool = { ["X-Bad"] = true },
    hash = { ["X-Bad"] = { a = "1" } }, twoct = { ["Content-Type"] = { "a/b", "c/d" } },
  }
  return "never", bad[req.params.what]
end)
route("GET", "/good-value", function(req)
  return "g", { ["X-Tab"] = "a\tb", ["X-High"] = "caf\195\169", ["X-Empty"] = "",
                ["X-Num"] = 42, ["!#$%&'*+-.^_`|~09azAZ"] = "token" }
end)
route("GET", "/many", function(req)
  local h = {} for i = 1, 100 do h["X-H" .. i] = string.rep("v", 200) end
  return "x", h
end)
route("GET", "/big", function(req) return 200, "x", { ["X-Big"] = string.rep("v", 9000) } end)
route("GET", "/huge", function(req)
  local h = {} for i = 1, 66 do h["X-H" .. i] = string.rep("v", 1000) end
  return "huge body", h
end)
route("GET", "/lines", function(req)
  local c = {} for i = 1, 500 do c[i] = "c" .. i .. "=1" end
  return "x", { ["Set-Cookie"] = c }
end)
route("GET", "/too-big", function(req)
  local h = {} for i = 1, 200 do h["X-H" .. i] = string.rep("v", 1000) end
  return "x", h
end)
route("GET", "/too-many", function(req)
  local c = {} for i = 1, 2000 do c[i] = "c" .. i end
  return "x", { ["Set-Cookie"] = c }
end)
route("GET", "/hooked", function(req) return "h", { ["Set-Cookie"] = { "a=1", "b=2" } } end)

after(function(req, res)
  local p = req.path
  if p == "/index.html" then res.headers["Content-Length"] = "10" end
  if p == "/index.html" or p == "/hooked" then
    -- a repeated header is an array; names in any case
    res.headers["X-Cookie-Type"] = type(res.headers["set-cookie"])
    local c = res.headers["SET-COOKIE"]
    if c == nil then res.headers["Set-Cookie"] = "z=9"
    elseif type(c) == "string" then res.headers["Set-Cookie"] = { c, "z=9" }
    else c[#c + 1] = "z=9" end
    res.headers["content-type"] = "text/x-hooked"
    res.headers["server"] = "hooked/1"
  end
  if p == "/hook-close.txt" then res.headers.Connection = "close" end
  if p == "/hook-te.txt" then res.headers["Transfer-Encoding"] = "chunked" end
  if p == "/hook-bad.txt" then res.headers["X-Bad"] = "a\nb" end
  if p == "/hook-notable.txt" then res.headers = "nope" end
end)
'''

FILES = {"index.html": "<p>index</p>\n", "hook-close.txt": "hc", "hook-te.txt": "te",
         "hook-bad.txt": "hb", "hook-notable.txt": "nt"}


def lines(r, name):
    """The values of every line of the header name (any case) in r."""
    return [v for k, v in r.headers if k.lower() == name.lower()]


class LuaHeaders(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(CONFIG, files=FILES)

    def errlog(self):
        with open(os.path.join(self.s.dir, "error.log")) as f:
            return f.read()

    def one(self, path, extra=b""):
        r, rd = request(self.s.port, get(path, extra=extra))
        rd.sock.close()
        return r

    # ---- item 8: framing headers are the server's ----

    def test_content_length_from_handler_is_ignored(self):
        r = self.one("/cl")
        self.assertEqual((r.status, r.body), (200, b"hello"))
        self.assertEqual(lines(r, "Content-Length"), ["5"])
        status, h, body = curl(self.s.url("/cl"))
        self.assertEqual((status, body), (200, b"hello"))

    def test_hop_by_hop_headers_are_ignored(self):
        r = self.one("/framing")
        self.assertEqual((r.status, r.body), (200, b"hello"))
        self.assertEqual(lines(r, "Content-Length"), ["5"])
        for name in ("Transfer-Encoding", "Keep-Alive", "Upgrade", "TE", "Trailer",
                     "Proxy-Connection", "Connection"):
            self.assertEqual(lines(r, name), [], name)
        self.assertEqual(lines(r, "X-Kept"), ["yes"])

    def test_ignored_header_warns_once_per_route(self):
        for _ in range(20):
            self.assertEqual(self.one("/cl").body, b"hello")
        self.one("/index.html")
        self.one("/index.html")
        self.wait_for(lambda: "after hook 1" in self.errlog(), what="hook warning")
        log = self.errlog()
        route = [l for l in log.splitlines() if "route GET /cl:" in l]
        self.assertEqual(len(route), 1, log)
        self.assertIn("[warn]", route[0])
        self.assertIn("Content-Length", route[0])
        hook = [l for l in log.splitlines() if "after hook 1:" in l and "Content-Length" in l]
        self.assertEqual(len(hook), 1, log)

    def test_after_hook_content_length_on_static_file(self):
        r = self.one("/index.html")
        self.assertEqual(r.status, 200)
        self.assertEqual(lines(r, "Content-Length"), [str(len(FILES["index.html"]))])
        self.assertEqual(r.body, FILES["index.html"].encode())
        status, h, body = curl(self.s.url("/index.html"))
        self.assertEqual((status, body), (200, FILES["index.html"].encode()))

    def test_after_hook_transfer_encoding_ignored(self):
        r = self.one("/hook-te.txt")
        self.assertEqual((r.status, r.body), (200, b"te"))
        self.assertEqual(lines(r, "Transfer-Encoding"), [])
        self.assertEqual(lines(r, "Content-Length"), ["2"])

    def test_content_type_false_sends_none(self):
        r = self.one("/no-type")
        self.assertEqual((r.status, r.body), (200, b"raw"))
        self.assertEqual(lines(r, "Content-Type"), [])
        self.assertEqual(self.one("/false-server").status, 500)  # only Content-Type takes false

    def test_date_server_content_type_replace_the_servers(self):
        r = self.one("/own")
        self.assertEqual(lines(r, "Date"), ["Mon, 01 Jan 2001 00:00:00 GMT"])
        self.assertEqual(lines(r, "Server"), ["mine/1"])
        self.assertEqual(lines(r, "Content-Type"), ["text/plain"])
        # and the after hook, writing names in lower case
        r = self.one("/index.html")
        self.assertEqual(lines(r, "Content-Type"), ["text/x-hooked"])
        self.assertEqual(lines(r, "Server"), ["hooked/1"])
        self.assertEqual(len(lines(r, "Date")), 1)

    def test_bad_names_and_values_are_500_with_log_line(self):
        for what, shown in (("colon", '"X: y"'), ("space", '"a b"'), ("empty", '""'),
                            ("crlf", '"X-Bad"'), ("nul", '"X-Bad"'), ("ctl", '"X-Bad"'),
                            ("del", '"X-Bad"'), ("nlname", '"X\\nInjected"'),
                            ("nulname", '"X\\x00Hidden"'),
                            ("bool", '"X-Bad"'), ("hash", '"X-Bad"'),
                            ("twoct", '"Content-Type"')):
            r = self.one("/bad/" + what)
            self.assertEqual(r.status, 500, what)
            self.assertNotIn(b"never", r.body)
            self.assertEqual(lines(r, "Injected"), [])
            self.wait_for(lambda: ("route GET /bad/:what: response header " + shown)
                          in self.errlog(), what="log line for " + what)
        # the log stays one line per entry: the newline in the name is escaped
        self.assertNotIn("\nInjected", self.errlog())

    def test_values_rfc9110_allows(self):
        r = self.one("/good-value")
        self.assertEqual(r.status, 200)
        self.assertEqual(lines(r, "X-Tab"), ["a\tb"])
        self.assertEqual(lines(r, "X-High"), ["caf\u00c3\u00a9"])  # bytes as latin-1
        self.assertEqual(lines(r, "X-Empty"), [""])
        self.assertEqual(lines(r, "X-Num"), ["42"])
        self.assertEqual(lines(r, "!#$%&'*+-.^_`|~09azAZ"), ["token"])

    def test_after_hook_bad_header_is_500(self):
        self.assertEqual(self.one("/hook-bad.txt").status, 500)
        self.assertEqual(self.one("/hook-notable.txt").status, 500)
        self.wait_for(lambda: 'after hook 1: response header "X-Bad"' in self.errlog()
                      and "res.headers must be a table" in self.errlog(), what="log lines")
        self.assertEqual(self.one("/hook-close.txt").status, 200)  # still serving

    # ---- item 9: room, repeated headers, nothing dropped ----

    def test_array_value_is_repeated_lines(self):
        r = self.one("/cookies")
        self.assertEqual(lines(r, "Set-Cookie"), ["a=1", "b=2"])
        self.assertEqual(lines(r, "X-One"), ["only"])
        out = subprocess.run(["curl", "-sS", "-i", "--max-time", str(10 * SLOW),
                              self.s.url("/cookies")], capture_output=True).stdout
        self.assertIn(b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n", out)

    def test_after_hook_sees_and_appends_repeated_headers(self):
        r = self.one("/hooked")
        self.assertEqual(lines(r, "X-Cookie-Type"), ["table"])
        self.assertEqual(lines(r, "Set-Cookie"), ["a=1", "b=2", "z=9"])
        r = self.one("/index.html")  # a static file: no cookie before the hook
        self.assertEqual(lines(r, "X-Cookie-Type"), ["nil"])
        self.assertEqual(lines(r, "Set-Cookie"), ["z=9"])

    def test_many_and_large_headers_all_arrive(self):
        r = self.one("/many")
        self.assertEqual(r.status, 200)
        self.assertEqual(len([k for k, _ in r.headers if k.startswith("X-H")]), 100)
        r = self.one("/big")
        self.assertEqual(lines(r, "X-Big"), ["v" * 9000])
        r = self.one("/lines")
        self.assertEqual(lines(r, "Set-Cookie"), ["c%d=1" % i for i in range(1, 501)])

    def test_header_block_over_64k_is_sent(self):
        # 66 x 1000-byte values: the head is more than the 64 KiB render scratch
        s = connect(self.s.port)
        s.sendall(get("/huge") + get("/cl"))
        rd = Reader(s)
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, b"huge body"))
        self.assertEqual(len([k for k, _ in r.headers if k.startswith("X-H")]), 66)
        self.assertTrue(all(v == "v" * 1000 for k, v in r.headers if k.startswith("X-H")))
        self.assertEqual(rd.response().body, b"hello")  # the connection goes on
        s.close()
        status, h, body = curl(self.s.url("/huge"))
        self.assertEqual((status, body, len(h["x-h1"])), (200, b"huge body", 1000))

    def test_past_the_limit_is_500_not_a_silent_drop(self):
        for path in ("/too-big", "/too-many"):
            r = self.one(path)
            self.assertEqual(r.status, 500, path)
            self.assertEqual([k for k, _ in r.headers if k.startswith("X-H")], [])
            self.assertEqual(lines(r, "Set-Cookie"), [])
        self.wait_for(lambda: "route GET /too-big: response header" in self.errlog() and
                      "route GET /too-many: response header" in self.errlog(),
                      what="log lines")
        self.assertIn("does not fit", self.errlog())

    # ---- item 16: Connection from Lua ----

    def test_connection_close_is_honoured(self):
        data = raw(self.s.port, get("/close") + get("/close"))
        self.assertEqual(data.count(b"HTTP/1.1 200"), 1, data)
        self.assertEqual(data.lower().count(b"\r\nconnection:"), 1, data)
        self.assertIn(b"\r\nConnection: close\r\n", data)
        data = raw(self.s.port, get("/close-list") + get("/close"))
        self.assertEqual(data.count(b"HTTP/1.1 200"), 1, data)
        # CONTRACT 3: a framing header from Lua comes with a warning, this one too
        self.wait_for(lambda: "route GET /close: response header Connection is the server's "
                              "and is not sent; its close is honoured" in self.errlog(),
                      what="the warning")
        self.assertIn("route GET /close-list: response header connection is the server's",
                      self.errlog())

    def test_connection_close_once_when_the_server_closes_too(self):
        for req in (get("/close", extra=b"Connection: close\r\n"),
                    get("/close", version=b"HTTP/1.0"),
                    get("/close", version=b"HTTP/1.0", extra=b"Connection: keep-alive\r\n")):
            data = raw(self.s.port, req)
            self.assertEqual(data.lower().count(b"\r\nconnection:"), 1, data)
            self.assertIn(b"\r\nConnection: close\r\n", data)

    def test_connection_keep_alive_never_keeps_open(self):
        data = raw(self.s.port, get("/keep", extra=b"Connection: close\r\n") + get("/keep"))
        self.assertEqual(data.count(b"HTTP/1.1 200"), 1)
        self.assertEqual(data.lower().count(b"\r\nconnection:"), 1)
        self.assertIn(b"\r\nConnection: close\r\n", data)
        # on a persistent connection it is simply not sent
        r, rd = request(self.s.port, get("/keep"))
        self.assertEqual(lines(r, "Connection"), [])
        rd.sock.sendall(get("/keep"))
        self.assertEqual(rd.response().body, b"abc")
        rd.sock.close()

    def test_after_hook_connection_close(self):
        data = raw(self.s.port, get("/hook-close.txt") + get("/hook-close.txt"))
        self.assertEqual(data.count(b"HTTP/1.1 200"), 1, data)
        self.assertEqual(data.lower().count(b"\r\nconnection:"), 1, data)

    # ---- a strict client ----

    NODE = r'''
const http = require("http");
const paths = JSON.parse(process.env.PATHS);
const out = {};
function next(i) {
  if (i === paths.length) { console.log(JSON.stringify(out)); return; }
  const req = http.get({ host: "127.0.0.1", port: +process.env.PORT, path: paths[i],
                         agent: false }, (res) => {
    let body = "";
    res.setEncoding("latin1");
    res.on("data", (d) => body += d);
    res.on("end", () => { out[paths[i]] = { status: res.statusCode, body: body,
                                              raw: res.rawHeaders }; next(i + 1); });
  });
  req.on("error", (e) => { out[paths[i]] = { error: e.code + " " + e.message }; next(i + 1); });
  req.setTimeout(5000 * (+process.env.SLOW), () => req.destroy(new Error("timeout")));
}
next(0);
'''

    @unittest.skipUnless(shutil.which("node"), "node is not installed")
    def test_node_http_client_accepts_the_responses(self):
        paths = ["/cl", "/framing", "/index.html", "/hook-te.txt", "/close", "/cookies",
                 "/own"]
        p = subprocess.run(["node", "-e", self.NODE], capture_output=True, text=True,
                           timeout=30 * SLOW,
                           env=dict(os.environ, PORT=str(self.s.port), SLOW=str(SLOW),
                                    PATHS=json.dumps(paths)))
        got = json.loads(p.stdout)
        for path in paths:
            self.assertNotIn("error", got[path], path)
            self.assertEqual(got[path]["status"], 200, path)
        self.assertEqual(got["/cl"]["body"], "hello")
        self.assertEqual(got["/index.html"]["body"], FILES["index.html"])
        cookies = got["/cookies"]["raw"]
        self.assertEqual([cookies[i + 1] for i in range(0, len(cookies), 2)
                          if cookies[i] == "Set-Cookie"], ["a=1", "b=2"])
