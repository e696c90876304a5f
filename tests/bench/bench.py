#!/usr/bin/env python3
"""make bench: luahttpd side by side with nginx + lua-nginx-module and lighttpd +
mod_magnet, on this machine, in one run.

Each server gets the same docroot and an equivalent Lua handler per workload (each
reads n from the query string and encodes with lua-cjson), is configured as its own
documentation recommends for production, runs one worker pinned to CPU 1 while wrk
runs pinned to CPU 0, and is measured by its own CPU time per request: the time of
the server's whole process tree (the process, its descendants, all their threads,
from /proc/PID/schedstat), so that a master with forked workers counts in full. On
two cores wrk is often the bottleneck, so requests per second alone cannot rank
servers. The "gzip 100 KiB js" workload asks for a script with Accept-Encoding: gzip:
nginx compresses it anew for every request (gzip on, level 1), lighttpd's mod_deflate
and luahttpd compress it once and keep the copy; each server's answer is checked to
decode to the file before it is measured. The servers take turns, workload by
workload, for a few rounds, and each figure is the median of its rounds: this shared
machine drifts by 10-20 % over minutes, and taking turns spreads that over every
server alike. The outbound workloads ("proxy 615 B": luahttpd's proxy(), nginx's
proxy_pass to an upstream with keepalive 32, lighttpd's mod_proxy; "http.get 615 B":
a Lua handler that returns the body of one http.get, against nginx's
ngx.location.capture of an internal proxy_pass location) all forward to one backend,
an nginx of their own pinned to CPU 0 beside wrk, and count only the front's CPU;
the connections each front opens to the backend are counted too. A last table runs
luahttpd and nginx with two workers each, unpinned beside wrk. Only 127.0.0.1 is used and every run is bounded in time.

    LUAHTTPD=./luahttpd python3 tests/bench/bench.py [--seconds N] [--rounds N]
"""

import argparse
import gzip
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
LUAHTTPD = os.path.abspath(os.environ.get("LUAHTTPD", os.path.join(REPO, "luahttpd")))

WORKLOADS = [
    # name, path, expected status[, request headers]
    ("static 615 B", "/small.html", 200),
    ("static 1 MiB", "/big.bin", 200),
    # a 100 KiB script (bench_js) to a client that takes gzip: every server must answer
    # it gzip-coded (check_gzip)
    ("gzip 100 KiB js", "/bench.js", 200, ("Accept-Encoding: gzip",)),
    ("lua json", "/api/hello?n=42", 200),
    ("lua capture", "/api/echo/12345", 200),
    ("404", "/missing.html", 404),
    ("shared incr", "/api/incr", 200),
    ("sql row", "/api/row?id=7", 200),
    # outbound HTTP: the front asks a backend (an nginx of its own serving the docroot,
    # the same for every front, see BACKEND_CONFIG) for small.html over pooled
    # keep-alive connections. Only the front's CPU is measured.
    ("proxy 615 B", "/p/small.html", 200),
    ("http.get 615 B", "/fetch", 200),
]
GZIP_WORKLOAD = "gzip 100 KiB js"
# the workloads that need the backend (left out when nginx is not installed)
BACKEND_WORKLOADS = ("proxy 615 B", "http.get 615 B")


def headers_of(workload):
    """The request headers a WORKLOADS entry sends (none but wrk's own unless given)."""
    return workload[3] if len(workload) > 3 else ()


# Workloads not every server can run: lighttpd's mod_magnet has no store that its
# workers share, and neither peer has SQL built in.
ONLY = {"shared incr": ("luahttpd", "nginx"), "sql row": ("luahttpd",),
        "http.get 615 B": ("luahttpd", "nginx")}
# lighttpd's mod_magnet has no HTTP client, so it sits out "http.get 615 B"; it runs
# "proxy 615 B" with mod_proxy, which Debian's lighttpd has built in.
LIGHTTPD_PROXY = os.path.exists("/usr/lib/lighttpd/mod_proxy.so")
if not LIGHTTPD_PROXY:
    ONLY["proxy 615 B"] = ("luahttpd", "nginx")

# lighttpd compresses with mod_deflate, a Debian package of its own
# (lighttpd-mod-deflate, which install-deps bench brings); without it lighttpd sits
# the gzip workload out.
LIGHTTPD_DEFLATE = os.path.exists("/usr/lib/lighttpd/mod_deflate.so")
if not LIGHTTPD_DEFLATE:
    ONLY[GZIP_WORKLOAD] = ("luahttpd", "nginx")

