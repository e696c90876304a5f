"""A small Chrome DevTools Protocol client for the end-to-end tests: it starts
Debian's headless Chromium in a fresh profile and drives one page over the
protocol's WebSocket (python3-websocket). Every wait is bounded, and close()
always kills the browser's process group and removes its folder.

    with Browser() as b:            # or start(testcase), which skips when it cannot
        b.open("http://127.0.0.1:PORT/")
        b.eval("document.title")
        b.wait_for("window.done === true", timeout=2)

The browser talks to loopback only: every other host name fails to resolve and
every other address goes to a proxy that is not there, so nothing it does in the
background (updates, metrics) can leave the machine."""

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

try:
    import websocket  # Debian's python3-websocket (websocket-client)
except ImportError:  # start() turns this into a skip with the reason
    websocket = None

BINARIES = ("chromium", "chromium-browser")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
    # /dev/shm may be missing or tiny in containers; /tmp does as well
    "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--disable-breakpad",
    "--disable-client-side-phishing-detection", "--metrics-recording-only",
    "--password-store=basic", "--use-mock-keychain", "--mute-audio",
    # a tab in the background must not be throttled: the tests poll it
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    # loopback only (see the module's comment)
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=socks5://127.0.0.1:9",
    "--window-size=1024,768",
]
START_TIMEOUT = 30      # a cold start on two busy CPUs can take seconds
CALL_TIMEOUT = 10       # one protocol call
LOAD_TIMEOUT = 10       # a navigation until the load event


class Unavailable(Exception):
    """No browser can run here (no binary, no websocket module, it failed to start)."""


class Missing(Unavailable):
    """Chromium or the websocket module is not installed."""


class ProtocolError(Exception):
    """The browser answered a call with an error (such as a page that is being
    replaced having no execution context)."""


class JSError(Exception):
    """The evaluated expression threw."""


def find_binary():
    """The path of a Chromium binary ($CHROMIUM first), or None."""
    names = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else []
    for name in [*names, *BINARIES]:
        path = shutil.which(name)
        if path:
            return path
    return None


