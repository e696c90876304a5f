"""Live reload in --dev (contract section 7), seen by a real browser: headless
Chromium driven over the DevTools protocol (browser.py).

The protocol the server implements: in --dev every HTML response carries
<script src="/__luahttpd/live.js"></script> before </body>; that script listens on
/__luahttpd/events (Server-Sent Events). A saved file under the docroot or a
reloaded Lua file reloads the page; a saved .css file swaps the stylesheet that
links it in place; a config.lua that fails to reload shows
<div id="__luahttpd_overlay"> with the error until the next good save reloads the
page. Outside --dev none of it exists.

Files are saved both ways editors do: into a temporary file renamed over the old
one (save), and truncated and rewritten in place (save_in_place). Every new version
has another length than the old one, so a cache keyed on mtime and size cannot
miss it even where mtimes are only one second apart.

Skipped under valgrind (a server 10-50x slower next to a browser on two CPUs says
nothing the plain and ASan runs do not). Without chromium or python3-websocket the
tests are skipped with the reason, except on CI, which installs both."""

import os
import sys
import time
import unittest

import browser
from harness import SLOW, VALGRIND, ServerTest, curl

RELOAD_S = 1.0      # a docroot or css edit is seen within this (contract: 0.5 s)
CONFIG_S = 2.0      # a config.lua save is seen within this
LIVE_JS = "/__luahttpd/live.js"
EVENTS = "/__luahttpd/events"

INDEX_1 = ('<!doctype html>\n<html><head><title>live</title>\n'
           '<link rel="stylesheet" href="style.css"></head>\n'
           '<body><h1 id="v">1</h1><p>the first version</p></body></html>\n')
INDEX_2 = ('<!doctype html>\n<html><head><title>live</title>\n'
           '<link rel="stylesheet" href="style.css"></head>\n'
           '<body><h1 id="v">2</h1></body></html>\n')
CSS_1 = "body { color: rgb(1, 2, 3) }\n"
CSS_2 = "body { color: rgb(4, 5, 6) }\n/* saved again */\n"
LUA_ROUTE = ('route("GET", "/lua", function() '
             'return "<html><body><p id=l>1</p></body></html>" end)\n')
# the line numbers matter: the overlay must name line 4
CONFIG_BAD = ('docroot = "www"\n'
              '-- line 2\n'
              '-- line 3\n'
              'route("GET", "/x", function( end\n')
CONFIG_BAD_LINE = 4
CONFIG_GOOD = ('docroot = "www"\n'
               'route("GET", "/x", function() return "x, fixed now" end)\n')

MARKER_GONE = "window.__marker === undefined"
OVERLAY_TEXT = ("(function () { var o = document.getElementById('__luahttpd_overlay');"
                " return o ? o.textContent : null })()")


def save(path, data):
    """Save like an editor that writes a new file and renames it over the old one."""
    _check_length(path, data)
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def save_in_place(path, data):
    """Save like an editor that truncates the file and writes it again."""
    _check_length(path, data)
    with open(path, "w") as f:
        f.write(data)


def _check_length(path, data):
    try:
        old = os.path.getsize(path)
    except OSError:
        return
    assert old != len(data.encode()), "test bug: %s keeps its length" % path


def note(text):
    """A figure shown on the test's line of the verbose output."""
    sys.stdout.write("[%s] " % text)
    sys.stdout.flush()


@unittest.skipIf(VALGRIND, "a browser against a server under valgrind is too slow "
                           "for live-reload bounds; run in the plain and ASan stages")
class BrowserTest(ServerTest):
    """A server test that may open browsers; they are closed before the servers
    stop, so that no open event stream holds up a server's shutdown."""

    def setUp(self):
        super().setUp()
        self.browsers = []

    def tearDown(self):
        for b in self.browsers:
            b.close()
        super().tearDown()

    def browse(self, url):
        b = browser.start(self, SLOW)
        self.browsers.append(b)
        b.open(url)
        return b


