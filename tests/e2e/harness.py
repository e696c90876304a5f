"""Shared helpers for the end-to-end tests: start the real luahttpd binary on
127.0.0.1 with a test config.lua in a fresh folder, and talk to it with curl and
raw sockets. Every wait is bounded."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BINARY = os.environ.get("LUAHTTPD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "luahttpd")
HOST = "127.0.0.1"

# LUAHTTPD_VALGRIND=1 (make valgrind) runs every server under memcheck. Each
# process writes its report to vg.<pid> in its folder; stop() fails the test on
# any memcheck error or definite leak. Valgrind runs code 10-50x slower, so
# waits and latency bounds are multiplied by SLOW (lower bounds, and the bound on
# CPU burnt while idle, stay as they are).
VALGRIND = os.environ.get("LUAHTTPD_VALGRIND") == "1"
SLOW = 10 if VALGRIND else 1
# make asan sets LUAHTTPD_SANITIZED=1: the binary runs under ASan + UBSan
SANITIZED = os.environ.get("LUAHTTPD_SANITIZED") == "1"
VALGRIND_CMD = ["valgrind", "--quiet", "--error-exitcode=97", "--leak-check=full",
                "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                "--track-fds=no", "--num-callers=30"]


def command(args, logdir):
    """argv for the binary with args, under valgrind when asked."""
    if not VALGRIND:
        return [BINARY, *args]
    return [*VALGRIND_CMD, "--log-file=" + os.path.join(logdir, "vg.%p"), BINARY, *args]


def valgrind_report(logdir):
    """The memcheck reports in logdir that show an error, joined ("" when clean).
    Memcheck's own lines start with ==PID==; lines starting --PID-- are valgrind's
    notes, such as "unhandled syscall 437" for openat2, which valgrind 3.19 does not
    know: it answers ENOSYS and the server falls back to its realpath check."""
    bad = []
    for name in sorted(os.listdir(logdir)):
        if name.startswith("vg."):
            with open(os.path.join(logdir, name), errors="replace") as f:
                text = f.read()
            if any(line.startswith("==") for line in text.splitlines()):
                bad.append(text)
    return "\n".join(bad)


def child_pids(pid):
    """The pids of pid's child processes that still run (a zombie, dead and not yet
    reaped, is not one)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def proc_field(pid, name):
    """A number from /proc/PID/status (VmRSS in bytes), 0 when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    n = int(line.split()[1])
                    return n * 1024 if line.rstrip().endswith("kB") else n
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system CPU time of one process, 0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A luahttpd process with its own folder, config.lua and docroot (www/).
    config=None: no config file at all, the built-in defaults with -r www."""

    def __init__(self, config="", files=None, args=(), config_name="config.lua",
                 expect_start=True, dirfiles=None, preexec=None):
        self.dir = tempfile.mkdtemp(prefix="lh-e2e-")
        self.www = os.path.join(self.dir, "www")
        os.mkdir(self.www)
        for name, data in (files or {}).items():
            self.write(name, data)
        for name, data in (dirfiles or {}).items():
            self.write(os.path.join("..", name), data)
        self.config_path = os.path.join(self.dir, config_name)
        source = ["-r", self.www] if config is None else ["-c", self.config_path]
        if config is not None:
            with open(self.config_path, "w") as f:
                f.write('docroot = "www"\n' + config)
        self.out_path = os.path.join(self.dir, "stdout")
        self.err_path = os.path.join(self.dir, "stderr")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            command([*source, "-p", "0", *args], self.dir),
            stdout=self._out, stderr=self._err, cwd=self.dir, preexec_fn=preexec)
        self.port = None
        if expect_start:
            self.port = self._wait_listening()

    def write(self, name, data):
        path = os.path.join(self.www, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return path

    def _wait_listening(self):
        deadline = time.time() + 5 * SLOW
        while time.time() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", self.stdout())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise AssertionError("server exited %s: %s" % (self.proc.returncode,
                                                               self.stderr()))
            time.sleep(0.02)
        raise AssertionError("server did not print its listening line")

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def url(self, path="/"):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def rewrite_config(self, config):
        with open(self.config_path, "w") as f:
            f.write('docroot = "www"\n' + config)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def workers(self):
        """The worker processes' pids (the master's children)."""
        return child_pids(self.proc.pid)

    def pids(self):
        return [self.proc.pid, *self.workers()]

    def rss(self):
        """Resident memory of the master and its workers together, in bytes."""
        return sum(proc_field(p, "VmRSS") for p in self.pids())

    def cpu_seconds(self):
        """CPU time the master and the workers running now have used."""
        return sum(cpu_seconds(p) for p in self.pids())

    def open_fds(self):
        """Descriptors the master and its workers hold, together."""
        n = 0
        for p in self.pids():
            try:
                n += len(os.listdir("/proc/%d/fd" % p))
            except OSError:
                pass
        return n

    def wait(self, timeout=10):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        """Stop the server (SIGTERM, then SIGKILL) and clean up. Returns what the
        sanitizers reported, if the binary was built with them ("" when clean)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._out.close()
        self._err.close()
        err = self.stderr()
        vg = valgrind_report(self.dir) if VALGRIND else ""
        shutil.rmtree(self.dir, ignore_errors=True)
        found = [m for m in ("Sanitizer", "runtime error:") if m in err]
        return vg or (err if found else "")


def run(args, timeout=10, cwd=None):
    """Run the binary with args; returns (exit code, stdout, stderr). Under valgrind
    a memcheck report fails the calling test (AssertionError)."""
    logdir = tempfile.mkdtemp(prefix="lh-vg-")
    try:
        p = subprocess.run(command(args, logdir), capture_output=True, text=True,
                           timeout=timeout * SLOW, cwd=cwd)
        report = valgrind_report(logdir) if VALGRIND else ""
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    if report:
        raise AssertionError("valgrind report:\n" + report[-4000:])
    return p.returncode, p.stdout, p.stderr


# HALF_CLOSE_SECS in src/server_int.h: a close that comes this soon after a client's
# last bytes is taken for a half-close (printf | nc -N) and the request answered
HALF_CLOSE = 0.1


def leave(sock):
    """Close sock as a client that leaves: past the half-close window (the caller has
    seen the handler paused, which is after its request was read)."""
    time.sleep(3 * HALF_CLOSE)
    sock.close()


def connect(port, timeout=3):
    s = socket.create_connection((HOST, port), timeout=timeout * SLOW)
    s.settimeout(timeout * SLOW)
    return s


def read_until_close(s, limit=64 << 20):
    """Everything the server sends until it closes; b'' if it closed at once.
    Raises socket.timeout if it neither sends nor closes in time."""
    data = b""
    while len(data) < limit:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        data += d
    return data


def raw(port, data, timeout=3):
    """Send data on a new connection and read until the server closes."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        return read_until_close(s)
    finally:
        s.close()


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status, self.reason, self.headers = status, reason, headers
        self.body, self.version = body, version

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return vals[0] if vals else None


