"""CONTRACT sections 4 and 7, where the file system shows through: symbolic links
(absolute ones that stay inside the docroot are served, none that lead out are),
what a directory listing shows, edits that keep a file's size and modification
time, and Content-Type for the less common extensions.

The link checks run twice: as the kernel gives them (openat2), and with openat2
answered ENOSYS by a seccomp filter set up before the server starts, which is what
old kernels and valgrind 3.19 answer (the e2e suite also runs under valgrind), so
the server's other way of confining files is held to the same behaviour."""

import ctypes
import errno
import gzip
import os
import re
import struct
import subprocess
import sys
import threading
import time

from harness import SLOW, ServerTest, curl, raw

SECRET = b"TOPSECRET"
SYS_OPENAT2 = 437  # the same number on every Linux architecture


def no_openat2():
    """preexec_fn: from here on (across exec) openat2 fails with ENOSYS."""
    libc = ctypes.CDLL(None, use_errno=True)
    # seccomp BPF: A = seccomp_data.nr; A == openat2 ? ERRNO(ENOSYS) : ALLOW
    insns = [(0x20, 0, 0, 0), (0x15, 0, 1, SYS_OPENAT2),
             (0x06, 0, 0, 0x00050000 | errno.ENOSYS), (0x06, 0, 0, 0x7fff0000)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(insns), ctypes.addressof(code))
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        os._exit(126)


def filter_works():
    """Whether no_openat2 really makes openat2 answer ENOSYS here."""
    probe = ("import ctypes; l = ctypes.CDLL(None, use_errno=True); "
             "l.syscall(%d, -100, b'/', None, 24); print(ctypes.get_errno())" % SYS_OPENAT2)
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       preexec_fn=no_openat2, timeout=30)
    return p.returncode == 0 and p.stdout.strip() == str(errno.ENOSYS)


