"""CONTRACT section 2, "Processes": one master and `workers` worker processes; a
worker that dies or stalls is replaced; the caps hold across workers; signals reach
every worker; logs from many processes stay whole."""

import os
import re
import signal
import socket
import threading
import time

from harness import SLOW, VALGRIND, Reader, ServerTest, connect, curl, get

# A Lua pattern that backtracks for minutes in one C call: no hook can stop it. The
# file "stuck" beside config.lua says a worker is in it.
STUCK = '''
route("GET", "/stuck", function(req)
  io.open("stuck", "w"):close()
  return { r = string.find(("a"):rep(30) .. "b", ("a*"):rep(30) .. "c") }
end)
'''

# Which process answered: the worker's pid, read where any handler can. /nap keeps
# its worker away from its loop for a second (a blocking C call), so that the next
# connection goes to another worker: with one listening socket, connections that
# come one at a time may all go to the worker that wakes first. The file "napping"
# beside config.lua says a worker is in that call.
PID = '''
unsafe_libs = true
route("GET", "/pid", function(req)
  local f = io.open("/proc/self/stat")
  local pid = f:read("n")
  f:close()
  return tostring(pid)
end)
route("GET", "/nap", function(req) os.execute("touch napping; sleep 1") return "rested" end)
'''

BIG = 8 << 20


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def state(pid):
    """The state letter of a process ("Z": a zombie), None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def open_files(pid):
    """What pid's descriptors point to."""
    out = []
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for fd in fds:
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass  # closed meanwhile
    return out


def in_call(s, name):
    """Whether a handler has made the file name beside config.lua (and so is in the
    blocking call that follows); removes it."""
    try:
        os.unlink(os.path.join(s.dir, name))
        return True
    except FileNotFoundError:
        return False


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def pid_on(sock, rd):
    """The pid of the worker serving this keep-alive connection (None: 503)."""
    sock.sendall(get("/pid"))
    r = rd.response()
    if r.status == 503:
        return None
    assert r.status == 200, r.status
    return int(r.body)


def status(url, timeout=1):
    """The status curl gets, or None when it gets no answer."""
    try:
        return curl(url, timeout=timeout)[0]
    except AssertionError:
        return None


