#!/usr/bin/env python3
"""Instructions and system calls per request: the steady figures for deciding whether
a speed trick pays, on a machine too busy for wall-clock timing.

For each binary and workload the server runs with workers = 1 (access log off,
keep-alive without a request limit) and is driven by a bounded client on 127.0.0.1,
twice: N1 and N2 requests. What differs between the two runs is the requests, so
(cost(N2) - cost(N1)) / (N2 - N1) is the cost of one request, start-up and shutdown
cancelled out. The cost is counted in the worker process only (the master's own
timers are not a request's):

  Ir/req   user-space instructions, valgrind --tool=callgrind --trace-children=yes,
           from the worker's callgrind.out.<pid>
  sys/req  system calls, strace -f -ff, from the worker's file, by name

    LUAHTTPD=./luahttpd python3 tests/bench/callgrind.py [options] [BINARY ...]

    --workload NAME   only this one (repeatable): see WORKLOADS below
    --n1 N --n2 N     requests in the two runs (default 500 and 2500)
    -c N              connections at once (default 1: one request after another)
    --no-ir / --no-syscalls   skip one of the two measures
    --functions K     also the K functions whose inclusive Ir per request is largest
    --timeout S       give up a run after S seconds (default 300)

To compare a trick with its removal, build both versions (e.g. `git worktree add`
the commit before, then `make`) and pass both binaries; they run one after the other
on the same site. Under valgrind 3.19 openat2 answers ENOSYS, so files are opened
the slower, checked way (open_checked in static.c); --functions shows its share.
"""

import argparse
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import LUAHTTPD_ROUTES, OUTBOUND_ROUTES, free_port, make_site  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

# name, request target, one request per connection (like ab without -k)[, headers]
WORKLOADS = [
    ("static 615 B", "/small.html", False),
    ("static 1 MiB", "/big.bin", False),
    # make bench's 100 KiB script, answered from the worker's cache of coded copies
    # (a response without Content-Encoding: gzip stops the run)
    ("gzip 100 KiB js", "/bench.js", False, ("Accept-Encoding: gzip",)),
    ("lua json", "/api/hello?n=42", False),
    ("404", "/missing.html", False),
    ("shared incr", "/api/incr", False),
    ("sql row", "/api/row?id=7", False),
    ("conn 615 B", "/small.html", True),
    ("conn 404", "/missing.html", True),
    # the outbound ones (make bench's routes): a second luahttpd, not measured, serves
    # the file as the backend
    ("proxy 615 B", "/p/small.html", False),
    ("http.get 615 B", "/fetch", False),
]

CONFIG = """
docroot = "{www}"
port = {port}
access_log = false
error_log = "{dir}/error.log"
workers = 1
keepalive = {{ timeout = 120, max_requests = 1000000, max_per_client = 30000 }}
max_connections = 30000
{routes}
"""


class Slot:
    """One client connection: sends a request, reads its response whole."""

    def __init__(self, port, request, per_conn, coding=None):
        self.port, self.request, self.per_conn = port, request, per_conn
        self.coding = coding  # the Content-Encoding every response must have
        self.sock = None
        self.buf = bytearray()
        self.need = None

    def open(self, sel):
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel.register(self.sock, selectors.EVENT_READ, self)

    def close(self, sel):
        sel.unregister(self.sock)
        self.sock.close()
        self.sock = None

    def send(self, sel):
        if self.sock is None:
            self.open(sel)
        self.buf.clear()
        self.need = None
        self.sock.sendall(self.request)

    def on_readable(self):
        """1: a response is complete; 0: not yet; raises on a broken response."""
        data = self.sock.recv(1 << 20)
        if data:
            self.buf += data
        if self.need is None:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end]).decode("latin-1")
                status = int(head.split(" ", 2)[1])
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                if not m or status not in (200, 404):
                    raise RuntimeError("unexpected response: %r" % head[:200])
                if self.coding and not re.search(r"(?im)^content-encoding:\s*%s\s*$" %
                                                 self.coding, head):
                    raise RuntimeError("not %s-coded: %r" % (self.coding, head[:300]))
                self.need = end + 4 + int(m.group(1))
        if self.per_conn:
            if data:
                return 0
            if self.need is None or len(self.buf) != self.need:
                raise RuntimeError("connection closed early")
            return 1
        if not data:
            raise RuntimeError("connection closed")
        return 1 if self.need is not None and len(self.buf) >= self.need else 0


