"""CONTRACT section 9, "State shared by workers": `shared` is seen by every worker,
survives a reload, holds at most limits.shared_mb, evicts expired then least recently
used keys, and `incr` is atomic across workers, even when a worker is killed."""

import json
import os
import signal
import threading
import time

from harness import SANITIZED, SLOW, VALGRIND, Reader, ServerTest, connect, curl, get

ROUTES = '''
route("GET", "/incr", function(req)
  return tostring(shared.incr("hits", 1))
end)
route("GET", "/get/:k", function(req)
  local v = shared.get(req.params.k)
  return json.encode({ v = v == nil and json.null or v, kind = math.type(v) or type(v) })
end)
route("POST", "/set/:k", function(req)
  local ok, err = shared.set(req.params.k, req.body, tonumber(req.query.ttl))
  return json.encode({ ok = ok or false, err = err })
end)
'''


def incr_loop(port, n, statuses, stop=None):
    """n GET /incr on one keep-alive connection (a new one when the server closes it);
    each answer's status is appended to statuses (None: no answer)."""
    sock, rd = None, None
    for _ in range(n):
        if stop and stop.is_set():
            break
        try:
            if sock is None:
                sock = connect(port, timeout=10 * SLOW)
                rd = Reader(sock)
            sock.sendall(get("/incr"))
            statuses.append(rd.response().status)
        except (OSError, EOFError, AssertionError):
            statuses.append(None)
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()