class BrowserDriver(BrowserTest):
    """browser.py itself, against a plain static page (no --dev needed)."""

    PAGE = ('<html><head><title>driver</title></head><body><p id="p">static</p>'
            '<script>console.log("from the page", 7)</script></body></html>')

    def test_open_eval_and_navigate_again(self):
        s = self.server(files={"index.html": self.PAGE})
        b = self.browse(s.url("/"))
        self.assertEqual(b.eval("document.getElementById('p').textContent"), "static")
        self.assertEqual(b.eval("document.title"), "driver")
        self.assertEqual(b.eval("[1, 'a', {k: true}]"), [1, "a", {"k": True}])
        b.eval("window.__marker = 42")
        self.assertEqual(b.eval("window.__marker"), 42)
        self.assertLess(b.wait_for("window.__marker === 42"), 1.0)
        b.open(s.url("/"))
        self.assertEqual(b.eval("typeof window.__marker"), "undefined")
        self.assertIsNone(b.eval("window.__marker"))
        self.assertEqual(b.eval("document.getElementById('p').textContent"), "static")
        self.assertIn(("log: from the page 7"), b.console)
        self.assertIn((s.url("/"), 200), b.requests)

    def test_errors_and_timeouts_are_reported(self):
        s = self.server(files={"index.html": self.PAGE})
        b = self.browse(s.url("/"))
        with self.assertRaises(browser.JSError) as e:
            b.eval("no_such_function()")
        self.assertIn("ReferenceError", str(e.exception))
        t = time.monotonic()
        with self.assertRaises(AssertionError) as e:
            b.wait_for("window.never === true", timeout=0.3)
        self.assertLess(time.monotonic() - t, 0.3 * SLOW + 2)
        self.assertIn("window.never", str(e.exception))
        # a promise is awaited; a value set later by the page is waited for
        self.assertEqual(b.eval("new Promise(r => setTimeout(() => r(5), 50))"), 5)
        b.eval("setTimeout(() => { window.later = 1 }, 200)")
        self.assertGreaterEqual(b.wait_for("window.later === 1", timeout=2), 0.15)
        with self.assertRaises(AssertionError):
            b.open(s.url("/").replace(str(s.port), "1"))  # nothing listens on port 1

    def test_close_ends_every_browser_process(self):
        b = browser.start(self, SLOW)
        pgid, folder = b.proc.pid, b.dir
        b.close()
        self.assertEqual(browser.group_members(pgid), [])
        self.assertFalse(os.path.exists(folder))
        b.close()  # twice is fine