class Reader:
    """Reads HTTP responses one at a time from a socket (Content-Length or chunked
    framing)."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:]]
        r = Response(int(status), reason, headers, b"", version)
        if not head_request and "chunked" in (r.header("Transfer-Encoding") or ""):
            r.body = self._chunked()
            return r
        n = 0 if head_request or r.status in (100, 204, 304) else int(
            r.header("Content-Length") or 0)
        while len(self.buf) < n:
            self._fill()
        r.body, self.buf = self.buf[:n], self.buf[n:]
        return r

    def _chunked(self):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            n = int(line.split(b";")[0], 16)
            while len(self.buf) < n + 2:
                self._fill()
            if n == 0:  # no trailers from this server
                self.buf = self.buf[2:]
                return body
            body, self.buf = body + self.buf[:n], self.buf[n + 2:]

    def closed(self, timeout=3):
        """True when the server closes the connection (nothing more arrives)."""
        self.sock.settimeout(timeout * SLOW)
        try:
            return self.buf == b"" and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def request(port, data, timeout=3):
    """One request on a new connection; the parsed response and whether the server
    then closed the connection."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        rd = Reader(s)
        r = rd.response(head_request=data.startswith(b"HEAD "))
        return r, rd
    except Exception:
        s.close()
        raise


def get(path, host="x", extra=b"", version=b"HTTP/1.1"):
    return b"GET " + path.encode() + b" " + version + b"\r\nHost: " + host.encode() + \
        b"\r\n" + extra + b"\r\n"


def curl(*args, timeout=10):
    """curl -sS with args; returns (status code, headers dict-ish list, body bytes)."""
    timeout *= SLOW
    p = subprocess.run(["curl", "-sS", "-D", "-", "--max-time", str(timeout), *args],
                       capture_output=True, timeout=timeout + 5)
    out = p.stdout
    if p.returncode != 0:
        raise AssertionError("curl failed %d: %s" % (p.returncode, p.stderr.decode()))
    # skip 1xx interim responses
    while True:
        head, _, out = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        if status >= 200:
            break
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, out


class ServerTest(unittest.TestCase):
    """A test case that stops every server it started."""

    def setUp(self):
        self.servers = []

    def tearDown(self):
        reports = [r for r in (s.stop() for s in self.servers) if r]
        if reports:
            self.fail("sanitizer/valgrind report from the server:\n" + reports[0][-4000:])

    def server(self, config="", files=None, args=(), **kw):
        s = Server(config, files, args, **kw)
        self.servers.append(s)
        return s

    def wait_for(self, predicate, timeout=3.0, what="condition"):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        self.fail("timed out waiting for " + what)
