"""CONTRACT section 3, Hooks: a before hook may rewrite req.path. The rewrite is a
decoded path, normalised (dot segments, repeated slashes) but never decoded again,
whatever its length up to limits.header_bytes; only before hooks may change it."""

import threading

from harness import ServerTest, curl

# The rewrite of the review (D3, D4): everything lives under /public.
PREFIX = r'''
before(function(req)
  if req.path == "/" then req.path = "/public/home.html"
  else req.path = "/public" .. req.path end
end)
'''

# Burn CPU time well past the worker's time slice (10 ms), so that the hook is
# paused and resumed at least once: os.clock() is this process's CPU time, which
# the wall-clock slice cannot outrun, however slow the machine. The handler time
# limit is wall time and counts the waits between slices: far out of reach.
SPIN = r'''
limits = { handler_timeout_ms = 600000 }
local function spin()
  local t = os.clock()
  while os.clock() - t < 0.05 do end
end
'''


def warm_up(s):
    """A long target first, as any busy server has seen: a rewrite's length then
    makes no difference, so the test sees how the path itself is treated."""
    curl(s.url("/" + "w" * 400))


class Rewrite(ServerTest):
    def test_longer_rewrite_on_a_fresh_server(self):
        # the first request after start: no long target has sized any buffer yet
        s = self.server(PREFIX, files={"public/home.html": "home", "public/a.txt": "A"})
        self.assertEqual(curl(s.url("/"))[:3:2], (200, b"home"))
        self.assertEqual(curl(s.url("/a.txt"))[:3:2], (200, b"A"))

    def test_percent_in_a_name_is_not_decoded_again(self):
        s = self.server(PREFIX, files={"public/docs/100%.txt": "hundred"})
        warm_up(s)
        self.assertEqual(curl(s.url("/docs/100%25.txt"))[:3:2], (200, b"hundred"))

    def test_encoded_dots_cannot_climb_out_of_the_prefix(self):
        s = self.server(PREFIX, files={"private.txt": "top secret",
                                       "public/%2e%2e/private.txt": "inside"})
        warm_up(s)
        # %252e%252e is the literal name "%2e%2e" under /public, not a ".." segment
        self.assertEqual(curl(s.url("/%252e%252e/private.txt"))[:3:2], (200, b"inside"))
        for path in ("/%252e%252e/%252e%252e/private.txt", "/x/%252e%252e/private.txt",
                     "/%252E%252E%252fprivate.txt"):
            status, _, body = curl(s.url(path))
            self.assertEqual(status, 404, path)
            self.assertNotIn(b"top secret", body, path)

    def test_rewrite_is_normalised_and_read_back(self):
        s = self.server(r'''
before(function(req)
  if req.path == "/show" then
    req.path = "/x//y/./../z//w/.."
    return "seen " .. req.path
  end
  if req.path:sub(1, 4) == "/go/" then req.path = "//a/b/../c//" .. req.path:sub(5) end
end)
before(function(req)
  if req.query.echo then return "next hook sees " .. req.path end
end)
''', files={"a/c/f.txt": "file"})
        self.assertEqual(curl(s.url("/show"))[2], b"seen /x/z/")
        self.assertEqual(curl(s.url("/go/f.txt?echo=1"))[2], b"next hook sees /a/c/f.txt")
        self.assertEqual(curl(s.url("/go/f.txt"))[:3:2], (200, b"file"))

    def test_rewrites_up_to_header_bytes(self):
        s = self.server(r'''
limits = { header_bytes = 2048 }
before(function(req)
  local n = tonumber(req.path:match("^/len/(%d+)$"))
  if n then req.path = "/l/" .. string.rep("a", n - 3) end
end)
route("GET", "/l/*", function(req) return tostring(#req.path) end)
''')
        self.assertEqual(curl(s.url("/len/10"))[:3:2], (200, b"10"))
        self.assertEqual(curl(s.url("/len/2048"))[:3:2], (200, b"2048"))
        self.assertEqual(curl(s.url("/len/2049"))[0], 414)
        self.assertEqual(curl(s.url("/len/100000"))[0], 414)
        self.assertEqual(curl(s.url("/len/20"))[:3:2], (200, b"20"))

    def test_a_refused_rewrite_answers_as_the_same_path_would(self):
        s = self.server(r'''
before(function(req)
  if req.path == "/f" then req.path = "/public/" .. req.query.name end
  if req.path == "/nul" then req.path = "/public/a\0b" end
end)
''', files={"private.txt": "top secret", "public/a.txt": "A",
            "public/.env": "dotfile"})
        self.assertEqual(curl(s.url("/f?name=a.txt"))[:3:2], (200, b"A"))
        self.assertEqual(curl(s.url("/f?name=sub/../a.txt"))[:3:2], (200, b"A"))
        self.assertEqual(curl(s.url("/f?name=../private.txt"))[:3:2], (200, b"top secret"))
        for name, status in (("../../private.txt", 403), ("..%5Cprivate.txt", 404),
                             (".env", 404)):
            got, _, body = curl(s.url("/f?name=" + name))
            self.assertEqual(got, status, name)
            self.assertNotIn(b"top secret", body)
            self.assertNotIn(b"dotfile", body)
        self.assertEqual(curl(s.url("/nul"))[0], 404)
        self.assertEqual(curl(s.url("/public/a.txt"))[:3:2], (200, b"A"))

    def test_routes_see_the_rewrite(self):
        s = self.server(r'''
before(function(req)
  local id = req.path:match("^/u/(%d+)$")
  if id then req.path = "/api/v1/users/" .. id .. "/profile" end
end)
route("GET", "/api/v1/users/:id/profile", function(req)
  return "profile " .. req.params.id .. " at " .. req.path
end)
route("GET", "/u/:id", function(req) return "not rewritten" end)
''')
        self.assertEqual(curl(s.url("/u/42"))[:3:2],
                         (200, b"profile 42 at /api/v1/users/42/profile"))
        self.assertEqual(curl(s.url("/u/x"))[:3:2], (200, b"not rewritten"))