# The Lua JSON handlers, the same in every luahttpd config the bench scripts write
# (inserted with {routes}: no braces doubled here).
LUAHTTPD_ROUTES = """
route("GET", "/api/hello", function(req)
  return { hello = "world", n = tonumber(req.query.n) }
end)
route("GET", "/api/echo/:id", function(req)
  return { id = req.params.id }
end)
-- (only where the binary has shared and sql, so that abab.py can run older ones)
if shared and sql then
  route("GET", "/api/incr", function(req)
    return { n = shared.incr("hits", 1) }
  end)
  -- a table of 1,000 rows in bench.db beside the config file, read by primary key
  local db = sql.open("bench.db")
  db:exec("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)")
  db:tx(function()
    for i = 1, 1000 do
      db:exec("INSERT OR REPLACE INTO items (id, name) VALUES (?, ?)", i, "item " .. i)
    end
  end)
  route("GET", "/api/row", function(req)
    return db:row("SELECT id, name FROM items WHERE id = ?", tonumber(req.query.id))
  end)
end
"""

LUAHTTPD_CONFIG = """
docroot = "{www}"
port = {port}
access_log = false
error_log = "{dir}/luahttpd-error.log"
workers = {workers}
keepalive = {{ timeout = 120, max_per_client = 30000 }}
max_connections = 30000
{routes}
-- only for the workers=2 / workers=1 figure: ~1.5 ms of Lua per request here
route("GET", "/api/work", function(req)
  local x = 0
  for i = 1, 30000 do x = x + math.sqrt(i) end
  return {{ x = x }}
end)
-- the outbound workloads (backend: an nginx on 127.0.0.1:{backend})
{outbound}"""

# The outbound workloads' routes (callgrind.py uses them too), {backend} the port.
OUTBOUND_ROUTES = """route("*", "/p/*", proxy("http://127.0.0.1:{backend}"))
route("GET", "/fetch", function(req)
  local res, err = http.get("http://127.0.0.1:{backend}/small.html")
  if not res or res.status ~= 200 then return 502, err or "backend said " .. res.status end
  return res.body
end)
"""

NGINX_CONFIG = """
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
# as nginx is run in production (master_process off is for nginx's developers only),
# in the foreground so that the bench can stop it
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 40000;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log error;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  # off by default; nginx's documentation and Debian's own nginx.conf turn them on
  sendfile on;
  tcp_nopush on;
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  # For the gzip workload: what issue 14 asks to compare against, gzip on without
  # gzip_static, so nginx codes the file anew for every request, at its
  # default gzip_comp_level 1 (luahttpd codes each file version once, at level 6, and
  # keeps the result). mime.types gives .js application/javascript. gzip_vary adds
  # the Vary: Accept-Encoding that luahttpd and lighttpd send. Only requests that
  # carry Accept-Encoding: gzip are coded, so the other workloads are untouched.
  gzip on;
  gzip_types application/javascript text/javascript;
  gzip_vary on;
  keepalive_timeout 120;
  client_body_temp_path {dir}/nginx-tmp;
  proxy_temp_path {dir}/nginx-tmp;
  fastcgi_temp_path {dir}/nginx-tmp;
  uwsgi_temp_path {dir}/nginx-tmp;
  scgi_temp_path {dir}/nginx-tmp;
  lua_package_cpath "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;";
  init_by_lua_block {{ cjson = require "cjson" }}
  lua_shared_dict counters 1m;
  # the outbound workloads: keep-alive to the backend as nginx's documentation for
  # upstream keepalive says (HTTP/1.1, Connection cleared)
  upstream backend {{
    server 127.0.0.1:{backend};
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location /p/ {{
      proxy_pass http://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    # lua-resty-http is not in Debian: the Lua handler asks through a subrequest
    location = /fetch {{
      content_by_lua_block {{
        local res = ngx.location.capture("/internal/small.html")
        if res.status ~= 200 then return ngx.exit(502) end
        ngx.header.content_type = "text/html; charset=utf-8"
        ngx.print(res.body)
      }}
    }}
    location /internal/ {{
      internal;
      proxy_pass http://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    location = /api/hello {{
      content_by_lua_block {{
        ngx.header.content_type = "application/json"
        ngx.print(cjson.encode({{ hello = "world", n = tonumber(ngx.var.arg_n) }}))
      }}
    }}
    location = /api/incr {{
      content_by_lua_block {{
        ngx.header.content_type = "application/json"
        ngx.print(cjson.encode({{ n = ngx.shared.counters:incr("hits", 1, 0) }}))
      }}
    }}
    location ~ ^/api/echo/([^/]+)$ {{
      content_by_lua_block {{
        ngx.header.content_type = "application/json"
        ngx.print(cjson.encode({{ id = ngx.var[1] }}))
      }}
    }}
  }}
}}
"""