class Processes(ServerTest):
    def wait_workers(self, s, n, timeout=1.0, what="the workers"):
        self.wait_for(lambda: len(s.workers()) == n, timeout=timeout, what=what)

    def test_ps_shows_master_and_workers(self):
        for n in (1, 2, 4):
            s = self.server("workers = %d\n" % n + PID)
            self.wait_workers(s, n)
            if not VALGRIND:  # under valgrind every process is named after it
                self.assertEqual(comm(s.proc.pid), "luahttpd")
                self.assertEqual([comm(p) for p in s.workers()], ["luahttpd"] * n)
            # the master answers nothing itself: every request is a worker's
            seen = {int(curl(s.url("/pid"))[2]) for _ in range(12)}
            self.assertTrue(seen <= set(s.workers()), (seen, s.workers()))
            self.assertNotIn(s.proc.pid, seen)
            s.signal(signal.SIGTERM)
            self.assertEqual(s.wait(timeout=6 * SLOW), 0)

    def connections_on_two_workers(self, s):
        """Two keep-alive connections served by different workers."""
        first = connect(s.port, timeout=10 * SLOW)
        frd = Reader(first)
        p1 = pid_on(first, frd)
        first.sendall(get("/nap"))  # its worker sleeps in C: only the other one accepts
        self.wait_for(lambda: in_call(s, "napping"), what="the nap")
        second = connect(s.port, timeout=10 * SLOW)
        srd = Reader(second)
        p2 = pid_on(second, srd)
        self.assertEqual(frd.response().body, b"rested")
        self.assertIsNotNone(p1)
        self.assertIsNotNone(p2)
        self.assertNotEqual(p1, p2)
        return {p1: (first, frd), p2: (second, srd)}

    def test_kill_9_mid_download(self):
        data = os.urandom(BIG)
        s = self.server("workers = 2\n" + PID, files={"big.bin": data, "a.txt": "A"})
        self.wait_workers(s, 2)
        conns = self.connections_on_two_workers(s)
        (victim, (dl, _)), (survivor, (other, ord_)) = conns.items()
        dl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        dl.sendall(get("/big.bin"))
        got = dl.recv(65536)
        self.assertIn(b"200 OK", got)
        os.kill(victim, signal.SIGKILL)
        t = time.time()
        # a new worker within a second (timed before the download is read to its end:
        # what the dead worker's socket still holds can take a loaded machine a while)
        self.wait_for(lambda: set(s.workers()) - {victim, survivor}, timeout=1.0,
                      what="a new worker")
        self.assertLess(time.time() - t, 1.0 * SLOW)
        new = (set(s.workers()) - {victim, survivor}).pop()
        # the download ends short: its worker is gone
        dl.settimeout(5 * SLOW)
        while True:
            d = dl.recv(1 << 20)
            if not d:
                break
            got += d
        self.assertLess(len(got), BIG)
        self.assertEqual(len(s.workers()), 2)
        # the other worker's connection is untouched
        self.assertEqual(pid_on(other, ord_), survivor)
        other.sendall(get("/a.txt"))
        self.assertEqual(ord_.response().body, b"A")
        deadline = time.time() + 3 * SLOW
        while int(curl(s.url("/pid"))[2]) != new:
            self.assertLess(time.time(), deadline, "the new worker never answered")
        self.assertRegex(s.stderr(), r"worker \d \(pid %d\) was killed by signal 9 "
                         r"\(SIGKILL" % victim)

    def test_kill_9_the_only_worker(self):
        s = self.server("workers = 1\n" + PID, files={"a.txt": "A"})
        old = int(curl(s.url("/pid"))[2])
        os.kill(old, signal.SIGKILL)
        t = time.time()
        while True:
            status, _, body = curl(s.url("/a.txt"), timeout=2)
            if status == 200:
                break
            self.assertLess(time.time() - t, 1.0 * SLOW, "no answer within a second")
            time.sleep(0.02)
        self.assertLess(time.time() - t, 1.0 * SLOW)
        self.assertNotEqual(int(curl(s.url("/pid"))[2]), old)

    def test_stalled_worker_is_replaced(self):
        for workers in (1, 2):
            with self.subTest(workers=workers):
                self.stalled_worker_is_replaced(workers)

    def stalled_worker_is_replaced(self, workers):
        s = self.server("workers = %d\nlimits = { stall_timeout = 2 }\n" % workers + STUCK,
                        files={"a.txt": "A"})
        self.wait_workers(s, workers)
        before = set(s.workers())
        stuck = connect(s.port, timeout=10 * SLOW)
        stuck.sendall(get("/stuck"))
        t = time.time()
        self.wait_for(lambda: in_call(s, "stuck"), what="the worker to be stuck")
        if workers == 2:
            # the other worker serves meanwhile
            self.assertEqual(curl(s.url("/a.txt"), timeout=2)[2], b"A")
            self.assertLess(time.time() - t, 1.5 * SLOW)
        while status(s.url("/a.txt")) != 200 or not set(s.workers()) - before:
            self.assertLess(time.time() - t, 4 * SLOW, "not replaced within 4 s")
            time.sleep(0.05)
        self.assertLess(time.time() - t, 4 * SLOW)
        self.assertEqual(stuck.recv(100), b"")  # its connection was lost with it
        stuck.close()
        log = s.stderr()
        self.assertRegex(log, r"has not come back to its event loop for [\d.]+ s "
                         r"\(limits.stall_timeout = 2\), running route GET /stuck")
        self.assertIn("after it stalled; starting another", log)
        self.assertEqual(len(s.workers()), workers)
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait(timeout=6 * SLOW), 0)

    def test_short_stall_timeout_spares_an_idle_worker(self):
        # an idle worker beats every 0.25 s: no stall_timeout makes that a stall
        s = self.server("workers = 1\nlimits = { stall_timeout = 0.2 }\n" + PID)
        self.wait_workers(s, 1)
        pid = s.workers()[0]
        time.sleep(2)
        self.assertNotIn("has not come back", s.stderr())
        self.assertEqual(int(curl(s.url("/pid"))[2]), pid)

    def test_sigterm_while_a_worker_is_stuck(self):
        for workers in (1, 2):
            with self.subTest(workers=workers):
                s = self.server("workers = %d\nshutdown_timeout = 1\n" % workers + STUCK)
                stuck = connect(s.port, timeout=10)
                stuck.sendall(get("/stuck"))
                self.wait_for(lambda: in_call(s, "stuck"), what="the worker to be stuck")
                t = time.time()
                s.signal(signal.SIGTERM)
                self.assertEqual(s.wait(timeout=5 * SLOW), 1)
                self.assertLess(time.time() - t, 2.0 * SLOW)
                self.assertRegex(s.stderr(), r"did not finish within shutdown_timeout; killing "
                                 r"it and abandoning what it runs: route GET /stuck for "
                                 r"GET /stuck")
                self.assertEqual(s.workers(), [])
                stuck.close()

    def test_workers_go_when_the_master_is_killed(self):
        # kill -9 of the master: its workers finish what they serve and go soon after
        # shutdown_timeout, a stuck one included (no master is left to kill it)
        s = self.server("workers = 2\nshutdown_timeout = 1\n" + STUCK + PID)
        self.wait_workers(s, 2)
        workers = s.workers()
        self.addCleanup(kill_all, workers)  # what the test may leave behind
        stuck = connect(s.port, timeout=10 * SLOW)
        stuck.sendall(get("/stuck"))
        self.wait_for(lambda: in_call(s, "stuck"), what="the worker to be stuck")
        idle = connect(s.port)
        ird = Reader(idle)
        self.assertIn(pid_on(idle, ird), workers)  # the other worker, on keep-alive
        os.kill(s.proc.pid, signal.SIGKILL)
        s.wait(timeout=5)
        t = time.time()
        self.assertTrue(ird.closed(timeout=1))  # an idle keep-alive connection is closed
        while any(state(p) not in (None, "Z") for p in workers):
            self.assertLess(time.time() - t, 2.5 * SLOW, "a worker outlived its master")
            time.sleep(0.05)
        for c in (stuck, idle):
            c.close()

    def test_max_per_client_holds_across_workers(self):
        s = self.server("workers = 4\nkeepalive = { max_per_client = 3 }\n" + PID)
        self.wait_workers(s, 4)
        # three connections held, on at least two workers
        held = [c for c, _ in self.connections_on_two_workers(s).values()]
        c = connect(s.port)
        self.assertIsNotNone(pid_on(c, Reader(c)))
        held.append(c)
        for _ in range(8):  # over the cap whichever worker takes it
            c = connect(s.port)
            c.sendall(get("/pid"))
            self.assertEqual(Reader(c).response().status, 503)
            c.close()
        held.pop().close()
        self.wait_for(lambda: curl(s.url("/pid"))[0] == 200, what="a place again")
        for c in held:
            c.close()

    def test_max_connections_holds_across_workers(self):
        s = self.server("workers = 2\nmax_connections = 2\n" + PID)
        self.wait_workers(s, 2)
        conns = self.connections_on_two_workers(s)
        for _ in range(6):
            c = connect(s.port)
            c.sendall(get("/pid"))
            self.assertEqual(Reader(c).response().status, 503)
            c.close()
        for c, _ in conns.values():
            c.close()

    def test_max_connections_above_the_start_size(self):
        # the shared region was sized at start: a reload cannot raise the cap, and
        # the refusals say which cap holds
        s = self.server("workers = 2\nmax_connections = 2\n" + PID)
        s.rewrite_config("workers = 2\nmax_connections = 10\n" + PID +
                         'route("GET", "/v", function() return "two" end)\n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded" in s.stderr(), what="the reload")
        self.assertIn("max_connections above 2 and limits.shared_mb change only on restart",
                      s.stderr())
        conns = self.connections_on_two_workers(s)
        for c, rd in conns.values():  # both workers have reloaded: /v is the new file's
            def reloaded():
                c.sendall(get("/v"))
                return rd.response().body == b"two"
            self.wait_for(reloaded, what="the reload in each worker")
        for _ in range(4):
            c = connect(s.port)
            c.sendall(get("/pid"))
            self.assertEqual(Reader(c).response().status, 503)
            c.close()
        self.wait_for(lambda: "refused" in s.stderr(), what="the refusal")
        self.assertNotIn("over max_connections = 10", s.stderr())
        self.assertIn("over max_connections = 2)", s.stderr())
        for c, _ in conns.values():
            c.close()

    def test_a_dead_workers_connections_are_uncounted(self):
        s = self.server("workers = 2\nkeepalive = { max_per_client = 2 }\n" + PID)
        self.wait_workers(s, 2)
        conns = self.connections_on_two_workers(s)
        c = connect(s.port)
        c.sendall(get("/pid"))
        self.assertEqual(Reader(c).response().status, 503)
        victim = next(iter(conns))
        os.kill(victim, signal.SIGKILL)
        # the dead worker's connection no longer counts: one place is free again
        self.wait_for(lambda: status(s.url("/pid")) == 200, timeout=2,
                      what="the dead worker's place")

    def test_reload_while_paused_and_downloading(self):
        data = os.urandom(BIG)
        slow = '''
version = "%s"
local v = version
route("GET", "/slow", function(req)
  shared.set("started", v)
  local x = 0
  for i = 1, 3e7 do x = x + i %% 7 end  -- pauses many times for others
  return v
end)
route("GET", "/v", function(req) return v end)
route("GET", "/started", function(req) return tostring(shared.get("started")) end)
limits = { handler_timeout_ms = 60000 }
'''
        s = self.server(slow % "one", files={"big.bin": data})
        self.assertEqual(curl(s.url("/v"))[2], b"one")
        kept = connect(s.port, timeout=30 * SLOW)
        krd = Reader(kept)
        kept.sendall(get("/v"))
        self.assertEqual(krd.response().body, b"one")
        dl = connect(s.port, timeout=10 * SLOW)
        dl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        dl.sendall(get("/big.bin"))
        got = dl.recv(65536)
        paused = connect(s.port, timeout=60 * SLOW)
        paused.sendall(get("/slow"))
        # it has begun on the old file once /started answers (between its slices)
        self.wait_for(lambda: curl(s.url("/started"))[2] == b"one", what="/slow to start")
        s.rewrite_config(slow % "two")
        s.signal(signal.SIGHUP)
        t = time.time()
        # a new request on a connection opened before sees the new file within a second
        while True:
            kept.sendall(get("/v"))
            if krd.response().body == b"two":
                break
            self.assertLess(time.time() - t, 1.0 * SLOW + 3, "no switch")  # + the slow one
            time.sleep(0.05)
        # the paused handler finishes on the configuration it started with
        self.assertEqual(Reader(paused).response().body, b"one")
        while len(got) < BIG + 100:
            d = dl.recv(1 << 20)
            if not d:
                break
            got += d
        self.assertEqual(got.partition(b"\r\n\r\n")[2], data)
        for c in (kept, dl, paused):
            c.close()

    def test_reload_reaches_every_worker(self):
        s = self.server('workers = 3\nroute("GET", "/v", function() return "one" end)\n')
        self.wait_workers(s, 3)
        conns = []
        for _ in range(9):  # connections opened before, across the workers
            c = connect(s.port)
            c.sendall(get("/v"))
            rd = Reader(c)
            self.assertEqual(rd.response().body, b"one")
            conns.append((c, rd))
        s.rewrite_config('workers = 3\nroute("GET", "/v", function() return "two" end)\n')
        s.signal(signal.SIGHUP)
        for c, rd in conns:  # every connection's worker comes to the new file
            def reloaded():
                c.sendall(get("/v"))
                return rd.response().body == b"two"
            self.wait_for(reloaded, what="the reload in every worker")
            c.close()

    def test_reload_lets_go_of_the_old_access_log(self):
        # after a reload no worker holds the file the old configuration logged to
        s = self.server('workers = 2\naccess_log = "one.log"\n', files={"a.txt": "A"})
        self.wait_workers(s, 2)
        one = os.path.join(s.dir, "one.log")
        holds = lambda pid: one in open_files(pid)
        self.assertTrue(all(holds(p) for p in s.workers()))
        s.rewrite_config('workers = 2\naccess_log = "two.log"\n')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: not any(holds(p) for p in s.workers()),
                      what="the workers to close one.log")
        self.assertEqual(curl(s.url("/a.txt"))[0], 200)
        self.wait_for(lambda: "GET /a.txt" in open(os.path.join(s.dir, "two.log")).read(),
                      what="the line in two.log")

    def test_reload_to_an_error_log_that_cannot_open_is_refused(self):
        # as at start: an error_log that cannot be opened fails the reload
        conf = 'workers = 2\nerror_log = "%s"\nroute("GET", "/v", function() return "%s" end)\n'
        s = self.server(conf % ("error.log", "one"))
        self.wait_workers(s, 2)
        s.rewrite_config(conf % ("no/such/folder/error.log", "two"))
        s.signal(signal.SIGHUP)
        log = os.path.join(s.dir, "error.log")
        self.wait_for(lambda: "reload" in open(log).read(), what="the reload line")
        self.assertRegex(open(log).read(), r"reload failed, keeping the running "
                         r"configuration: error_log .*no/such/folder/error.log: No such file")
        for _ in range(6):
            self.assertEqual(curl(s.url("/v"))[2], b"one")

    def test_dev_does_not_reload_while_stopping(self):
        # as SIGHUP: once stopping, a changed Lua file is no reason to reload
        s = self.server("shutdown_timeout = 3\n", args=("--dev",), files={"big.bin": BIG * b"x"})
        dl = connect(s.port, timeout=10 * SLOW)
        dl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        dl.sendall(get("/big.bin"))
        dl.recv(1000)  # a download in flight keeps the server stopping for a while
        s.signal(signal.SIGTERM)
        self.wait_for(lambda: "stopping" in s.stderr(), what="the stop")
        s.rewrite_config("shutdown_timeout = 3\n-- changed\n")
        time.sleep(1.0)  # the watcher looks every 0.25 s
        dl.close()
        self.assertEqual(s.wait(timeout=6 * SLOW), 0)
        self.assertNotIn("reload", s.stderr().partition("stopping")[2])

    def test_worker_dying_at_start_backs_off(self):
        s = self.server("workers = 1\n", files={"a.txt": "A"})
        killed = set()
        t = time.time()
        while time.time() - t < 4.0:  # every new worker dies as soon as it is seen
            for pid in s.workers():
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.01)
        # restarted at once three times, then after 1 s, 2 s, ...: not dozens
        self.assertLessEqual(len(killed), 7, "restarted in a tight loop")
        self.assertGreaterEqual(len(killed), 4)
        self.assertRegex(s.stderr(), r"worker 1 died \d+ times in a row within 1 s of "
                         r"starting; next start in \d+ s")
        # left alone, it comes back
        self.wait_for(lambda: status(s.url("/a.txt")) == 200, timeout=40,
                      what="a worker again")

    def test_sigusr1_reopens_logs(self):
        s = self.server('workers = 2\naccess_log = "access.log"\nerror_log = "error.log"\n',
                        files={"a.txt": "A"})
        acc, err = os.path.join(s.dir, "access.log"), os.path.join(s.dir, "error.log")
        self.assertEqual(curl(s.url("/a.txt"))[0], 200)
        os.rename(acc, acc + ".1")
        os.rename(err, err + ".1")
        s.signal(signal.SIGUSR1)
        self.wait_for(lambda: os.path.exists(acc) and os.path.exists(err), what="new files")
        for _ in range(6):
            self.assertEqual(curl(s.url("/a.txt"))[0], 200)
        with open(acc) as f:
            self.assertEqual(f.read().count('"GET /a.txt HTTP/1.1" 200'), 6)
        s.signal(signal.SIGHUP)  # something for the error log
        self.wait_for(lambda: "reloaded" in open(err).read(), what="the reload line")
        with open(acc + ".1") as f:
            self.assertEqual(f.read().count("GET /a.txt"), 1)

    def test_worker_started_after_sigusr1_logs_to_the_new_file(self):
        s = self.server('workers = 1\naccess_log = "access.log"\nerror_log = "error.log"\n' +
                        PID, files={"a.txt": "A"})
        acc = os.path.join(s.dir, "access.log")
        self.assertEqual(curl(s.url("/a.txt"))[0], 200)
        os.rename(acc, acc + ".1")
        s.signal(signal.SIGUSR1)
        self.wait_for(lambda: os.path.exists(acc), what="a new access.log")
        old = s.workers()[0]
        os.kill(old, signal.SIGKILL)
        self.wait_for(lambda: status(s.url("/pid")) == 200 and s.workers() != [old],
                      what="a new worker")
        self.assertEqual(curl(s.url("/a.txt"))[0], 200)
        with open(acc + ".1") as f:
            self.assertEqual(f.read().count("GET /a.txt"), 1)
        self.wait_for(lambda: open(acc).read().count("GET /a.txt") == 1,
                      what="the new worker's line in the new access.log")

    def test_log_lines_stay_whole_across_workers(self):
        s = self.server('workers = 4\naccess_log = "access.log"\n' + '''
route("GET", "/w", function(req)
  log("warn", "line from a handler " .. ("x"):rep(300))
  return "ok"
end)
''')
        self.wait_workers(s, 4)
        n, threads = 200, 8

        def client():
            c = connect(s.port)
            rd = Reader(c)
            for _ in range(n // threads):
                c.sendall(get("/w", extra=b"User-Agent: " + b"u" * 500 + b"\r\n"))
                rd.response()
            c.close()

        ts = [threading.Thread(target=client) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30 * SLOW)
        access = open(os.path.join(s.dir, "access.log")).read().splitlines()
        self.assertEqual(len(access), n)
        for line in access:
            self.assertRegex(line, r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /w HTTP/1\.1" 200 2 '
                             r'"-" "u{500}"$')
        errors = [line for line in s.stderr().splitlines() if "line from a handler" in line]
        self.assertEqual(len(errors), n)
        for line in errors:
            self.assertTrue(line.endswith("x" * 300), line[-80:])

    def test_worker_back_in_time_is_not_killed(self):
        # asked what it runs a moment past stall_timeout, the worker comes back before
        # the next look: it lives on, and its request is answered
        if VALGRIND:  # the margin is 0.15 s of the worker's own time around the nap
            self.skipTest("too tight a margin for a worker 30 times slower")
        s = self.server("workers = 1\nunsafe_libs = true\nlimits = { stall_timeout = 2 }\n" +
                        PID + '''
route("GET", "/long-nap", function(req) os.execute("sleep 2.1") return "rested" end)
''')
        before = int(curl(s.url("/pid"))[2])
        t = time.time()
        self.assertEqual(curl(s.url("/long-nap"), timeout=10 * SLOW)[:3:2], (200, b"rested"))
        self.assertGreater(time.time() - t, 2.0)  # past stall_timeout (PID's /nap is 1 s)
        time.sleep(0.6)
        self.assertEqual(int(curl(s.url("/pid"))[2]), before)
        self.assertNotIn("has not come back", s.stderr())