def group_members(pgid):
    """Pids of the processes of group pgid that still run. A zombie does not count:
    an init that never reaps (as in some containers) leaves the killed helpers so."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                out.append(int(d))
    return out


# straight to loopback, whatever http_proxy says
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_live = set()   # browsers not closed yet, killed at exit whatever happened


@atexit.register
def _close_all():
    for b in list(_live):
        b.close()


class Browser:
    """One headless Chromium with one page. Raises Unavailable when it cannot
    start; in every other case close() (or leaving the with block) cleans up."""

    def __init__(self, slow=1):
        self.slow = slow
        self.proc = self.ws = None
        self.console = []       # "level: text" of console calls and log entries
        self.errors = []        # uncaught exceptions in the page
        self.requests = []      # (url, status) of responses the page received
        self._next_id = 0
        self._loaded = False
        self.dir = tempfile.mkdtemp(prefix="lh-browser-")
        _live.add(self)
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # ---- start and stop --------------------------------------------------------

    def _start(self):
        if websocket is None:
            raise Missing("no python websocket module (Debian: python3-websocket)")
        binary = find_binary()
        if binary is None:
            raise Missing("no chromium binary on PATH (Debian: chromium)")
        profile = os.path.join(self.dir, "profile")
        env = dict(os.environ, HOME=self.dir, XDG_CONFIG_HOME=self.dir,
                   XDG_CACHE_HOME=self.dir)
        self.log_path = os.path.join(self.dir, "chromium.log")
        with open(self.log_path, "wb") as log:
            # its own process group, so that close() reaches every helper process
            self.proc = subprocess.Popen(
                [binary, *FLAGS, "--user-data-dir=" + profile, "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True)
        port = self._wait_port(os.path.join(profile, "DevToolsActivePort"))
        url = self._page_url(port)
        self.ws = websocket.create_connection(url, timeout=CALL_TIMEOUT * self.slow,
                                              suppress_origin=True)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable")

    def _wait_port(self, path):
        deadline = time.monotonic() + START_TIMEOUT * self.slow
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable("chromium exited with %s: %s" % (
                    self.proc.returncode, self.log_tail()))
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    return int(first)
            except OSError:
                pass
            time.sleep(0.05)
        raise Unavailable("chromium did not open its DevTools port within %ds: %s" % (
            START_TIMEOUT * self.slow, self.log_tail()))

    def _page_url(self, port):
        """The WebSocket URL of the page target (the about:blank tab)."""
        deadline = time.monotonic() + START_TIMEOUT * self.slow
        while True:
            try:
                with _direct.open("http://127.0.0.1:%d/json/list" % port,
                                  timeout=CALL_TIMEOUT) as r:
                    targets = json.load(r)
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Unavailable("chromium shows no page target: " + self.log_tail())
            time.sleep(0.1)

    def log_tail(self, n=1500):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:].strip()
        except (OSError, AttributeError):
            return ""

    def close(self):
        """Kill the browser and all its helpers, remove its folder. Safe to repeat."""
        _live.discard(self)
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except Exception:
                pass
            self.ws = None
        if self.proc is not None:
            # the profile is thrown away, so no need for a graceful stop
            pgid = self.proc.pid
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
            deadline = time.monotonic() + 10
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the protocol ----------------------------------------------------------

    def call(self, method, timeout=CALL_TIMEOUT, **params):
        """Send one command and return its result; events that arrive meanwhile are
        kept. Raises ProtocolError on an error answer, TimeoutError past timeout."""
        self._next_id += 1
        mid = self._next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout * self.slow
        while True:
            msg = self._receive(deadline, method)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise ProtocolError("%s: %s" % (method, msg["error"].get("message")))
                return msg.get("result", {})

    def _receive(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from the browser to " + what)
        self.ws.settimeout(left)
        try:
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            raise TimeoutError("no answer from the browser to " + what) from None
        if "method" in msg:
            self._event(msg["method"], msg.get("params", {}))
        return msg

    def _event(self, method, p):
        if method == "Page.loadEventFired":
            self._loaded = True
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", "")))
                            for a in p.get("args", []))
            self.console.append("%s: %s" % (p.get("type"), text))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            self.console.append("%s: %s" % (e.get("level"), e.get("text")))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append(d.get("exception", {}).get("description") or d.get("text"))
        elif method == "Network.responseReceived":
            r = p.get("response", {})
            self.requests.append((r.get("url"), r.get("status")))

    def pump(self, seconds=0.0):
        """Read the events that arrive within seconds, and those already waiting."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline + 1:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.005))
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                return
            if "method" in msg:
                self._event(msg["method"], msg.get("params", {}))

    # ---- what the tests use ----------------------------------------------------

    def open(self, url, timeout=LOAD_TIMEOUT):
        """Navigate the page to url and wait for its load event."""
        self._loaded = False
        r = self.call("Page.navigate", timeout=timeout, url=url)
        if r.get("errorText"):
            raise AssertionError("navigating to %s failed: %s" % (url, r["errorText"]))
        deadline = time.monotonic() + timeout * self.slow
        while not self._loaded:
            self._receive(deadline, "the load of " + url)

    def eval(self, expr, timeout=CALL_TIMEOUT):
        """The value of a JavaScript expression in the page (None for undefined or
        null; JSON-able values as Python ones; promises are awaited). Raises JSError
        when it throws."""
        r = self.call("Runtime.evaluate", timeout=timeout, expression=expr,
                      returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise JSError("%s: %s" % (expr, d.get("exception", {}).get("description")
                                      or d.get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, expr, timeout=2.0, interval=0.02):
        """Evaluate expr until it is truthy; return the seconds that took. Errors
        while it polls (a page being replaced, an element not there yet) count as
        false. Raises AssertionError after timeout (times slow) with the last value,
        the last error and what the page logged."""
        start = time.monotonic()
        deadline = start + timeout * self.slow
        last, err = None, None
        while True:
            try:
                last = self.eval(expr, timeout=max(deadline - time.monotonic(), 0.5))
                err = None
                if last:
                    return time.monotonic() - start
            except (JSError, ProtocolError, TimeoutError) as e:
                err = e
            if time.monotonic() >= deadline:
                raise AssertionError(
                    "not true within %.1fs: %s\nlast value: %r\nlast error: %s\n%s" % (
                        timeout * self.slow, expr, last, err, self.report()))
            self.pump(interval)

    def wait_response(self, fragment, timeout=2.0, since=0):
        """Wait until the page has received the response headers of a URL that
        contains fragment (counting from response number since); return its status.
        An EventSource's response counts as soon as its headers are in."""
        deadline = time.monotonic() + timeout * self.slow
        while True:
            for url, status in self.requests[since:]:
                if fragment in (url or ""):
                    return status
            if time.monotonic() >= deadline:
                raise AssertionError("no response for %s within %.1fs\n%s" % (
                    fragment, timeout * self.slow, self.report()))
            self.pump(0.02)

    def report(self):
        """What the page logged and fetched lately, for a failure message."""
        lines = ["console: " + c for c in self.console[-15:]]
        lines += ["exception: %s" % e for e in self.errors[-5:]]
        lines += ["response: %s %s" % (s, u) for u, s in self.requests[-15:]]
        return "\n".join(lines) or "(the page logged nothing)"


def start(test, slow=1):
    """A Browser for a unittest test, closed when the test ends however it ends.
    The test is skipped when no browser can run here, except that on CI (CI=true),
    where .ci/install-deps installs both, a missing chromium or websocket module
    fails it: a browser test must never pass there by not running."""
    try:
        b = Browser(slow)
    except Missing as e:
        if os.environ.get("CI") == "true":
            raise AssertionError("%s, on CI, which installs it" % e) from None
        raise unittest.SkipTest("headless chromium unavailable: %s" % e) from None
    except Unavailable as e:
        raise unittest.SkipTest("headless chromium unavailable: %s" % e) from None
    test.addCleanup(b.close)
    return b