# lighttpd's performance guide: prefer its defaults (epoll and sendfile are chosen for
# the platform), list only the modules in use, and the Lua script runs only where a
# Lua handler answers, as the other two servers do.
LIGHTTPD_CONFIG = """
server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
server.compat-module-load = "disable"
server.modules = ("mod_magnet", {deflate}{proxy}"mod_staticfile")
$HTTP["url"] =~ "^/api/" {{
  magnet.attract-raw-url-to = ("{dir}/magnet.lua")
}}
{proxy_config}server.errorlog = "{dir}/lighttpd-error.log"
server.max-fds = 40000
server.max-connections = 30000
server.max-keep-alive-idle = 120
mimetype.assign = (".html" => "text/html; charset=utf-8", ".bin" => "application/octet-stream",
                   ".js" => "text/javascript; charset=utf-8")
{deflate_config}"""

# For the gzip workload (when mod_deflate is installed): with a cache dir, mod_deflate
# codes a static file once per version (at zlib's default level, 6) and then sends
# the coded copy from its cache, as luahttpd does; only requests that carry
# Accept-Encoding: gzip are coded.
LIGHTTPD_DEFLATE_CONFIG = """deflate.mimetypes = ("application/javascript", "text/javascript")
deflate.allowed-encodings = ("gzip")
deflate.cache-dir = "{dir}/lighttpd-deflate"
"""

# For the proxy workload (mod_proxy): /p/x goes to the backend's /x. mod_proxy has no
# pool of kept-alive connections to a backend: it opens one for every request.
LIGHTTPD_PROXY_CONFIG = """$HTTP["url"] =~ "^/p/" {{
  proxy.server = ("" => (("host" => "127.0.0.1", "port" => {backend})))
  proxy.header = ("map-urlpath" => ("/p/" => "/"))
}}
"""

# The backend of the outbound workloads: one nginx worker serving the docroot, pinned
# to CPU 0 beside wrk (the front being measured has CPU 1 to itself), with
# stub_status, whose "accepts" tells how many connections the fronts opened to it.
BACKEND_CONFIG = """
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 40000;
pid {dir}/backend.pid;
error_log {dir}/backend-error.log error;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  keepalive_timeout 120;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/backend-tmp;
  proxy_temp_path {dir}/backend-tmp;
  fastcgi_temp_path {dir}/backend-tmp;
  uwsgi_temp_path {dir}/backend-tmp;
  scgi_temp_path {dir}/backend-tmp;
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location = /backend-status {{ stub_status; }}
  }}
}}
"""

# mod_magnet runs this chunk for every request under /api/; lighty.c.urldec_query
# parses and decodes the query string as luahttpd's req.query does; lua-cjson is the
# same encoder the other two use (lighttpd's mod_magnet is built on Lua 5.4, and
# Debian's lua-cjson package carries a build for it).
MAGNET = r"""
local cjson = require "cjson"
local r = lighty.r
local path = r.req_attr["uri.path"]
if path == "/api/hello" then
  local n = lighty.c.urldec_query(r.req_attr["uri.query"]).n
  r.resp_header["Content-Type"] = "application/json"
  r.resp_body:set({ cjson.encode({ hello = "world", n = tonumber(n) }) })
  return 200
end
local id = path:match("^/api/echo/([^/]+)$")
if id then
  r.resp_header["Content-Type"] = "application/json"
  r.resp_body:set({ cjson.encode({ id = id }) })
  return 200
end
return 0
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def process_tree(pid):
    """pid and every process descended from it (a master and its forked workers)."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(kids.get(p, []))
    return tree


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ns(pid):
    """CPU time the process tree at pid has used, in nanoseconds: every thread of
    every process in it, and what its processes' reaped children used (a worker
    that ended during the run)."""
    total = 0
    for p in process_tree(pid):
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                try:
                    with open("/proc/%d/task/%s/schedstat" % (p, tid)) as f:
                        total += int(f.read().split()[0])
                except (OSError, ValueError):
                    pass
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[13]) + int(fields[14])) * 1000000000 // CLK_TCK
        except (OSError, ValueError, IndexError):
            pass
    return total


def rss_bytes(pid):
    """Resident memory of the process tree at pid (the sum of its processes' RSS)."""
    total = 0
    for p in process_tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            pass
    return total


