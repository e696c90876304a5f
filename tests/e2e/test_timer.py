"""CONTRACT section 11: timer.after(seconds, fn) and timer.every(seconds, fn) run fn
later, or again and again, in the worker, outside any request. Timers made at the top
of config.lua run in every worker; a reload drops the old configuration's timers; an
error in fn is logged and an every timer goes on; a long computation in a timer does
not keep the worker from its clients; a timer may sleep."""

import os
import signal
import threading
import time

from harness import SLOW, ServerTest, curl

AFTER = r'''
workers = 1
error_log = "error.log"
timer.after(0.1, function() shared.set("after", "done in " .. worker.id) end)
route("GET", "/after", function() return tostring(shared.get("after")) end)
route("GET", "/start", function()
  h = timer.every(0.05, function() shared.incr("c") end)
  return "started"
end)
route("GET", "/count", function() return tostring(shared.get("c")) end)
route("GET", "/cancel", function() return tostring(h:cancel()) end)
route("GET", "/later", function()
  timer.after(0, function()
    shared.set("later", "asleep")
    sleep(0.3)
    shared.set("later", "woke")
  end)
  return "ok"
end)
route("GET", "/later-state", function() return tostring(shared.get("later")) end)
'''

TICKS = r'''
workers = 2
error_log = "error.log"
timer.every(0.1, function() shared.incr("ticks" .. tostring(worker.id)) end)
route("GET", "/ticks", function()
  return { w0 = shared.get("ticks0"), w1 = shared.get("ticks1"),
           master = shared.get("ticksnil"), version = 1 }
end)
'''

TICKS_GONE = r'''
workers = 2
error_log = "error.log"
route("GET", "/ticks", function()
  return { w0 = shared.get("ticks0"), w1 = shared.get("ticks1"), version = 2 }
end)
'''

FAILING = r'''
workers = 1
error_log = "error.log"
timer.every(0.05, function()
  local n = shared.incr("e")
  error("tick failed " .. n)
end)
route("GET", "/e", function() return tostring(shared.get("e")) end)
'''

BUSY = r'''
workers = 1
error_log = "error.log"
limits = { handler_timeout_ms = 10000 }
timer.after(0.2, function()
  shared.set("busy", "computing")
  local t0 = os.clock()
  while os.clock() - t0 < 0.5 do end
  shared.set("busy", "done")
end)
route("GET", "/busy", function() return tostring(shared.get("busy")) end)
'''

ASLEEP = r'''
workers = 1
error_log = "error.log"
timer.after(0, function() shared.set("z", "asleep"); sleep(60); shared.set("z", "woke") end)
timer.every(0.05, function() log("tick") end)
route("GET", "/z", function() return tostring(shared.get("z")) end)
route("GET", "/slow", function() shared.set("slow", "asleep"); sleep(1); return "slow" end)
route("GET", "/slow-state", function() return tostring(shared.get("slow")) end)
'''


def body(s, path):
    return curl(s.url(path))[2].decode()


