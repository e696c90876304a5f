#!/usr/bin/env python3
"""Two builds in turns (A/B/A/B...), for what instruction and system-call counts
(callgrind.py) cannot decide: the worker's CPU time per request under wrk.

Each build runs with workers = 1 pinned to CPU 1, wrk pinned to CPU 0 (-t1), on
127.0.0.1; a round is --seconds of wrk against each build in turn, and the figure is
each build's median over the rounds (this machine is shared: single runs drift).

    python3 tests/bench/abab.py A/luahttpd B/luahttpd [--path /small.html]
        [--close] [-H "Accept-Encoding: gzip"] [--connections 50] [--seconds 3]
        [--rounds 5]

--close sends "Connection: close": one request per connection, like ab without -k.
-H adds a request header (repeatable), as wrk's -H does.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import cpu_ns, free_port, make_site, wait_port  # noqa: E402
from callgrind import CONFIG  # noqa: E402
from bench import LUAHTTPD_ROUTES  # noqa: E402


def worker_pid(master):
    for _ in range(50):
        try:
            with open("/proc/%d/task/%d/children" % (master, master)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("no worker")


def start(binary, www, d):
    port = free_port()
    sub = tempfile.mkdtemp(dir=d)
    conf = os.path.join(sub, "config.lua")
    with open(conf, "w") as f:
        f.write(CONFIG.format(www=www, port=port, dir=sub, routes=LUAHTTPD_ROUTES))
    proc = subprocess.Popen(["taskset", "-c", "1", binary, "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port, proc):
        proc.kill()
        raise RuntimeError("%s did not start" % binary)
    return proc, port, worker_pid(proc.pid)


def one(port, wpid, args):
    argv = ["taskset", "-c", "0", "wrk", "-t1", "-c%d" % args.connections,
            "-d%ds" % args.seconds]
    if args.close:
        argv += ["-H", "Connection: close"]
    for h in args.header or []:
        argv += ["-H", h]
    argv.append("http://127.0.0.1:%d%s" % (port, args.path))
    before = cpu_ns(wpid)
    out = subprocess.run(argv, capture_output=True, text=True,
                         timeout=args.seconds + 30).stdout
    used = cpu_ns(wpid) - before
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return used / 1e3 / max(n, 1), n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--path", default="/small.html")
    ap.add_argument("--close", action="store_true")
    ap.add_argument("-H", "--header", action="append", metavar="HEADER")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="lh-abab-")
    servers = []
    try:
        www = make_site(d)
        for b in (args.a, args.b):
            servers.append(start(os.path.abspath(b), www, d))
        us = {0: [], 1: []}
        for r in range(args.rounds):
            for i, (_, port, wpid) in enumerate(servers):
                per, n = one(port, wpid, args)
                us[i].append(per)
                print("round %d %s: %.2f us/req (%d requests)" % (r + 1, "AB"[i], per, n),
                      flush=True)
        ma, mb = statistics.median(us[0]), statistics.median(us[1])
        print("median us/req: A %.2f  B %.2f  (B/A %.3f)" % (ma, mb, mb / ma))
    finally:
        for proc, _, _ in servers:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
