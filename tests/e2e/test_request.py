"""CONTRACT section 3, the request object's fields beyond the first ones: req.url,
req.query_string, req:query_all(), req.host, req.scheme, req.version, req:header() and
req.ctx, through the real binary with curl and raw sockets."""

from harness import ServerTest, curl, get, request

CONFIG = r'''
-- /f/NAME answers the type of req.NAME, ':' and, for a string, the string
local function show(v) return type(v) .. ":" .. (type(v) == "string" and v or "") end
route("GET", "/f/:name", function(req) return show(req[req.params.name]) end)
route("GET", "/all/:name", function(req)
  local t = req:query_all(req.params.name)
  return table.concat(t, "|") .. "#" .. #t
end)
route("GET", "/header/:name", function(req) return show(req:header(req.params.name)) end)
route("GET", "/headers/:name", function(req) return show(req.headers[req.params.name]) end)

-- req.ctx: one table for the before hook, a route that declines, the route that
-- answers and the after hook
before(function(req)
  if req.path:sub(1, 4) == "/ctx" then req.ctx.a = 1 end
end)
route("GET", "/ctx", function(req) req.ctx.c = "declined" end)
route("GET", "/ctx", function(req)
  req.ctx.b = req.ctx.a + 1
  return "a=" .. req.ctx.a .. " c=" .. req.ctx.c
end)
route("GET", "/fresh", function(req) return tostring(next(req.ctx)) end)
after(function(req, res)
  if req.path:sub(1, 4) == "/ctx" then
    res.headers["X-Ctx"] = req.ctx.a .. "," .. tostring(req.ctx.b)
  end
end)

-- a handler that computes past its time slice (paused, moved off the worker's scratch
-- space, resumed) and reads the fields afterwards
route("GET", "/slow", function(req)
  req.ctx.before = req.url
  local t0 = os.clock() while os.clock() - t0 < 0.05 do end
  return table.concat({ req.ctx.before, req.url, req.query_string, req.host, req.version,
                        req:header("x-a"), table.concat(req:query_all("q"), "+") }, " ")
end)
'''


class RequestFields(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(CONFIG)

    def body(self, *args):
        status, _, body = curl(*args)
        self.assertEqual(status, 200)
        return body.decode()

    def raw(self, data):
        r, _ = request(self.s.port, data)
        self.assertEqual(r.status, 200)
        return r.body.decode()

    def test_url_is_the_target_as_received(self):
        self.assertEqual(self.body(self.s.url("/f/url?x=%20+y&z")), "string:/f/url?x=%20+y&z")
        self.assertEqual(self.body(self.s.url("/f/%75rl")), "string:/f/%75rl")
        self.assertEqual(self.raw(get("http://h.example/f/url?q")),
                         "string:http://h.example/f/url?q")

    def test_query_string(self):
        self.assertEqual(self.body(self.s.url("/f/query_string?a=%41&b=1+2&&c")),
                         "string:a=%41&b=1+2&&c")
        self.assertEqual(self.raw(get("/f/query_string?")), "string:")
        self.assertEqual(self.raw(get("/f/query_string")), "string:")

    def test_query_all(self):
        def url(name):
            return self.s.url("/all/" + name + "?a=1&b=2&a=x+y&&a=%41&a%5Bb%5D=z")
        self.assertEqual(self.body(url("a")), "1|x y|A#3")
        self.assertEqual(self.body(url("b")), "2#1")
        self.assertEqual(self.body(url("a%5Bb%5D")), "z#1")  # the capture is decoded: a[b]
        self.assertEqual(self.body(url("c")), "#0")
        self.assertEqual(self.body(self.s.url("/all/a")), "#0")

    def test_host_without_port(self):
        self.assertEqual(self.body("-H", "Host: example.com:8080", self.s.url("/f/host")),
                         "string:example.com")
        self.assertEqual(self.body("-H", "Host: example.com", self.s.url("/f/host")),
                         "string:example.com")
        self.assertEqual(self.body(self.s.url("/f/host")), "string:127.0.0.1")
        self.assertEqual(self.raw(get("/f/host", host="[::1]:8080")), "string:[::1]")
        # an absolute-form target's authority replaces Host (RFC 9112 3.2.2)
        self.assertEqual(self.raw(get("http://abs.example:81/f/host", host="other:82")),
                         "string:abs.example")
        self.assertEqual(self.raw(b"GET /f/host HTTP/1.0\r\n\r\n"), "string:")

    def test_scheme_and_version(self):
        self.assertEqual(self.body(self.s.url("/f/scheme")), "string:http")
        self.assertEqual(self.body(self.s.url("/f/version")), "string:1.1")
        self.assertEqual(self.body("--http1.0", self.s.url("/f/version")), "string:1.0")
        self.assertEqual(self.raw(b"GET /f/version HTTP/1.0\r\n\r\n"), "string:1.0")

    def test_header_any_case_and_repeated(self):
        extra = b"X-Foo: 1\r\nAccept: */*\r\nx-foo:  two \r\nX-FOO: 3\r\n"
        self.assertEqual(self.raw(get("/header/x-fOO", extra=extra)), "string:1, two, 3")
        self.assertEqual(self.raw(get("/headers/x-foo", extra=extra)), "string:3")  # last
        self.assertEqual(self.raw(get("/header/ACCEPT", extra=extra)), "string:*/*")
        self.assertEqual(self.raw(get("/header/x-fo", extra=extra)), "nil:")
        self.assertEqual(self.body("-H", "X-Custom: v", self.s.url("/header/x-custom")),
                         "string:v")

    def test_ctx_is_one_table_for_the_request(self):
        status, h, body = curl(self.s.url("/ctx"))
        self.assertEqual((status, body, h["x-ctx"]), (200, b"a=1 c=declined", "1,2"))
        status, h, _ = curl(self.s.url("/ctx/none"))  # no route: the 404 has it too
        self.assertEqual((status, h["x-ctx"]), (404, "1,nil"))
        self.assertEqual(self.body(self.s.url("/fresh")), "nil")  # and the next request not

    def test_fields_after_a_pause(self):
        r, _ = request(self.s.port, get("/slow?q=1&q=2", host="h:1", extra=b"X-A: b\r\n"))
        self.assertEqual((r.status, r.body),
                         (200, b"/slow?q=1&q=2 /slow?q=1&q=2 q=1&q=2 h 1.1 b 1+2"))