class Timer(ServerTest):
    def errlog(self, s):
        try:
            with open(os.path.join(s.dir, "error.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def test_after_writes_shared(self):
        s = self.server(AFTER)
        self.wait_for(lambda: body(s, "/after") == "done in 0", timeout=3,
                      what="timer.after's write")
        self.assertNotIn("[error]", self.errlog(s))

    def test_every_ticks_in_each_worker_not_in_the_master(self):
        s = self.server(TICKS)
        import json
        self.wait_for(lambda: (lambda t: (t.get("w0") or 0) >= 3 and (t.get("w1") or 0) >= 3)(
            json.loads(body(s, "/ticks"))), timeout=5, what="ticks in both workers")
        self.assertNotIn("master", json.loads(body(s, "/ticks")))

    def test_cancel_from_a_route(self):
        s = self.server(AFTER)
        self.assertEqual(body(s, "/start"), "started")
        self.wait_for(lambda: body(s, "/count") not in ("nil", "1", "2"), timeout=3,
                      what="the every timer's ticks")
        self.assertEqual(body(s, "/cancel"), "true")
        stopped_at = int(body(s, "/count"))
        time.sleep(0.4)
        self.assertEqual(int(body(s, "/count")), stopped_at)
        self.assertEqual(body(s, "/cancel"), "false")

    def test_error_is_logged_and_every_goes_on(self):
        s = self.server(FAILING)
        self.wait_for(lambda: body(s, "/e") not in ("nil", "1", "2"), timeout=3,
                      what="ticks after an error")
        log = self.errlog(s)
        self.assertIn("[error] lua: timer.every ", log)
        # the function's line names it (config.lua gets a docroot line on top)
        line = ('docroot = "www"\n' + FAILING).split("\n").index("timer.every(0.05, function()")
        self.assertIn("timer.every %s:%d: " % (s.config_path, line + 1), log)
        self.assertIn("tick failed 1", log)
        self.assertIn("tick failed 2", log)
        self.assertIn("stack traceback:", log)

    def test_reload_cancels_the_old_timers(self):
        import json
        s = self.server(TICKS)
        self.wait_for(lambda: (json.loads(body(s, "/ticks")).get("w0") or 0) >= 2, timeout=5,
                      what="ticks")
        s.rewrite_config(TICKS_GONE)
        s.signal(signal.SIGHUP)
        # both workers run the new file
        self.wait_for(lambda: all(json.loads(body(s, "/ticks"))["version"] == 2
                                  for _ in range(6)), timeout=5, what="the reload")
        # a worker the curls above did not reach may still be loading the file: the
        # counts stand still once neither worker ticks (a tick every 0.1 s)
        def ticks():
            t = json.loads(body(s, "/ticks"))
            return t.get("w0"), t.get("w1")

        def still():
            was = ticks()
            time.sleep(0.3 * SLOW)
            return ticks() == was
        self.wait_for(still, timeout=5, what="the old timers to stop")
        before = json.loads(body(s, "/ticks"))
        time.sleep(0.6)
        after = json.loads(body(s, "/ticks"))
        self.assertEqual((before["w0"], before["w1"]), (after["w0"], after["w1"]))

    def test_computing_timer_does_not_block_static_files(self):
        s = self.server(BUSY, files={"a.txt": "static"})
        self.wait_for(lambda: body(s, "/busy") != "nil", timeout=3, what="the timer's start")
        served_while_busy, times = 0, []
        while True:
            a = time.time()
            st, _, b = curl(s.url("/a.txt"))
            times.append(time.time() - a)
            self.assertEqual((st, b), (200, b"static"))
            state = body(s, "/busy")
            if state == "done":
                break
            served_while_busy += 1
        # served between the timer's slices (10 ms each), not after its 0.5 s
        self.assertGreaterEqual(served_while_busy, 2, times)
        self.assertLess(max(times), 0.3 * SLOW, times)
        self.assertNotIn("[error]", self.errlog(s))

    def test_timer_made_by_a_handler_sleeps(self):
        s = self.server(AFTER)
        t0 = time.time()
        self.assertEqual(body(s, "/later"), "ok")
        self.wait_for(lambda: body(s, "/later-state") != "nil", timeout=3,
                      what="the timer's start")
        self.wait_for(lambda: body(s, "/later-state") == "woke", timeout=3, what="its end")
        self.assertGreaterEqual(time.time() - t0, 0.3)
        self.assertNotIn("[error]", self.errlog(s))

    def test_shutdown_drops_the_timers(self):
        s = self.server(ASLEEP)
        self.wait_for(lambda: body(s, "/z") == "asleep", timeout=3, what="the timer's sleep")
        got = {}
        slow = threading.Thread(target=lambda: got.update(r=curl(s.url("/slow"))))
        slow.start()
        # in flight (paused in its sleep) when the signal comes
        self.wait_for(lambda: body(s, "/slow-state") == "asleep", what="/slow's sleep")
        ticks = self.errlog(s).count("] tick")
        s.signal(signal.SIGTERM)
        slow.join(10 * SLOW)
        self.assertEqual(got["r"][2], b"slow")  # the request in flight finished
        self.assertEqual(s.wait(timeout=5 * SLOW), 0)
        # the worker drained /slow for most of a second: the every timer did not tick
        # meanwhile (one may have been under way when the signal came)
        self.assertLessEqual(self.errlog(s).count("] tick") - ticks, 1)
        self.assertNotIn("woke", self.errlog(s))