class Server:
    """A server in its own session; pinned to the CPUs in cpu (taskset -c), or
    unpinned when cpu is None. Its descendants inherit the pinning."""

    def __init__(self, name, argv, port, cpu="1"):
        self.name, self.port = name, port
        if cpu:
            argv = ["taskset", "-c", cpu, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(port, self.proc):
            self.stop()
            raise RuntimeError("%s did not start" % name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wrk(port, path, seconds, threads=1, cpu="0", headers=()):
    argv = ["wrk", "-t%d" % threads, "-c50", "-d%ds" % seconds, "--latency"]
    for h in headers:
        argv += ["-H", h]
    argv.append("http://127.0.0.1:%d%s" % (port, path))
    if cpu:
        argv = ["taskset", "-c", cpu] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)] if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    m = re.search(r"([\d.]+)(B|KB|MB|GB) read", out)
    read = float(m.group(1)) * 1024 ** "B KB MB GB".split().index(m.group(2)) if m else 0
    return reqs, rps, p99, non2xx, errors, read / max(reqs, 1)


def bench_js(size=100 * 1024):
    """size bytes of JavaScript as a bundle looks to a compressor: many small functions
    alike in shape, with names, constants and operators that vary (a fixed seed, so
    every run serves the same file). It compresses about 4.3 times at zlib level 1
    and 5.5 times at level 6, not the hundreds of times of one repeated line."""
    rnd = random.Random(14)
    verbs = ["get", "set", "load", "save", "render", "parse", "format", "update", "check",
             "build", "merge", "sort", "find", "count", "apply", "reset"]
    nouns = ["User", "Order", "Price", "Cart", "Item", "Row", "Page", "Token", "Event",
             "Filter", "Chart", "Label", "Cache", "Query", "Field", "Theme"]
    params = ["items", "options", "value", "index", "state", "node", "key", "limit"]
    ops = ["+", "-", "*", "%", "<<", "^"]
    parts = ['/* generated for the "%s" workload of make bench */\n"use strict";\n\n'
             % GZIP_WORKLOAD]
    n, i = len(parts[0]), 0
    while True:
        i += 1
        a, b = rnd.sample(params, 2)
        name = "%s%s%d" % (rnd.choice(verbs), rnd.choice(nouns), rnd.randrange(1000))
        lines = ["function %s(%s, %s) {" % (name, a, b),
                 "  const limit%d = %d;" % (i, rnd.randrange(1, 100000)),
                 "  let total = %s.length %s %d;" % (a, rnd.choice(ops), rnd.randrange(1, 500))]
        for _ in range(rnd.randrange(1, 4)):
            lines += ["  if (%s > %d) {" % (b, rnd.randrange(10000)),
                      "    total = total %s Math.round(%s * %.4f);" %
                      (rnd.choice(ops), b, rnd.random() * 100),
                      "  }"]
        lines.append('  return { id: %d, name: "%s", total: total, ok: total < limit%d };' %
                     (rnd.randrange(1 << 20), name, i))
        text = "\n".join(lines) + "\n}\n\n"
        if n + len(text) + 8 > size:
            break
        parts.append(text)
        n += len(text)
    parts.append("/*" + "-" * (size - n - 5) + "*/\n")  # to the exact size
    data = "".join(parts).encode()
    assert len(data) == size
    return data


