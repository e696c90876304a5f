"""CONTRACT section 4: static files."""

import os

from harness import SLOW, ServerTest, curl, get, raw, request

PAGE = "<h1>home</h1>"


class StaticFiles(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server("", files={
            "index.html": PAGE, "style.css": "b{}", "app.js": "1", "m.mjs": "1",
            "d.json": "{}", "i.png": b"\x89PNG", "i.svg": "<svg/>", "w.wasm": b"\0asm",
            "f.woff2": b"w", "r.txt": "0123456789", "x.unknownext": "?",
            "sub/index.html": "sub index", "nested/deep/file.txt": "deep",
            ".env": "SECRET=1", ".git/config": "[core]"})

    def test_get_and_head(self):
        status, h, body = curl(self.s.url("/index.html"))
        self.assertEqual((status, body), (200, PAGE.encode()))
        self.assertEqual(h["content-length"], str(len(PAGE)))
        status, h, _ = curl("-I", self.s.url("/index.html"))
        self.assertEqual(status, 200)
        self.assertEqual(h["content-length"], str(len(PAGE)))
        # over a raw socket HEAD really sends no body: the next response follows at once
        r, rd = request(self.s.port, b"HEAD /r.txt HTTP/1.1\r\nHost: x\r\n\r\n" + get("/r.txt"))
        self.assertEqual(r.header("Content-Length"), "10")
        self.assertEqual(rd.response().body, b"0123456789")

    def test_index_for_root_and_directories(self):
        self.assertEqual(curl(self.s.url("/"))[2], PAGE.encode())
        self.assertEqual(curl(self.s.url("/sub/"))[2], b"sub index")

    def test_directory_without_slash_redirects(self):
        status, h, _ = curl(self.s.url("/sub?a=1"))
        self.assertEqual(status, 301)
        self.assertTrue(h["location"].endswith("/sub/?a=1"), h["location"])

    def test_custom_index(self):
        s = self.server('index = "home.html"\n', files={"home.html": "custom"})
        self.assertEqual(curl(s.url("/"))[2], b"custom")

    def test_content_types(self):
        want = {"/index.html": "text/html", "/style.css": "text/css", "/app.js": "javascript",
                "/m.mjs": "javascript", "/d.json": "application/json", "/i.png": "image/png",
                "/i.svg": "image/svg+xml", "/w.wasm": "application/wasm",
                "/f.woff2": "font/woff2", "/r.txt": "text/plain",
                "/x.unknownext": "application/octet-stream"}
        for path, ctype in want.items():
            self.assertIn(ctype, curl(self.s.url(path))[1]["content-type"], path)

    def test_validators_and_304(self):
        _, h, _ = curl(self.s.url("/r.txt"))
        self.assertIn("last-modified", h)
        self.assertIn("etag", h)
        self.assertEqual(h["accept-ranges"], "bytes")
        status, _, body = curl("-H", "If-None-Match: " + h["etag"], self.s.url("/r.txt"))
        self.assertEqual((status, body), (304, b""))
        status, _, _ = curl("-H", 'If-None-Match: "other"', self.s.url("/r.txt"))
        self.assertEqual(status, 200)
        status, _, _ = curl("-H", "If-Modified-Since: " + h["last-modified"],
                            self.s.url("/r.txt"))
        self.assertEqual(status, 304)
        status, _, _ = curl("-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT",
                            self.s.url("/r.txt"))
        self.assertEqual(status, 200)

    def test_ranges(self):
        status, h, body = curl("-H", "Range: bytes=0-4", self.s.url("/r.txt"))
        self.assertEqual((status, body, h["content-range"]), (206, b"01234", "bytes 0-4/10"))
        status, h, body = curl("-H", "Range: bytes=-3", self.s.url("/r.txt"))
        self.assertEqual((status, body, h["content-range"]), (206, b"789", "bytes 7-9/10"))
        status, h, body = curl("-H", "Range: bytes=5-", self.s.url("/r.txt"))
        self.assertEqual((status, body), (206, b"56789"))
        status, h, _ = curl("-H", "Range: bytes=999999-", self.s.url("/r.txt"))
        self.assertEqual((status, h["content-range"]), (416, "bytes */10"))

    def test_other_methods_get_405(self):
        for method in ("POST", "PUT", "DELETE"):
            status, h, _ = curl("-X", method, self.s.url("/r.txt"))
            self.assertEqual(status, 405, method)
            self.assertEqual(h["allow"], "GET, HEAD")

    def test_dotfiles_hidden(self):
        for path in ("/.env", "/.git/config", "/.git/"):
            status, _, body = curl(self.s.url(path))
            self.assertEqual(status, 404, path)
            self.assertNotIn(b"SECRET", body)
        s = self.server("dotfiles = true\n", files={".env": "SECRET=1"})
        self.assertEqual(curl(s.url("/.env"))[:3:2], (200, b"SECRET=1"))

    def test_404_builtin_and_custom(self):
        status, _, body = curl(self.s.url("/missing"))
        self.assertEqual(status, 404)
        self.assertIn(b"404", body)
        s = self.server("", files={"404.html": "custom not found"})
        self.assertEqual(curl(s.url("/missing"))[:3:2], (404, b"custom not found"))

    def test_directory_listing(self):
        files = {"dir/a<b>&.txt": "x", "dir/plain.txt": "y", "dir/.hidden": "z"}
        s = self.server("", files=files)
        status, _, _ = curl(s.url("/dir/"))
        self.assertIn(status, (403, 404))
        s = self.server("autoindex = true\n", files=files)
        status, h, body = curl(s.url("/dir/"))
        self.assertEqual(status, 200)
        self.assertIn("text/html", h["content-type"])
        self.assertIn(b"plain.txt", body)
        self.assertIn(b"a&lt;b&gt;&amp;.txt", body)
        self.assertNotIn(b"<b>", body)
        self.assertNotIn(b".hidden", body)


class Traversal(ServerTest):
    """A secret file lies just outside the docroot; nothing may reach it."""

    def setUp(self):
        super().setUp()
        self.s = self.server("", files={"index.html": "ok", "inside.txt": "inside"})
        with open(os.path.join(self.s.dir, "secret.txt"), "w") as f:
            f.write("TOPSECRET")
        os.symlink(os.path.join(self.s.dir, "secret.txt"), os.path.join(self.s.www, "link"))
        os.symlink(self.s.dir, os.path.join(self.s.www, "up"))
        os.symlink("inside.txt", os.path.join(self.s.www, "good-link"))

    def assertRefused(self, target):
        resp = raw(self.s.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
        status = int(resp.split(b" ", 2)[1])
        self.assertIn(status, (403, 404), target)
        self.assertNotIn(b"TOPSECRET", resp, target)

    def test_traversal_attempts(self):
        for target in (b"/../secret.txt", b"/%2e%2e/secret.txt", b"/%2E%2E%2Fsecret.txt",
                       b"/..%2fsecret.txt", b"/..%5csecret.txt", b"/..\\secret.txt",
                       b"/a/../../secret.txt", b"/index.html%00.txt", b"/link",
                       b"/up/secret.txt", b"/up/", b"/%2e%2e%2f%2e%2e%2fetc/passwd",
                       b"/./../secret.txt"):
            self.assertRefused(target)

    def test_symlink_inside_docroot_is_served(self):
        self.assertEqual(curl(self.s.url("/good-link"))[:3:2], (200, b"inside"))


class MissingNames(ServerTest):
    """A name found missing at the top of the docroot (and the absence of 404.html) is
    remembered until the docroot directory changes: a file created, renamed into place
    or reached through a link that now resolves is served on the very next request."""

    def test_created_file_served_at_once(self):
        s = self.server("workers = 2\n")  # each worker keeps its own memory of misses
        for i in range(10):
            name = "new%d.txt" % i
            for _ in range(4):
                self.assertEqual(curl(s.url("/" + name))[0], 404)
            s.write(name, "made %d" % i)
            self.assertEqual(curl(s.url("/" + name))[:3:2], (200, b"made %d" % i))
        tmp = os.path.join(s.dir, "staged.txt")
        with open(tmp, "w") as f:
            f.write("renamed in")
        for _ in range(4):
            self.assertEqual(curl(s.url("/moved.txt"))[0], 404)
        os.rename(tmp, os.path.join(s.www, "moved.txt"))
        self.assertEqual(curl(s.url("/moved.txt"))[:3:2], (200, b"renamed in"))

    def test_404_page_appears_at_once(self):
        s = self.server("")
        for _ in range(4):
            status, _, body = curl(s.url("/nothing"))
            self.assertEqual(status, 404)
            self.assertNotIn(b"custom", body)
        s.write("404.html", "custom not found")
        self.assertEqual(curl(s.url("/nothing"))[:3:2], (404, b"custom not found"))
        os.unlink(os.path.join(s.www, "404.html"))
        status, _, body = curl(s.url("/nothing"))
        self.assertEqual(status, 404)
        self.assertNotIn(b"custom", body)

    def test_link_whose_target_appears(self):
        s = self.server("", files={"sub/other.txt": "x"})
        os.symlink("sub/target.txt", os.path.join(s.www, "link.txt"))
        for _ in range(4):
            self.assertEqual(curl(s.url("/link.txt"))[0], 404)
        s.write("sub/target.txt", "through the link")  # no change at the top level
        self.assertEqual(curl(s.url("/link.txt"))[:3:2], (200, b"through the link"))

    def test_nested_missing_then_created(self):
        s = self.server("", files={"sub/other.txt": "x"})
        for _ in range(4):
            self.assertEqual(curl(s.url("/sub/late.txt"))[0], 404)
        s.write("sub/late.txt", "late")
        self.assertEqual(curl(s.url("/sub/late.txt"))[:3:2], (200, b"late"))


class SmallFileCache(ServerTest):
    """Small files are kept in memory but never served stale for more than a second,
    and the cache never lets a path out of the docroot."""

    def test_changes_seen_within_a_second(self):
        import time
        s = self.server("", files={"a.txt": "one", "index.html": "home"})
        for _ in range(3):
            self.assertEqual(curl(s.url("/a.txt"))[2], b"one")
        etag = curl(s.url("/a.txt"))[1]["etag"]
        s.write("a.txt", "two")  # same size: only the time and inode tell
        self.wait_for(lambda: curl(s.url("/a.txt"))[2] == b"two", timeout=2.5, what="new content")
        self.assertNotEqual(curl(s.url("/a.txt"))[1]["etag"], etag)
        os.unlink(os.path.join(s.www, "a.txt"))
        self.wait_for(lambda: curl(s.url("/a.txt"))[0] == 404, timeout=2.5, what="404 after delete")
        s.write("index.html", "new home")
        self.wait_for(lambda: curl(s.url("/"))[2] == b"new home", timeout=2.5, what="new index")

    def test_cached_path_cannot_be_redirected_out(self):
        import time
        s = self.server("", files={"inside.txt": "inside"})
        with open(os.path.join(s.dir, "secret.txt"), "w") as f:
            f.write("TOPSECRET")
        link = os.path.join(s.www, "link")
        os.symlink("inside.txt", link)
        self.assertEqual(curl(s.url("/link"))[2], b"inside")
        os.unlink(link)
        os.symlink(os.path.join(s.dir, "secret.txt"), link)
        deadline = time.time() + 2.5 * SLOW  # a second of cache, and the requests' own time
        while time.time() < deadline:
            status, _, body = curl(s.url("/link"))
            self.assertNotIn(b"TOPSECRET", body)
            if status in (403, 404):
                break
            time.sleep(0.1)
        self.assertIn(status, (403, 404))

    def test_conditional_and_range_from_cache(self):
        s = self.server("", files={"r.txt": "0123456789"})
        _, h, _ = curl(s.url("/r.txt"))
        for _ in range(2):  # the second time from memory
            status, _, body = curl("-H", "Range: bytes=2-4", s.url("/r.txt"))
            self.assertEqual((status, body), (206, b"234"))
            self.assertEqual(curl("-H", "If-None-Match: " + h["etag"], s.url("/r.txt"))[0], 304)
            r, _ = request(s.port, b"HEAD /r.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(r.header("Content-Length"), "10")