class OnlyBeforeHooks(ServerTest):
    CONFIG = r'''
route("GET", "/route", function(req) req.path = "/b.txt" end)
route("GET", "/co", function(req)
  local co = coroutine.wrap(function() req.path = "/b.txt" end)
  co()
end)
route("GET", "/caught", function(req)
  local ok, err = pcall(function() req.path = "/b.txt" end)
  return tostring(ok) .. " " .. req.path
end)
after(function(req, res)
  if req.path == "/after.txt" then req.path = "/b.txt" end
end)
before(function(req)
  if req.path == "/hookco" then
    local co = coroutine.wrap(function() req.path = "/b.txt" end)
    co()
  end
end)
'''

    def test_route_handler_cannot_assign(self):
        s = self.server(self.CONFIG, files={"route": "R", "b.txt": "B", "co": "C"})
        for path, kind in (("/route", "route GET /route"), ("/co", "route GET /co")):
            status, _, body = curl(s.url(path))
            self.assertEqual(status, 500, path)
            self.assertNotIn(b"B", body)
            self.wait_for(lambda: kind + ":" in s.stderr(), what="log line for " + path)
        self.assertRegex(s.stderr(), r"lua: route GET /route: .*config\.lua:\d+: "
                         r"req\.path can only be changed by a before hook")
        # the error is an ordinary Lua error: pcall catches it and nothing changed
        self.assertEqual(curl(s.url("/caught"))[:3:2], (200, b"false /caught"))

    def test_after_hook_cannot_assign(self):
        s = self.server(self.CONFIG, files={"after.txt": "A", "b.txt": "B"})
        status, _, body = curl(s.url("/after.txt"))
        self.assertEqual(status, 500)
        self.wait_for(lambda: "after hook 1:" in s.stderr(), what="log line")
        self.assertRegex(s.stderr(), r"lua: after hook 1: .*req\.path can only be "
                         r"changed by a before hook")
        self.assertEqual(curl(s.url("/b.txt"))[:3:2], (200, b"B"))

    def test_a_coroutine_of_a_before_hook_may_assign(self):
        s = self.server(self.CONFIG, files={"b.txt": "B"})
        self.assertEqual(curl(s.url("/hookco"))[:3:2], (200, b"B"))


class PausedRewrite(ServerTest):
    def test_rewrite_after_the_hook_was_paused(self):
        s = self.server(SPIN + r'''
before(function(req)
  spin()
  req.path = "/public" .. req.path
  spin()
  if req.query.echo then return "path " .. req.path end
end)
''', files={"public/home.html": "home"})
        self.assertEqual(curl(s.url("/home.html"))[:3:2], (200, b"home"))
        self.assertEqual(curl(s.url("/a//b/../c?echo=1"))[2], b"path /public/a/c")

    def test_rewrite_of_a_yielding_hook(self):
        s = self.server(r'''
before(function(req)
  local gen = coroutine.wrap(function()
    for _, part in ipairs({"/public", "/deep", "/er"}) do coroutine.yield(part) end
  end)
  local prefix = gen() .. gen() .. gen()
  req.path = prefix .. req.path
end)
''', files={"public/deep/er/x.txt": "deep"})
        self.assertEqual(curl(s.url("/x.txt"))[:3:2], (200, b"deep"))

    def test_paused_requests_keep_their_own_paths(self):
        # one worker: while one request's hook is paused, the others use the
        # worker's scratch space; each must still rewrite its own path
        s = self.server(SPIN + r'''
workers = 1
before(function(req)
  local before = req.path
  spin()
  req.path = "/public" .. req.path .. ".txt"
  spin()
  if req.path ~= "/public" .. before .. ".txt" then error("path changed") end
end)
''', files={"public/%s.txt" % n: n * 3 for n in ("a", "bb", "ccccccccc")})
        results = {}

        def fetch(name):
            results[name] = curl(s.url("/" + name))[:3:2]

        names = ["a", "bb", "ccccccccc"] * 2
        threads = [threading.Thread(target=fetch, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in names:
            self.assertEqual(results[n], (200, (n * 3).encode()), n)