def drive(port, target, per_conn, n, conc, deadline, headers=()):
    """n requests for target, conc at a time, with the extra request headers given;
    every response is read whole."""
    extra = "".join(h + "\r\n" for h in headers)
    if per_conn:  # what ab sends without -k
        req = ("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: ApacheBench/2.3\r\n"
               "Accept: */*\r\n%s\r\n" % (target, extra)).encode()
    else:  # what wrk sends
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" %
               (target, port, extra)).encode()
    coding = "gzip" if any(h.lower().startswith("accept-encoding:") and "gzip" in h
                           for h in headers) else None
    sel = selectors.DefaultSelector()
    slots = [Slot(port, req, per_conn, coding) for _ in range(min(conc, n))]
    sent = done = 0
    for s in slots:
        s.send(sel)
        sent += 1
    while done < n:
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %d of %d requests" % (done, n))
        for key, _ in sel.select(timeout=1.0):
            s = key.data
            if not s.on_readable():
                continue
            done += 1
            if per_conn:
                s.close(sel)
            if sent < n:
                s.send(sel)
                sent += 1
            elif s.sock is not None:
                s.close(sel)
    for s in slots:
        if s.sock is not None:
            s.close(sel)
    sel.close()


def wait_port(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def stop(proc, tool, timeout=120):
    """SIGTERM to the master: valgrind runs in its process, strace is its parent."""
    if proc.poll() is None:
        pid = proc.pid
        if tool == "strace":
            try:
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                    pid = int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
        os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def one_run(tool, binary, www, workload, n, conc, timeout, scratch):
    """Run the server under tool ("callgrind" or "strace") for n requests; returns the
    path of the worker's output file. A run that could not connect (the port taken by
    someone else between free_port and the server's bind) is tried once more."""
    try:
        return try_run(tool, binary, www, workload, n, conc, timeout, scratch)
    except ConnectionError:
        return try_run(tool, binary, www, workload, n, conc, timeout, scratch)


def try_run(tool, binary, www, workload, n, conc, timeout, scratch):
    name, target, per_conn = workload[:3]
    headers = workload[3] if len(workload) > 3 else ()
    d = tempfile.mkdtemp(dir=scratch)
    port = free_port()
    conf = os.path.join(d, "config.lua")
    routes = LUAHTTPD_ROUTES
    backend = None
    if target.startswith(("/p/", "/fetch")):
        bdir = tempfile.mkdtemp(dir=scratch)
        bport = free_port()
        bconf = os.path.join(bdir, "config.lua")
        with open(bconf, "w") as f:
            f.write(CONFIG.format(www=www, port=bport, dir=bdir, routes=""))
        backend = subprocess.Popen([binary, "-c", bconf], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(bport, backend, time.monotonic() + 30)
        routes += "\n" + OUTBOUND_ROUTES.format(backend=bport)
    with open(conf, "w") as f:
        f.write(CONFIG.format(www=www, port=port, dir=d, routes=routes))
    if tool == "callgrind":
        argv = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                "--callgrind-out-file=%s/out.%%p" % d]
    else:
        argv = ["strace", "-f", "-ff", "-o", "%s/out" % d]
    proc = subprocess.Popen(argv + [binary, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        wait_port(port, proc, time.monotonic() + 60)
        drive(port, target, per_conn, n, conc, deadline, headers)
    finally:
        stop(proc, tool)
        if backend:
            stop(backend, None)
    outs = [f for f in os.listdir(d) if f.startswith("out.")]
    if tool == "callgrind":
        workers = [f for f in outs if f != "out.%d" % proc.pid]
    else:  # the master's file starts with its execve
        workers = []
        for f in outs:
            with open(os.path.join(d, f)) as fh:
                if not fh.readline().startswith("execve("):
                    workers.append(f)
    if len(workers) != 1:
        raise RuntimeError("expected one worker's file, found %s" % workers)
    return os.path.join(d, workers[0])


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in %s" % path)


def inclusive(path):
    """Inclusive Ir by function ("function [object]"), from callgrind_annotate."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                          "--auto=no", path],
                         capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([\d.\s]+%\)\s+\S*?:(.*?) \[(.*)\]$", line)
        if m:
            fn = "%s [%s]" % (m.group(2), os.path.basename(m.group(3)))
            costs[fn] = costs.get(fn, 0) + int(m.group(1).replace(",", ""))
    return costs


def syscalls(path):
    counts = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"([a-z_0-9]+)\(", line)
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def measure(binary, www, workload, args, scratch):
    dn = args.n2 - args.n1
    res = {}
    if args.ir:
        f1 = one_run("callgrind", binary, www, workload, args.n1, args.c, args.timeout, scratch)
        f2 = one_run("callgrind", binary, www, workload, args.n2, args.c, args.timeout, scratch)
        res["ir"] = (total_ir(f2) - total_ir(f1)) / dn
        if args.functions:
            a, b = inclusive(f1), inclusive(f2)
            per = {fn: (b.get(fn, 0) - a.get(fn, 0)) / dn for fn in set(a) | set(b)}
            res["fns"] = sorted(per.items(), key=lambda kv: -kv[1])[:args.functions]
    if args.syscalls:
        s1 = syscalls(one_run("strace", binary, www, workload, args.n1, args.c, args.timeout,
                              scratch))
        s2 = syscalls(one_run("strace", binary, www, workload, args.n2, args.c, args.timeout,
                              scratch))
        per = {k: (s2.get(k, 0) - s1.get(k, 0)) / dn for k in set(s1) | set(s2)}
        res["sys"] = {k: v for k, v in per.items() if abs(v) >= 0.005}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binaries", nargs="*")
    ap.add_argument("--workload", action="append")
    ap.add_argument("--n1", type=int, default=500)
    ap.add_argument("--n2", type=int, default=2500)
    ap.add_argument("-c", type=int, default=1)
    ap.add_argument("--no-ir", dest="ir", action="store_false")
    ap.add_argument("--no-syscalls", dest="syscalls", action="store_false")
    ap.add_argument("--functions", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    binaries = args.binaries or [os.environ.get("LUAHTTPD", os.path.join(REPO, "luahttpd"))]
    names = [w[0] for w in WORKLOADS]
    for w in args.workload or []:
        if w not in names:
            ap.error("unknown workload %r (one of: %s)" % (w, ", ".join(names)))
    workloads = [w for w in WORKLOADS if not args.workload or w[0] in args.workload]
    for tool in ["valgrind"] * args.ir + ["strace"] * args.syscalls:
        if not shutil.which(tool):
            sys.exit("%s is not installed" % tool)
    scratch = tempfile.mkdtemp(prefix="lh-callgrind-")
    try:
        www = make_site(scratch)
        print("n1=%d n2=%d, %d connection(s) at once" % (args.n1, args.n2, args.c))
        for w in workloads:
            for b in binaries:
                r = measure(os.path.abspath(b), www, w, args, scratch)
                line = "%-15s %-40s" % (w[0], b)
                if "ir" in r:
                    line += " Ir/req %8.0f" % r["ir"]
                if "sys" in r:
                    line += "  sys/req %5.2f  (%s)" % (
                        sum(r["sys"].values()),
                        ", ".join("%s %.2f" % kv for kv in sorted(r["sys"].items())))
                print(line, flush=True)
                for fn, ir in r.get("fns", []):
                    print("    %8.0f  %s" % (ir, fn))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
