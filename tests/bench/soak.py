#!/usr/bin/env python3
"""make soak: one million requests at 1000 concurrent connections, mixed static,
Lua and 404, against luahttpd with workers = 2 on 127.0.0.1. Reports errors and the
server's RSS after the first 100,000 requests and after all of them (the goal: zero
errors and at most 5 % growth); then 10,000 idle keep-alive connections are held,
closed by the idle timeout, and the RSS after that is reported too (the goal: at
least two thirds of what they took given back). The RSS is that of the whole process
tree, the master and its workers (bench.py's rss_bytes): the connections and the Lua
states are the workers'.

    LUAHTTPD=./luahttpd python3 tests/bench/soak.py [--requests N]
"""

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bench import free_port, rss_bytes as rss

HERE = os.path.dirname(os.path.abspath(__file__))
LUAHTTPD = os.path.abspath(os.environ.get("LUAHTTPD", os.path.join(HERE, "..", "..", "luahttpd")))

CONFIG = """
docroot = "{www}"
port = {port}
workers = 2
access_log = false
error_log = "{dir}/error.log"
keepalive = {{ timeout = 2, max_per_client = 20000 }}
max_connections = 20000
route("GET", "/api/hello", function(req)
  return {{ hello = "world", n = tonumber(req.query.n) }}
end)
"""

# Each wrk thread cycles through the three kinds of request and counts any answer
# that is not the one expected.
WRK_SCRIPT = """
local paths = { "/small.html", "/api/hello?n=7", "/missing.html" }
local want = { 200, 200, 404 }
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  sent = 0; bad = 0
end
function request()
  sent = sent + 1
  return wrk.format("GET", paths[(sent - 1) % 3 + 1])
end
function response(status, headers, body)
  -- responses arrive in order on a connection, but connections interleave: judge
  -- by what the body says instead of by position
  local ok = (status == 200 and (#body == 615 or body:find('"hello"'))) or
             (status == 404)
  if not ok then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do total_bad = total_bad + t:get("bad") end
  io.write(string.format("wrong answers: %d\\n", total_bad))
end
"""


def run_wrk(port, script, seconds, threads=2, conns=1000):
    out = subprocess.run(
        ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "-s", script,
         "http://127.0.0.1:%d/" % port],
        capture_output=True, text=True, timeout=seconds + 60).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = int(re.search(r"wrong answers: (\d+)", out).group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock = sum(int(x) for x in m.groups()) if m else 0
    return n, bad, sock


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--idle", type=int, default=10000)
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = tempfile.mkdtemp(prefix="lh-soak-")
    try:
        www = os.path.join(d, "www")
        os.mkdir(www)
        with open(os.path.join(www, "small.html"), "wb") as f:
            f.write(b"x" * 615)
        port = free_port()
        cfg = os.path.join(d, "config.lua")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(www=www, port=port, dir=d))
        script = os.path.join(d, "mix.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT)
        srv = subprocess.Popen([LUAHTTPD, "-c", cfg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            # a first run of about a tenth, then runs until the total is reached
            # (bounded: at most 40 runs of 5 s)
            n1, errors, sock = run_wrk(port, script, 2)
            errors += sock
            rss1 = rss(srv.pid)
            total = n1
            for _ in range(40):
                if total >= args.requests:
                    break
                n, bad, sock = run_wrk(port, script, 5)
                total += n
                errors += bad + sock
            rss2 = rss(srv.pid)
            print("soak: %d requests at 1000 connections, workers = 2: %d errors" %
                  (total, errors))
            print("soak: RSS %.1f MiB after %d requests, %.1f MiB after %d (%+.1f %%)" %
                  (rss1 / 2**20, n1, rss2 / 2**20, total, 100.0 * (rss2 - rss1) / rss1))
            idle = min(args.idle, hard - 200)
            conns = []
            for _ in range(idle):
                c = socket.create_connection(("127.0.0.1", port), timeout=10)
                c.sendall(b"GET /small.html HTTP/1.1\r\nHost: s\r\n\r\n")
                conns.append(c)
            for c in conns:
                c.recv(4096)
            held = rss(srv.pid)
            time.sleep(3.0)  # keepalive.timeout = 2: the server closes them all
            closed = sum(1 for c in conns if c.recv(1) == b"")
            time.sleep(1.0)
            after = rss(srv.pid)
            for c in conns:
                c.close()
            print("soak: %d idle keep-alive connections: RSS %.1f MiB held, %.1f MiB after "
                  "the idle timeout closed %d of them" %
                  (idle, held / 2**20, after / 2**20, closed))
            # memory returns: at most a third of what the idle connections took stays
            returned = after - rss2 <= (held - rss2) / 3
            ok = errors == 0 and rss2 <= rss1 * 1.05 and closed == idle and returned
            print("soak: %s" % ("OK" if ok else "FAILED"))
            return 0 if ok else 1
        finally:
            srv.terminate()
            srv.wait(timeout=10)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