class LiveReload(BrowserTest):

    def site(self, config="", files=None, dev=True):
        """A server with index.html linking style.css (and files), in --dev."""
        base = {"index.html": INDEX_1, "style.css": CSS_1}
        return self.server(config, {**base, **(files or {})},
                           args=["--dev"] if dev else [])

    def browse_live(self, url):
        """Open url and wait until its live-reload script listens for changes, so
        that a save that follows cannot come before the page subscribed to it."""
        b = self.browse(url)
        self.assertTrue(b.eval("!!document.querySelector('script[src=\"%s\"]')" % LIVE_JS),
                        "no <script src=%s> in the page in --dev" % LIVE_JS)
        self.assertEqual(b.wait_response(EVENTS, timeout=3), 200,
                         "the page's event stream %s" % EVENTS)
        b.eval("window.__marker = 42")
        return b

    def test_html_edit_reloads_the_page(self):
        s = self.site()
        b = self.browse_live(s.url("/"))
        self.assertEqual(b.eval("document.getElementById('v').textContent"), "1")
        save(os.path.join(s.www, "index.html"), INDEX_2)
        t = b.wait_for(MARKER_GONE + " && document.getElementById('v') !== null"
                       " && document.getElementById('v').textContent === '2'",
                       timeout=RELOAD_S)
        note("reloaded %.2fs after the save" % t)

    def test_css_edit_swaps_the_stylesheet_without_a_reload(self):
        s = self.site()
        b = self.browse_live(s.url("/"))
        self.assertEqual(b.eval("getComputedStyle(document.body).color"), "rgb(1, 2, 3)")
        save_in_place(os.path.join(s.www, "style.css"), CSS_2)
        t = b.wait_for("getComputedStyle(document.body).color === 'rgb(4, 5, 6)'",
                       timeout=RELOAD_S)
        note("new style %.2fs after the save" % t)
        self.assertEqual(b.eval("window.__marker"), 42, "the page was reloaded")
        # the stylesheet is still linked, and no reload follows the swap
        b.pump(0.5 * SLOW)
        self.assertEqual(b.eval("window.__marker"), 42, "the page was reloaded")
        self.assertTrue(b.eval(
            "[...document.querySelectorAll('link[rel=stylesheet]')]"
            ".some(l => new URL(l.href).pathname === '/style.css')"))
        self.assertEqual(b.eval("getComputedStyle(document.body).color"), "rgb(4, 5, 6)")

    def test_css_with_a_space_or_accent_in_its_path_is_swapped_too(self):
        """The link's URL is percent-encoded ("/my%20styles/dise%C3%B1o.css"), the saved
        file's path is not: they name the same file."""
        name = "my styles/dise\u00f1o.css"
        page = INDEX_1.replace('href="style.css"', 'href="/my%20styles/dise%C3%B1o.css"')
        s = self.site(files={"index.html": page, name: CSS_1})
        b = self.browse_live(s.url("/"))
        self.assertEqual(b.eval("getComputedStyle(document.body).color"), "rgb(1, 2, 3)")
        save_in_place(os.path.join(s.www, name), CSS_2)
        b.wait_for("getComputedStyle(document.body).color === 'rgb(4, 5, 6)'",
                   timeout=RELOAD_S)
        b.pump(0.5 * SLOW)
        self.assertEqual(b.eval("window.__marker"), 42, "the page was reloaded")

    def test_config_error_shows_an_overlay_until_a_good_save(self):
        s = self.site(LUA_ROUTE)
        b = self.browse_live(s.url("/"))
        self.assertIsNone(b.eval(OVERLAY_TEXT))
        save(s.config_path, CONFIG_BAD)
        t = b.wait_for(OVERLAY_TEXT, timeout=CONFIG_S)
        note("overlay %.2fs after the bad save" % t)
        text = b.eval(OVERLAY_TEXT)
        self.assertIn("config.lua:%d:" % CONFIG_BAD_LINE, text)
        self.assertIn("expected near 'end'", text)  # Lua's own message
        # the old configuration goes on serving meanwhile
        self.assertEqual(curl(s.url("/lua"))[0], 200)
        # a good save, in place this time, reloads the page: no overlay, new config
        save_in_place(s.config_path, CONFIG_GOOD)
        t = b.wait_for(MARKER_GONE + " && document.readyState !== 'loading'"
                       " && !document.getElementById('__luahttpd_overlay')",
                       timeout=CONFIG_S)
        note("reloaded %.2fs after the good save" % t)
        self.assertEqual(curl(s.url("/x"))[2], b"x, fixed now")

    def test_page_from_a_lua_route_reloads_too(self):
        s = self.site(LUA_ROUTE, files={"notes.txt": "one\n"})
        b = self.browse_live(s.url("/lua"))
        self.assertEqual(b.eval("document.getElementById('l').textContent"), "1")
        save_in_place(os.path.join(s.www, "notes.txt"), "two, edited\n")
        t = b.wait_for(MARKER_GONE + " && document.getElementById('l') !== null",
                       timeout=RELOAD_S)
        note("reloaded %.2fs after the save" % t)

    def test_edit_in_a_subfolder_reloads(self):
        page = INDEX_1.replace("style.css", "/style.css")
        s = self.site(files={"app/page.html": page, "app/js/data.json": '{"v": 1}\n'})
        b = self.browse_live(s.url("/app/page.html"))
        save(os.path.join(s.www, "app/js/data.json"), '{"v": 2, "edited": true}\n')
        t = b.wait_for(MARKER_GONE + " && document.getElementById('v') !== null",
                       timeout=RELOAD_S)
        note("reloaded %.2fs after the save" % t)

    def test_windows_of_the_site_share_one_event_stream(self):
        """A browser opens at most 6 HTTP/1.1 connections to a server: if every window
        of the site (tabs, or same-origin iframes as in a component gallery) held an
        event stream of its own, the 6th would leave the pages none for their own
        requests, which would then wait for ever. The news still reaches them all."""
        frame = ('<!doctype html>\n<html><head><link rel="stylesheet" href="/style.css">'
                 '</head><body><p id="f">frame</p></body></html>\n')
        frames = "".join('<iframe src="/f%d.html"></iframe>' % i for i in range(6))
        top = INDEX_1.replace("</body>", frames + "</body>")
        files = {"f%d.html" % i: frame for i in range(6)}
        s = self.site(files={"index.html": top, "data.txt": "data", **files})
        b = self.browse_live(s.url("/"))
        b.wait_for("[...document.querySelectorAll('iframe')].every(f => f.contentDocument"
                   " && f.contentDocument.getElementById('f') && f.contentWindow.__luahttpd_live)",
                   timeout=3)
        fetched = ("Promise.race([fetch('/data.txt').then(r => r.text()),"
                   " new Promise(r => setTimeout(() => r('stalled'), 2000))])")
        self.assertEqual(b.eval(fetched), "data")
        # a stylesheet saved: swapped in every frame, none reloads
        wins = "[...document.querySelectorAll('iframe')].map(i => i.contentWindow)"
        b.eval("for (const f of %s) f.__marker = 42" % wins)
        save_in_place(os.path.join(s.www, "style.css"), CSS_2)
        b.wait_for("%s.every(f => f.getComputedStyle(f.document.body).color"
                   " === 'rgb(4, 5, 6)')" % wins, timeout=RELOAD_S)
        self.assertEqual(b.eval("%s.map(f => f.__marker)" % wins), [42] * 6)
        # a page saved: every window reloads
        save(os.path.join(s.www, "f5.html"), frame.replace("frame", "frame, saved"))
        b.wait_for(MARKER_GONE, timeout=RELOAD_S)
        b.wait_for("%s.length === 6 && %s.every(f => f.document.getElementById('f'))"
                   " && %s[5].document.getElementById('f').textContent === 'frame, saved'"
                   % (wins, wins, wins), timeout=3)
        self.assertEqual(b.eval(fetched), "data")
        # a failed reload: every window shows why, and so does one that opens later
        save(s.config_path, CONFIG_BAD)
        overlays = ("%s.every(f => { const o = f.document.getElementById('__luahttpd_overlay');"
                    " return o && o.textContent.includes('config.lua:%d:') })"
                    % (wins, CONFIG_BAD_LINE))
        b.wait_for(overlays, timeout=CONFIG_S)
        b.eval("document.querySelector('iframe').remove();"
               " document.body.appendChild(document.createElement('iframe')).src = '/f0.html'")
        b.wait_for(overlays, timeout=3)
        self.assertEqual(b.eval(fetched), "data")

    def test_nothing_live_without_dev(self):
        s = self.site(LUA_ROUTE, dev=False)
        for path in ("/", "/lua"):
            status, _, body = curl(s.url(path))
            self.assertEqual(status, 200)
            self.assertNotIn(b"__luahttpd", body, path)
        self.assertEqual(curl(s.url(EVENTS))[0], 404)
        self.assertEqual(curl(s.url(LIVE_JS))[0], 404)
        b = self.browse(s.url("/"))
        self.assertFalse(b.eval("!!document.querySelector('script[src*=\"__luahttpd\"]')"))
        b.eval("window.__marker = 42")
        save(os.path.join(s.www, "index.html"), INDEX_2)
        b.pump(RELOAD_S * SLOW)
        self.assertEqual(b.eval("window.__marker"), 42, "reloaded without --dev")
        self.assertEqual([u for u, _ in b.requests if "__luahttpd" in u], [])


if __name__ == "__main__":
    unittest.main()