class Shared(ServerTest):
    def lua(self, s, path):
        st, _, body = curl(s.url(path))
        self.assertEqual(st, 200, body)
        return json.loads(body)

    def test_values_come_back_equal(self):
        # every kind of value, in one handler and in the next request
        s = self.server(ROUTES + r'''
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b and math.type(a) == math.type(b) end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return getmetatable(a) == getmetatable(b)
end
local allbytes = {}
for i = 0, 255 do allbytes[#allbytes + 1] = string.char(i) end
allbytes = table.concat(allbytes)
local values = {
  str = "a\0b\255", int = 42, big = math.maxinteger, float = 0.5, whole = 2.0,
  yes = true, no = false, empty = "",
  tbl = { 1, 2.0, "three", { nested = { deep = true } }, [10] = "sparse",
          [1.5] = "float key", [true] = "bool key", n = json.null,
          arr = json.array({}), bytes = allbytes },
}
route("GET", "/put", function(req)
  for k, v in pairs(values) do assert(shared.set(k, v)) end
  local bad = {}
  for k, v in pairs(values) do if not same(shared.get(k), v) then bad[#bad+1] = k end end
  assert(shared.set(allbytes, "key of every byte"))
  return json.encode(bad)
end)
route("GET", "/check", function(req)
  local bad = {}
  for k, v in pairs(values) do if not same(shared.get(k), v) then bad[#bad+1] = k end end
  if shared.get(allbytes) ~= "key of every byte" then bad[#bad+1] = "allbytes key" end
  if json.encode(shared.get("tbl").arr) ~= "[]" then bad[#bad+1] = "array mark" end
  return json.encode(bad)
end)
''')
        self.assertEqual(self.lua(s, "/put"), {})
        self.assertEqual(self.lua(s, "/check"), {})

    def test_the_calls(self):
        # add, incr, delete, expire, ttl, keys and the errors, as the contract says
        s = self.server(r'''
limits = { handler_timeout_ms = 60000 }
route("GET", "/calls", function(req)
  local r = {}
  r.add1 = { shared.add("a", 1) }
  r.add2 = { shared.add("a", 2) }
  r.a = shared.get("a")
  r.incr_new = shared.incr("n", 5, 10)
  r.incr_float = shared.incr("n", 0.5)
  r.incr_default = shared.incr("m")
  shared.set("s", "text")
  r.incr_str = { shared.incr("s", 1) }
  r.s = shared.get("s")
  r.ttl_none = shared.ttl("a") == nil
  r.ttl_missing = { shared.ttl("nope") }
  shared.set("t", "x", 100)
  local left = shared.ttl("t")
  r.ttl_ok = left > 99 and left <= 100
  r.expire = shared.expire("t", 0)
  r.ttl_gone = shared.ttl("t") == nil
  r.expire_missing = { shared.expire("nope", 5) }
  r.keys_u = shared.keys("user:")
  shared.set("user:2", 1); shared.set("user:1", 1); shared.set("other", 1)
  r.keys_user = shared.keys("user:")
  r.delete = shared.delete("user:1")
  r.keys_after = shared.keys("user:")
  r.set_nil = shared.set("user:2", nil)
  r.user2 = shared.get("user:2") == nil
  r.big = { shared.set("big", ("x"):rep(20 << 20)) }
  r.fn = select(2, pcall(shared.set, "f", print))
  r.longkey = select(2, pcall(shared.get, ("k"):rep(65537)))
  return r
end)
''')
        r = self.lua(s, "/calls")
        self.assertEqual(r["add1"], [True])
        self.assertEqual(r["add2"], [False, "exists"])
        self.assertEqual(r["a"], 1)
        self.assertEqual(r["incr_new"], 15)
        self.assertEqual(r["incr_float"], 15.5)
        self.assertEqual(r["incr_default"], 1)
        self.assertEqual(r["incr_str"], [None, "not a number"])
        self.assertEqual(r["s"], "text")
        self.assertTrue(r["ttl_none"])
        self.assertEqual(r["ttl_missing"][-1], "not found")
        self.assertTrue(r["ttl_ok"])
        self.assertTrue(r["expire"])
        self.assertTrue(r["ttl_gone"])
        self.assertEqual(r["expire_missing"], [False, "not found"])
        self.assertEqual(r["keys_u"], {})
        self.assertEqual(r["keys_user"], ["user:1", "user:2"])
        self.assertTrue(r["delete"])
        self.assertEqual(r["keys_after"], ["user:2"])
        self.assertTrue(r["set_nil"])
        self.assertTrue(r["user2"])
        self.assertEqual(r["big"][-1], "too large")
        self.assertIn("cannot store a function", r["fn"])
        self.assertIn("key longer than 64 KiB", r["longkey"])

    def test_ttl_expires(self):
        s = self.server(ROUTES)
        ttl = 0.5 * SLOW
        st, _, body = curl("-X", "POST", "--data", "soon", s.url("/set/k?ttl=%g" % ttl))
        self.assertEqual(json.loads(body)["ok"], True)
        t = time.time()
        got = self.lua(s, "/get/k")["v"]
        if time.time() - t < ttl * 0.8:
            self.assertEqual(got, "soon")
        time.sleep(ttl + 0.1)
        self.assertIsNone(self.lua(s, "/get/k")["v"])

    def test_not_while_config_loads(self):
        s = self.server('shared.set("x", 1)\n', expect_start=False)
        self.assertEqual(s.wait(timeout=10 * SLOW), 1)
        self.assertIn("config.lua:2:", s.stderr())
        self.assertIn("shared: not available while config.lua loads", s.stderr())

    def test_incr_is_exact_across_four_workers(self):
        # 2,000 concurrent incr requests from 50 connections on 4 workers: exactly 2,000
        s = self.server("workers = 4\nunsafe_libs = true\n" + ROUTES +
                        'route("GET", "/nap", function() os.execute("sleep 0.3") return "" end)\n')
        self.wait_for(lambda: len(s.workers()) == 4, what="4 workers")
        statuses = []
        threads = [threading.Thread(target=incr_loop, args=(s.port, 40, statuses))
                   for _ in range(50)]
        # hold three workers in a blocking call at the start so that all four take some
        naps = [threading.Thread(target=curl, args=(s.url("/nap"),)) for _ in range(3)]
        for t in naps + threads:
            t.start()
        for t in naps + threads:
            t.join(timeout=120 * SLOW)
        self.assertEqual(len(statuses), 2000)
        self.assertEqual(statuses.count(200), 2000, set(statuses))
        self.assertEqual(self.lua(s, "/get/hits"), {"v": 2000, "kind": "integer"})

    def test_the_store_outlives_a_reload(self):
        cfg = ROUTES + 'route("GET", "/v", function() return "%s" end)\n'
        s = self.server(cfg % "one")
        curl("-X", "POST", "--data", "kept", s.url("/set/k"))
        s.rewrite_config(cfg % "two")
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: curl(s.url("/v"))[2] == b"two", timeout=5, what="the reload")
        self.assertEqual(self.lua(s, "/get/k")["v"], "kept")

    def test_a_worker_killed_mid_incr_loses_no_lock(self):
        # /spin holds the lock for most of its time (a loop of incr): SIGKILL lands
        # inside it sooner or later; the others go on counting, nothing waits forever
        s = self.server("workers = 2\n" + ROUTES + '''
route("GET", "/spin", function()
  for i = 1, 200000 do shared.incr("spin", 1) end
  return "done"
end)
''')
        self.wait_for(lambda: len(s.workers()) == 2, what="2 workers")
        stop = threading.Event()
        statuses = []
        loops = [threading.Thread(target=incr_loop, args=(s.port, 100000, statuses, stop))
                 for _ in range(4)]
        spins = []

        def spin():
            while not stop.is_set():
                try:
                    curl(s.url("/spin"), timeout=5)
                except AssertionError:
                    pass
        spins = [threading.Thread(target=spin) for _ in range(2)]
        for t in loops + spins:
            t.start()
        kills = 0
        try:
            deadline = time.time() + 6 * SLOW
            while kills < 6 and time.time() < deadline:
                time.sleep(0.3 * SLOW)
                ws = s.workers()
                if ws:
                    os.kill(ws[kills % len(ws)], signal.SIGKILL)
                    kills += 1
        finally:
            time.sleep(0.5)
            stop.set()
            for t in loops + spins:
                t.join(timeout=30 * SLOW)
        self.assertGreaterEqual(kills, 3)
        self.wait_for(lambda: len(s.workers()) == 2, timeout=5, what="2 workers again")
        answered = statuses.count(200)
        hits = self.lua(s, "/get/hits")["v"]
        # each answered incr counted once; an unanswered one may have counted too
        self.assertGreaterEqual(hits, answered)
        self.assertLessEqual(hits, answered + statuses.count(None) + kills * 2)
        # and the count goes on, on every worker
        before = hits
        done = []
        incr_loop(s.port, 20, done)
        self.assertEqual(done.count(200), 20)
        self.assertEqual(self.lua(s, "/get/hits")["v"], before + 20)

    def test_filling_a_small_store_is_bounded(self):
        # 100 MB of values into shared_mb = 1: old ones are evicted, memory stays
        # bounded, and other clients are served meanwhile
        # (a minute for the handler: 100 MB of copies take seconds under valgrind)
        s = self.server("limits = { shared_mb = 1, handler_timeout_ms = 60000 }\n" + ROUTES + '''
route("GET", "/fill", function(req)
  local v = ("v"):rep(100 * 1024)
  for i = 1, 1000 do
    assert(shared.set("fill:" .. i, v .. i))
  end
  local st = shared.stats()
  return { keys = #shared.keys("fill:"), last = shared.get("fill:1000") == v .. 1000,
           first = shared.get("fill:1") ~= nil, bytes = st.bytes,
           capacity = st.capacity, evictions = st.evictions }
end)
''', files={"a.txt": "static"})
        rss0 = s.rss()
        result = {}

        def fill():
            result.update(self.lua(s, "/fill"))
        t = threading.Thread(target=fill)
        t.start()
        served = 0
        while t.is_alive() and served < 20:
            self.assertEqual(curl(s.url("/a.txt"))[2], b"static")
            served += 1
        t.join(timeout=60 * SLOW)
        self.assertTrue(result, "the fill did not finish")
        self.assertTrue(result["last"])
        self.assertFalse(result["first"])
        self.assertLessEqual(result["bytes"], result["capacity"])
        self.assertLessEqual(result["capacity"], 1 << 20)
        self.assertLess(result["keys"], 11)
        self.assertGreater(result["evictions"], 980)
        if not (VALGRIND or SANITIZED):  # ASan keeps freed memory in quarantine
            self.assertLess(s.rss() - rss0, 16 << 20)

    def test_full_store_drops_expired_then_least_recently_used(self):
        s = self.server("limits = { shared_mb = 1 }\n" + ROUTES + '''
local v = ("v"):rep(10 * 1024)
route("GET", "/fill", function(req)
  -- live:1 is the oldest, then the one that expires soon, then the others
  assert(shared.set("live:1", v))
  assert(shared.set("brief", v, 0.2))
  local i = 1
  while shared.stats().bytes + 3 * #v < shared.stats().capacity do
    i = i + 1
    assert(shared.set("live:" .. i, v))
  end
  assert(shared.stats().evictions == 0)
  return { n = i }
end)
route("GET", "/one", function(req)
  -- new values until one needs room (at most a few: the fill left little)
  for i = 1, 5 do
    shared.set("new:" .. i, v)
    if shared.stats().expired + shared.stats().evictions > 0 then break end
  end
  local st = shared.stats()
  return { expired = st.expired, evictions = st.evictions, brief = shared.get("brief") ~= nil }
end)
route("GET", "/touch", function(req) return { ok = shared.get("live:2") ~= nil } end)
route("GET", "/many", function(req)
  for i = 1, 5 do shared.set("more:" .. i, v) end
  return { live1 = shared.get("live:1") ~= nil, live2 = shared.get("live:2") ~= nil,
           live3 = shared.get("live:3") ~= nil }
end)
''')
        self.assertGreater(self.lua(s, "/fill")["n"], 50)
        time.sleep(0.4)  # "brief" has expired; nothing has read it
        # the room comes from the expired entry, not from live:1, the oldest live one
        self.assertEqual(self.lua(s, "/one"),
                         {"expired": 1, "evictions": 0, "brief": False})
        self.assertEqual(self.lua(s, "/touch"), {"ok": True})
        # then the least recently used: live:1 and live:3 go, live:2 was just read
        self.assertEqual(self.lua(s, "/many"), {"live1": False, "live2": True, "live3": False})