def make_site(d):
    www = os.path.join(d, "www")
    os.mkdir(www)
    small = b"<!DOCTYPE html><title>bench</title>" + b"x" * (615 - 34)
    with open(os.path.join(www, "small.html"), "wb") as f:
        f.write(small[:615])
    with open(os.path.join(www, "big.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    with open(os.path.join(www, "bench.js"), "wb") as f:
        f.write(bench_js())
    return www


# What each server must answer for the Lua workloads (the same JSON from all three).
ANSWERS = [("/api/hello?n=42", {"hello": "world", "n": 42}),
           ("/api/echo/12345", {"id": "12345"}),
           ("/api/incr", None), ("/api/row?id=7", {"id": 7, "name": "item 7"})]
PATH_OF = {w[1]: w[0] for w in WORKLOADS}


def can_run(name, wl):
    return name in ONLY.get(wl, (name,))


def check_answers(srv):
    """Raise RuntimeError unless srv answers every Lua workload with the JSON in
    ANSWERS (so that no server is measured doing less work than the others)."""
    for path, want in ANSWERS:
        if not can_run(srv.name, PATH_OF.get(path, "")):
            continue
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            ctype = r.getheader("Content-Type", "")
        finally:
            c.close()
        try:
            got = json.loads(body)
        except ValueError:
            got = None
        if want is None:  # a counter: a positive integer
            want = got if isinstance(got, dict) and isinstance(got.get("n"), int) and \
                got["n"] > 0 else {"n": "a positive integer"}
        if r.status != 200 or not ctype.startswith("application/json") or got != want:
            srv.stop()
            raise RuntimeError("GET %s answered %d %s %r, not %s" %
                               (path, r.status, ctype, body[:80], json.dumps(want)))


def check_gzip(srv, www):
    """Raise RuntimeError unless srv answers each workload that sends Accept-Encoding
    with a gzip-coded body that decodes to the file (else a server that sends the file
    as it is would be measured doing far less work)."""
    for w in WORKLOADS:
        hdrs = dict(h.split(": ", 1) for h in headers_of(w))
        if "Accept-Encoding" not in hdrs or not can_run(srv.name, w[0]):
            continue
        with open(os.path.join(www, w[1].lstrip("/")), "rb") as f:
            want = f.read()
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            c.request("GET", w[1], headers=hdrs)
            r = c.getresponse()
            body = r.read()
            coding = r.getheader("Content-Encoding", "")
        finally:
            c.close()
        try:
            got = gzip.decompress(body) if coding == "gzip" else None
        except (OSError, EOFError):
            got = None
        if r.status != 200 or got != want:
            srv.stop()
            raise RuntimeError("%s: GET %s with %s answered %d, Content-Encoding %r, "
                               "%d bytes that %s" %
                               (srv.name, w[1], ", ".join(headers_of(w)), r.status, coding,
                                len(body), "decode to another body" if coding == "gzip"
                                else "are not gzip-coded"))


# The backend's port (start_backend); the fronts' configs name it even where no
# outbound workload runs (nothing connects to it then).
BACKEND = {"port": 9}


def start_backend(d, www):
    """The nginx that the outbound workloads' fronts forward to, pinned to CPU 0."""
    os.makedirs(os.path.join(d, "backend-tmp"), exist_ok=True)
    port = free_port()
    path = os.path.join(d, "backend.conf")
    with open(path, "w") as f:
        f.write(BACKEND_CONFIG.format(dir=d, www=www, port=port))
    srv = Server("backend", ["nginx", "-c", path, "-p", d], port, cpu="0")
    BACKEND["port"] = port
    return srv


def backend_accepts():
    """How many connections the backend has accepted so far (its stub_status), not
    counting the one that asks."""
    c = http.client.HTTPConnection("127.0.0.1", BACKEND["port"], timeout=10)
    try:
        c.request("GET", "/backend-status")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    return int(text.split("\n")[2].split()[0]) - 1


def backend_conns(pids):
    """Established TCP connections from the processes in pids to the backend."""
    # ss takes some 30 ms here: on CPU 0, with wrk and the backend, not the front's
    out = subprocess.run(["taskset", "-c", "0", "ss", "-Htnp", "state", "established", "dport", "=",
                          ":%d" % BACKEND["port"]], capture_output=True, text=True,
                         timeout=10).stdout
    pids = set(pids)
    return sum(1 for line in out.splitlines()
               if any(int(p) in pids for p in re.findall(r"pid=(\d+)", line)))


class ConnSampler:
    """While a front is measured: the most connections it held open to the backend at
    once (sampled every 0.5 s with ss), and how many the backend accepted (opened by
    that front: the other fronts idle meanwhile)."""

    def __init__(self, pid):
        import threading
        self.pid, self.peak, self.stop_ = pid, 0, threading.Event()
        self.accepts0 = backend_accepts()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        pids = process_tree(self.pid)
        while not self.stop_.wait(0.5):
            self.peak = max(self.peak, backend_conns(pids))

    def done(self):
        self.stop_.set()
        self.thread.join()
        return self.peak, backend_accepts() - self.accepts0


def check_outbound(srv, www):
    """Raise RuntimeError unless srv answers each outbound workload with small.html as
    the backend has it (for the workloads srv runs)."""
    with open(os.path.join(www, "small.html"), "rb") as f:
        want = f.read()
    for w in WORKLOADS:
        if w[0] not in BACKEND_WORKLOADS or not can_run(srv.name, w[0]):
            continue
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            c.request("GET", w[1])
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status != 200 or body != want:
            srv.stop()
            raise RuntimeError("%s: GET %s answered %d with %d bytes %r, not small.html" %
                               (srv.name, w[1], r.status, len(body), body[:80]))


def start(name, d, www, port, workers=1, cpu="1"):
    fmt = dict(dir=d, www=www, port=port, workers=workers, backend=BACKEND["port"])
    if name == "luahttpd":
        path = os.path.join(d, "luahttpd.lua")
        with open(path, "w") as f:
            outbound = OUTBOUND_ROUTES.format(backend=fmt["backend"])
            f.write(LUAHTTPD_CONFIG.format(routes=LUAHTTPD_ROUTES, outbound=outbound, **fmt))
        return Server(name, [LUAHTTPD, "-c", path], port, cpu)
    if name == "nginx":
        os.makedirs(os.path.join(d, "nginx-tmp"), exist_ok=True)
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(NGINX_CONFIG.format(**fmt))
        return Server(name, ["nginx", "-c", path, "-p", d], port, cpu)
    path = os.path.join(d, "lighttpd.conf")
    if LIGHTTPD_DEFLATE:
        os.makedirs(os.path.join(d, "lighttpd-deflate"), exist_ok=True)
    with open(path, "w") as f:
        f.write(LIGHTTPD_CONFIG.format(
            deflate='"mod_deflate", ' if LIGHTTPD_DEFLATE else "",
            deflate_config=LIGHTTPD_DEFLATE_CONFIG.format(**fmt) if LIGHTTPD_DEFLATE else "",
            proxy='"mod_proxy", ' if LIGHTTPD_PROXY else "",
            proxy_config=LIGHTTPD_PROXY_CONFIG.format(**fmt) if LIGHTTPD_PROXY else "",
            **fmt))
    with open(os.path.join(d, "magnet.lua"), "w") as f:
        f.write(MAGNET)
    return Server(name, ["lighttpd", "-D", "-f", path], port, cpu)


# (front, workload): [(peak connections to the backend, connections opened), ...]
CONNS = {}


def run_workloads(servers, d, www, seconds, rounds):
    """Every server runs at once (all pinned to CPU 1, idle but for the one being
    measured). Each round measures every workload on every server in turn, so that
    the machine's drift over time falls on all of them alike; a figure is the
    median of its rounds."""
    running = {}
    try:
        for name in servers:
            port = free_port()
            try:
                srv = start(name, d, www, port)
                check_answers(srv)
                running[name] = (srv, port)
            except RuntimeError as e:
                print("  %s: %s" % (name, e))
                continue
            # a server that answers the gzip workload with a body that is not the
            # file gzip-coded stops the bench: its figure would mean nothing
            check_gzip(srv, www)
            check_outbound(srv, www)
        runs = {}
        for rnd in range(rounds):
            order = list(running)
            order = order[rnd % len(order):] + order[:rnd % len(order)]
            for w in WORKLOADS:
                wl, path, want, hdrs = w[0], w[1], w[2], headers_of(w)
                for name in order:
                    if not can_run(name, wl):
                        continue
                    srv, port = running[name]
                    if rnd == 0:  # warm up (later rounds find it warm)
                        wrk(port, path, 1, headers=hdrs)
                    sampler = ConnSampler(srv.proc.pid) if wl in BACKEND_WORKLOADS else None
                    before = cpu_ns(srv.proc.pid)
                    reqs, rps, p99, non2xx, errors, size = wrk(port, path, seconds,
                                                               headers=hdrs)
                    used = cpu_ns(srv.proc.pid) - before
                    wrong = (non2xx if want < 300 else reqs - non2xx) + errors
                    us = used / 1e3 / max(reqs, 1)
                    runs.setdefault((name, wl), []).append((rps, us, p99, wrong))
                    extra = ""
                    if sampler:
                        peak, opened = sampler.done()
                        CONNS.setdefault((name, wl), []).append((peak, opened))
                        extra = "  backend conns: peak %d, opened %d" % (peak, opened)
                    print("  round %d  %-9s %-15s %9.0f req/s %8.1f us/req  p99 %7.0f us  "
                          "%7.0f B/resp  wrong %d%s" % (rnd + 1, name, wl, rps, us, p99, size,
                                                        wrong, extra), flush=True)
    finally:
        for srv, _ in running.values():
            srv.stop()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    return {k: (med([r[0] for r in v]), med([r[1] for r in v]), med([r[2] for r in v]),
                sum(r[3] for r in v)) for k, v in runs.items()}


def hold_idle(port, n):
    """Open n keep-alive connections, one request each, and keep them open."""
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /small.html HTTP/1.1\r\nHost: b\r\n\r\n")
        conns.append(s)
    for s in conns:
        s.recv(4096)
    return conns


def idle_memory(servers, d, www, n):
    out = {}
    for name in servers:
        port = free_port()
        try:
            srv = start(name, d, www, port)
        except RuntimeError:
            continue
        try:
            hold_idle(port, 1)  # the first request's one-time allocations
            time.sleep(0.3)
            base = rss_bytes(srv.proc.pid)
            conns = hold_idle(port, n)
            time.sleep(0.5)
            out[name] = (rss_bytes(srv.proc.pid) - base) / n
            for s in conns:
                s.close()
            print("  %-9s %6.0f B per idle keep-alive connection (%d held)" %
                  (name, out[name], n), flush=True)
        finally:
            srv.stop()
    return out


def scaling(d, www, seconds):
    """req/s with workers = 1 and 2, server and wrk unpinned on the same two cores.
    With the light "lua json" request wrk needs as much CPU as the server, so a second
    worker only has wrk's core to take from; "lua compute" (~0.3 ms of Lua a request)
    leaves wrk a few per cent, and there the second worker has a core to use."""
    rates = {}
    for workers in (1, 2):
        port = free_port()
        srv = start("luahttpd", d, www, port, workers=workers, cpu="0,1")
        try:
            for name, path in (("lua json", "/api/hello?n=1"), ("lua compute", "/api/work")):
                wrk(port, path, 1, threads=2, cpu=None)
                rates[(name, workers)] = wrk(port, path, seconds, threads=2, cpu=None)[1]
                print("  luahttpd workers=%d: %.0f req/s (%s, wrk unpinned)" %
                      (workers, rates[(name, workers)], name), flush=True)
        finally:
            srv.stop()
    return rates


TWO_WORKERS = ("lua json", "/api/hello?n=42")


def two_workers(d, www, seconds, rounds):
    """luahttpd with workers = 2 against nginx with master_process on and
    worker_processes 2, on the "lua json" workload: both servers running at once
    (the one not measured idles), unpinned, and wrk -t2 -c50 unpinned on the same
    cores; the servers take turns for a few rounds. Returns {name: (median req/s,
    median CPU us per request of the whole process tree, wrong responses)}."""
    running, runs = {}, {}
    _, path = TWO_WORKERS
    try:
        for name in ("luahttpd", "nginx"):
            if name != "luahttpd" and not shutil.which(name):
                continue
            port = free_port()
            try:
                srv = start(name, d, www, port, workers=2, cpu=None)
                check_answers(srv)
                running[name] = (srv, port)
            except RuntimeError as e:
                print("  %s: %s" % (name, e))
        for rnd in range(rounds):
            order = list(running)
            order = order[rnd % len(order):] + order[:rnd % len(order)]
            for name in order:
                srv, port = running[name]
                if rnd == 0:
                    wrk(port, path, 1, threads=2, cpu=None)
                before = cpu_ns(srv.proc.pid)
                reqs, rps, _, non2xx, errors, _ = wrk(port, path, seconds, threads=2,
                                                      cpu=None)
                us = (cpu_ns(srv.proc.pid) - before) / 1e3 / max(reqs, 1)
                runs.setdefault(name, []).append((rps, us, non2xx + errors))
                print("  round %d  %-9s workers=2 %-9s %9.0f req/s %8.1f us/req  wrong %d" %
                      (rnd + 1, name, TWO_WORKERS[0], rps, us, non2xx + errors), flush=True)
    finally:
        for srv, _ in running.values():
            srv.stop()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    return {k: (med([r[0] for r in v]), med([r[1] for r in v]), sum(r[2] for r in v))
            for k, v in runs.items()}


def print_two_workers(two, seconds, rounds):
    cell = lambda name, i, fmt: fmt % two[name][i] if name in two else "-"
    ratio = lambda i: ("%.2f" % (two["luahttpd"][i] / two["nginx"][i])
                       if "luahttpd" in two and "nginx" in two else "-")
    print("\nTwo workers, %s: luahttpd `workers = 2`, nginx `master_process on; "
          "worker_processes 2;`; servers and wrk -t2 -c50 unpinned on the same %d cores; "
          "%d rounds of %ds, medians; CPU of each server's whole process tree:\n" %
          (TWO_WORKERS[0], os.cpu_count(), rounds, seconds))
    print("| 2 workers, %s | luahttpd | nginx | luahttpd / nginx |" % TWO_WORKERS[0])
    print("| --- | ---: | ---: | ---: |")
    print("| requests/s | %s | %s | %s |" % (cell("luahttpd", 0, "%.0f"), cell("nginx", 0, "%.0f"),
                                           ratio(0)))
    print("| CPU µs/req | %s | %s | %s |" % (cell("luahttpd", 1, "%.1f"), cell("nginx", 1, "%.1f"),
                                           ratio(1)))
    print("| wrong | %s | %s | |" % (cell("luahttpd", 2, "%d"), cell("nginx", 2, "%d")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=3, help="seconds per measured run")
    ap.add_argument("--rounds", type=int, default=5, help="runs of each workload per server")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections to hold")
    ap.add_argument("--workload", action="append", metavar="NAME",
                    help="measure only this workload (repeatable); skips memory and workers")
    args = ap.parse_args()
    started = time.time()
    if args.workload:
        unknown = set(args.workload) - {w[0] for w in WORKLOADS}
        if unknown:
            ap.error("unknown workload: %s" % ", ".join(sorted(unknown)))
        WORKLOADS[:] = [w for w in WORKLOADS if w[0] in args.workload]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    idle = min(args.idle, hard - 200)
    servers = ["luahttpd"] + [s for s in ("nginx", "lighttpd") if shutil.which(s)]
    d = tempfile.mkdtemp(prefix="lh-bench-")
    os.chmod(d, 0o755)  # nginx's workers run as nobody when started by root
    two_rounds = min(args.rounds, 3)
    backend = None
    if not shutil.which("nginx"):  # no backend
        WORKLOADS[:] = [w for w in WORKLOADS if w[0] not in BACKEND_WORKLOADS]
    try:
        www = make_site(d)
        if any(w[0] in BACKEND_WORKLOADS for w in WORKLOADS):
            backend = start_backend(d, www)
        print("luahttpd benchmark, %s, %d cores, %d rounds of %ds per workload" %
              (time.strftime("%Y-%m-%d"), os.cpu_count(), args.rounds, args.seconds))
        results = run_workloads(servers, d, www, args.seconds, args.rounds)
        mem, rates, two = {}, {}, {}
        if not args.workload:
            mem = idle_memory(servers, d, www, idle)
            rates = scaling(d, www, max(1, args.seconds // 3))
            two = two_workers(d, www, args.seconds, two_rounds)
    finally:
        if backend:
            backend.stop()
        shutil.rmtree(d, ignore_errors=True)

    print("\n| workload | luahttpd µs/req | nginx µs/req | lighttpd µs/req | ratio to best peer "
          "| luahttpd req/s | p99 µs | wrong |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    for wl in (w[0] for w in WORKLOADS):
        ours = results.get(("luahttpd", wl))
        if not ours:
            continue
        peers = [results[(p, wl)][1] for p in ("nginx", "lighttpd") if (p, wl) in results]
        cell = lambda p: "%.1f" % results[(p, wl)][1] if (p, wl) in results else "-"
        ratio = ours[1] / min(peers) if ours and peers else float("nan")
        worst = max(worst, ratio) if ratio == ratio else worst
        print("| %s | %s | %s | %s | %s | %.0f | %.0f | %d |" %
              (wl, cell("luahttpd"), cell("nginx"), cell("lighttpd"),
               "%.2f" % ratio if ratio == ratio else "-", ours[0], ours[2], ours[3]))
    if CONNS:
        print("\nConnections from each front to the backend while it was measured (wrk "
              "-c50): the most open at once (ss, every 0.5 s; median of rounds), and "
              "how many it opened per round (the backend's stub_status accepts; median "
              "and largest):\n")
        print("| workload | front | peak open | opened per round | most opened |")
        print("| --- | --- | ---: | ---: | ---: |")
        med = lambda xs: sorted(xs)[len(xs) // 2]
        for (name, wl), v in sorted(CONNS.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print("| %s | %s | %d | %d | %d |" % (wl, name, med([x[0] for x in v]),
                                                 med([x[1] for x in v]),
                                                 max(x[1] for x in v)))
        print()
    if mem:
        peers = [mem[p] for p in ("nginx", "lighttpd") if p in mem]
        print("| idle keep-alive memory | %.0f B | %s | %s | %.2f | | | |" %
              (mem.get("luahttpd", float("nan")),
               "%.0f B" % mem["nginx"] if "nginx" in mem else "-",
               "%.0f B" % mem["lighttpd"] if "lighttpd" in mem else "-",
               mem["luahttpd"] / min(peers) if peers and "luahttpd" in mem else float("nan")))
    if rates:
        print()
        for name in ("lua compute", "lua json"):
            print("workers=2 / workers=1, %s: %.2f x req/s" %
                  (name, rates[(name, 2)] / rates[(name, 1)]))
    if two:
        print_two_workers(two, args.seconds, two_rounds)
    print("worst CPU ratio to the best peer: %.2f" % worst)
    print("(the bench took %.0f s)" % (time.time() - started))


if __name__ == "__main__":
    sys.exit(main())