class Links:
    """A docroot with links of every kind, and secrets just outside it (a mixin: the
    classes below run it with and without openat2)."""
    preexec = None

    def start(self, config=""):
        s = self.server(config, files={
            "index.html": "home", "sub/page.html": "sub page", "d/index.html": "d index",
            "pub/a.txt": "aaaaa"},
            dirfiles={"outside/secret.txt": SECRET.decode(),
                      "outside/dir/index.html": SECRET.decode(),
                      "www2/secret.txt": SECRET.decode()},
            preexec=self.preexec)
        www, out = s.www, os.path.join(s.dir, "outside")
        links = {
            # absolute, staying inside
            "abs.html": os.path.join(www, "index.html"),
            "absdir": os.path.join(www, "d"),
            "abssub": os.path.join(www, "sub"),
            "self": www,
            "idx/index.html": os.path.join(www, "index.html"),  # a directory's index
            "via-dotdot.html": os.path.join(www, "sub", "..", "index.html"),
            "abs-missing": os.path.join(www, "nothing-here"),
            # relative, staying inside
            "rel.html": "index.html",
            # leading out
            "out-abs.txt": os.path.join(out, "secret.txt"),
            "out-rel.txt": "../outside/secret.txt",
            "out-absdir": os.path.join(out, "dir"),
            "out-reldir": "../outside/dir",
            "out-dotdot.txt": os.path.join(www, "..", "outside", "secret.txt"),
            "out-chain.txt": os.path.join(www, "out-rel.txt"),  # absolute to a link out
            "out-missing": os.path.join(out, "nothing-here"),
            "out-sibling.txt": www + "2/secret.txt",  # its path starts like the docroot's
            "outidx/index.html": os.path.join(out, "dir", "index.html"),
            "up": s.dir,
        }
        for name, target in links.items():
            os.makedirs(os.path.dirname(os.path.join(www, name)), exist_ok=True)
            os.symlink(target, os.path.join(www, name))
        return s

    def get(self, s, path):
        """status and body over a raw socket (paths are sent exactly as given)."""
        resp = raw(s.port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
        head, _, body = resp.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    def assertServed(self, s, path, body):
        self.assertEqual(self.get(s, path), (200, body), path)

    def assertRefused(self, s, path):
        status, body = self.get(s, path)
        self.assertIn(status, (403, 404), path)
        self.assertNotIn(SECRET, body, path)

    def test_absolute_links_inside_are_served(self):
        s = self.start()
        self.assertServed(s, "/abs.html", b"home")
        self.assertServed(s, "/rel.html", b"home")
        self.assertServed(s, "/absdir/", b"d index")
        self.assertServed(s, "/absdir/index.html", b"d index")
        self.assertServed(s, "/abssub/page.html", b"sub page")
        self.assertServed(s, "/self/sub/page.html", b"sub page")
        self.assertServed(s, "/self/", b"home")
        self.assertServed(s, "/idx/", b"home")
        self.assertServed(s, "/via-dotdot.html", b"home")
        status, _ = self.get(s, "/absdir")  # a directory: 301 to the slash, as usual
        self.assertEqual(status, 301)
        self.assertEqual(self.get(s, "/abs-missing")[0], 404)
        # twice more: the small-file cache answers the same
        for _ in range(2):
            self.assertServed(s, "/abs.html", b"home")

    def test_links_leading_out_are_refused(self):
        s = self.start()
        for path in ("/out-abs.txt", "/out-rel.txt", "/out-absdir/", "/out-absdir/index.html",
                     "/out-reldir/", "/out-reldir/index.html", "/out-dotdot.txt",
                     "/out-chain.txt", "/out-missing", "/out-sibling.txt", "/outidx/",
                     "/outidx/index.html", "/up/", "/up/outside/secret.txt",
                     "/self/out-abs.txt", "/absdir/../out-abs.txt", "/out-absdir"):
            for _ in range(2):
                self.assertRefused(s, path)

    def test_listing_shows_only_what_is_served(self):
        s = self.start('autoindex = true\nindex = "main.html"\n')
        pub = os.path.join(s.www, "pub")
        os.symlink(os.path.join(s.dir, "outside", "secret.txt"), os.path.join(pub, "shadow"))
        os.symlink("../../outside/secret.txt", os.path.join(pub, "rel-out"))
        os.symlink(os.path.join(s.dir, "outside"), os.path.join(pub, "etc"))
        os.symlink(os.path.join(pub, "a.txt"), os.path.join(pub, "abs-in"))
        os.symlink("a.txt", os.path.join(pub, "rel-in"))
        os.symlink(s.www, os.path.join(pub, "root"))
        os.symlink("nowhere", os.path.join(pub, "dangling"))
        os.mkfifo(os.path.join(pub, "fifo"))
        with open(os.path.join(pub, "back\\slash.txt"), "w") as f:
            f.write("no request can name it")
        status, body = self.get(s, "/pub/")
        self.assertEqual(status, 200)
        names = re.findall(rb'<a href="([^"]*)">', body)
        self.assertEqual(sorted(names), sorted([b"../", b"root/", b"a.txt", b"abs-in",
                                                b"rel-in"]), body)
        # sizes are those of a.txt (itself and both links to it), never the secret's
        sizes = re.findall(rb'</a></td><td class="r">([^<]*)</td>', body)
        self.assertEqual(sorted(sizes), [b"", b"5 B", b"5 B", b"5 B", "\u2014".encode()], body)
        for name in names:  # every entry listed is served
            if name != b"../":
                self.assertEqual(self.get(s, "/pub/" + name.decode())[0], 200, name)
        # the top of the docroot (no main.html there): the same rule
        status, body = self.get(s, "/")
        self.assertEqual(status, 200)
        for name in (b"out-abs.txt", b"out-rel.txt", b"out-absdir", b"out-reldir", b"up",
                     b"out-dotdot.txt", b"out-chain.txt", b"out-missing", b"abs-missing",
                     b"out-sibling.txt"):
            self.assertNotIn(b'href="' + name, body, name)
        for name in (b"absdir/", b"self/", b"sub/", b"idx/", b"outidx/", b"abs.html",
                     b"rel.html", b"via-dotdot.html", b"index.html"):
            self.assertIn(b'href="' + name + b'"', body, name)

    def test_link_swapped_while_serving(self):
        """A link flipped between a file inside and the secret outside, while requests
        run: each answer is the inside file or a refusal, never the secret."""
        s = self.start()
        link = os.path.join(s.www, "flip.txt")
        targets = [os.path.join(s.www, "pub", "a.txt"),
                   os.path.join(s.dir, "outside", "secret.txt")]
        os.symlink(targets[0], link)
        stop = threading.Event()

        def flip():
            i = 0
            while not stop.is_set() and i < 100000:
                i += 1
                tmp = link + ".tmp"
                os.symlink(targets[i % 2], tmp)
                os.replace(tmp, link)

        t = threading.Thread(target=flip)
        t.start()
        try:
            deadline = time.time() + 3 * SLOW
            for _ in range(150):
                if time.time() > deadline:
                    break
                status, body = self.get(s, "/flip.txt")
                self.assertNotIn(SECRET, body)
                self.assertIn((status, body if status == 200 else b""),
                              ((200, b"aaaaa"), (403, b""), (404, b"")))
        finally:
            stop.set()
            t.join(10)


class LinksOpenat2(Links, ServerTest):
    """As the kernel gives it (under valgrind, this too runs without openat2)."""


class LinksWithoutOpenat2(Links, ServerTest):
    """The same, with openat2 unavailable (as under valgrind)."""
    preexec = staticmethod(no_openat2)

    def setUp(self):
        super().setUp()
        if not filter_works():
            self.skipTest("cannot install a seccomp filter here")


class SameSizeEdits(ServerTest):
    """cp -p, rsync -t, tar -x: new content with the old size and modification time.
    Only the change time (which nobody can set) tells."""

    def rewrite_keeping_times(self, path, old, new):
        self.assertEqual(len(old), len(new))
        st = os.stat(path)
        time.sleep(0.02)  # let the clock move past the file's change time
        with open(path, "r+b") as f:
            f.write(new)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        after = os.stat(path)
        # what the server saw before, but for the change time
        self.assertEqual((after.st_size, after.st_mtime_ns, after.st_ino),
                         (st.st_size, st.st_mtime_ns, st.st_ino))
        self.assertNotEqual(after.st_ctime_ns, st.st_ctime_ns)

    def test_static_file(self):
        s = self.server("", files={"v.txt": "version A"})
        for _ in range(3):  # the small-file cache holds it now
            status, h, body = curl(s.url("/v.txt"))
            self.assertEqual((status, body), (200, b"version A"))
        etag = h["etag"]
        self.rewrite_keeping_times(os.path.join(s.www, "v.txt"), b"version A", b"version B")
        # the cache trusts an entry for the rest of the second it was checked in
        self.wait_for(lambda: curl(s.url("/v.txt"))[2] == b"version B", timeout=3,
                      what="the new content")
        # and a client holding the old ETag gets the new content, not a 304
        status, h, body = curl("-H", "If-None-Match: " + etag, s.url("/v.txt"))
        self.assertEqual((status, body), (200, b"version B"))
        self.assertNotEqual(h["etag"], etag)
        self.assertEqual(curl("-H", "If-None-Match: " + h["etag"], s.url("/v.txt"))[0], 304)

    def test_dev_reloads_config(self):
        s = self.server('route("GET", "/v", function() return "version A" end)\n',
                        args=["--dev"])
        self.assertEqual(curl(s.url("/v"))[2], b"version A")
        with open(s.config_path, "rb") as f:
            old = f.read()
        self.rewrite_keeping_times(s.config_path, old, old.replace(b"version A", b"version B"))
        self.wait_for(lambda: curl(s.url("/v"))[2] == b"version B", timeout=3,
                      what="the reload")

    def test_dev_reloads_required_module(self):
        s = self.server('require("greet")\n', args=["--dev"],
                        dirfiles={"scripts/greet.lua":
                                  'route("GET", "/g", function() return "hi A" end)\n'})
        self.assertEqual(curl(s.url("/g"))[2], b"hi A")
        path = os.path.join(s.dir, "scripts", "greet.lua")
        with open(path, "rb") as f:
            old = f.read()
        self.rewrite_keeping_times(path, old, old.replace(b"hi A", b"hi B"))
        self.wait_for(lambda: curl(s.url("/g"))[2] == b"hi B", timeout=3, what="the reload")


class ContentTypes(ServerTest):
    def test_web_types(self):
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
        files = {"captions.vtt": "WEBVTT\n", "lib.cjs": "module.exports = 1\n",
                 "scene.gltf": "{}", "scene.glb": b"glTF", "cal.ics": "BEGIN:VCALENDAR",
                 "feed.rss": "<rss/>", "feed.atom": "<feed/>", "c.toml": "a = 1",
                 "i.jxl": b"\xff\x0a", "i.avif": b"\0", "app.webmanifest": "{}",
                 "app.js.map": "{}", "m.mjs.map": "{}", "icon.svgz": gzip.compress(svg),
                 "FILE.VTT": "WEBVTT\n"}
        s = self.server("", files=files)
        want = {"captions.vtt": "text/vtt; charset=utf-8",
                "FILE.VTT": "text/vtt; charset=utf-8",
                "lib.cjs": "text/javascript; charset=utf-8",
                "scene.gltf": "model/gltf+json; charset=utf-8",
                "scene.glb": "model/gltf-binary",
                "cal.ics": "text/calendar; charset=utf-8",
                "feed.rss": "application/rss+xml; charset=utf-8",
                "feed.atom": "application/atom+xml; charset=utf-8",
                "c.toml": "application/toml; charset=utf-8",
                "i.jxl": "image/jxl", "i.avif": "image/avif",
                "app.webmanifest": "application/manifest+json; charset=utf-8",
                "app.js.map": "application/json; charset=utf-8",
                "m.mjs.map": "application/json; charset=utf-8",
                "icon.svgz": "image/svg+xml; charset=utf-8"}
        for name, ctype in want.items():
            status, h, _ = curl(s.url("/" + name))
            self.assertEqual((status, h["content-type"]), (200, ctype), name)
            self.assertEqual("content-encoding" in h, name == "icon.svgz", name)
        # .svgz is gzip-compressed SVG: a browser (or curl --compressed) gets the SVG
        status, h, body = curl("--compressed", s.url("/icon.svgz"))
        self.assertEqual((status, h["content-encoding"], body), (200, "gzip", svg))
        status, h, body = curl(s.url("/icon.svgz"))  # without: the bytes of the file
        self.assertEqual(body, files["icon.svgz"])
        status, h, _ = curl("-I", s.url("/icon.svgz"))
        self.assertEqual(h["content-encoding"], "gzip")
