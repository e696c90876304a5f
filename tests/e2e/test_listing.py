"""CONTRACT sections 4 and 7: folder listings. `autoindex` lists a folder that has no
index file; --dev makes it the default unless config.lua sets it. The page is a small
HTML5 table (name, size, modification time in UTC), folders first, every name escaped
for HTML and for its link."""

import os
import re
import urllib.parse

from harness import ServerTest, curl, request

ROW = re.compile(rb'<tr><td><a href="([^"]*)">([^<]*)</a></td><td class="r">([^<]*)</td>'
                 rb'<td>(?:<time datetime="([^"]*)">([^<]*)</time>)?</td></tr>')
WHEN = 1709993133  # 2024-03-09 14:05:33 UTC
HOSTILE = b"<script>&\"' x caf\xc3\xa9 \xff.txt"


def rows(body):
    """(href, text, size, datetime, shown time) for every row, in page order."""
    return ROW.findall(body)


class Listing(ServerTest):
    def test_dev_without_config_lists_folders(self):
        s = self.server(None, files={"docs/a.txt": "a", "docs/sub/b.txt": "b"}, args=["--dev"])
        for path, want in (("/", [b"docs/"]), ("/docs/", [b"../", b"sub/", b"a.txt"])):
            status, h, body = curl(s.url(path))
            self.assertEqual(status, 200, path)
            self.assertEqual(h["content-type"], "text/html; charset=utf-8")
            self.assertEqual([r[0] for r in rows(body)], want, body)
        # an index file still wins over the listing
        s.write("docs/index.html", "home")
        self.assertEqual(curl(s.url("/docs/"))[:3:2], (200, b"home"))

    def test_not_listed_without_dev(self):
        s = self.server(None, files={"docs/a.txt": "a"})
        status, _, body = curl(s.url("/docs/"))
        self.assertEqual(status, 403)
        self.assertNotIn(b"a.txt", body)

    def test_explicit_false_wins_in_dev_until_removed(self):
        s = self.server("autoindex = false\n", files={"docs/a.txt": "a"}, args=["--dev"])
        status, _, body = curl(s.url("/docs/"))
        self.assertEqual(status, 403)
        self.assertNotIn(b"a.txt", body)
        # the file no longer sets it: the reload --dev does brings the --dev default
        s.rewrite_config("-- autoindex left to --dev\n")
        self.wait_for(lambda: curl(s.url("/docs/"))[0] == 200, timeout=3,
                      what="the reload to list the folder")
        self.assertIn(b'href="a.txt"', curl(s.url("/docs/"))[2])

    def test_page_markup(self):
        s = self.server(None, files={"d/e/f.txt": "f"}, args=["--dev"])
        status, h, body = curl(s.url("/d/"))
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertTrue(body.startswith(b"<!DOCTYPE html>"), body[:40])
        for marker in (b'<meta name="viewport" content="width=device-width, initial-scale=1">',
                       b'<meta name="color-scheme" content="light dark">',
                       b"prefers-color-scheme:dark", b"<title>Index of /d/</title>",
                       b"<h1>Index of /d/</h1>", b'<a href="../">../</a>'):
            self.assertIn(marker, body)
        self.assertNotIn(b'href="../"', curl(s.url("/"))[2])  # nothing above the docroot
        # HEAD: the same headers, no body; no slash: the usual 301
        r, _ = request(s.port, b"HEAD /d/ HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.header("Content-Length"), str(len(body)))
        status, h, _ = curl(s.url("/d?x=1"))
        self.assertEqual(status, 301)
        self.assertTrue(h["location"].endswith("/d/?x=1"), h["location"])

    def test_order_sizes_and_dates(self):
        files = {"l/b.txt": b"x" * 1536, "l/A.txt": b"", "l/c.txt": b"x" * 1023,
                 "l/zdir/x": "x", "l/Bdir/x": "x", "l/adir/x": "x"}
        s = self.server(None, files=files, args=["--dev"])
        big = os.path.join(s.www, "l", "big.iso")
        with open(big, "wb") as f:
            f.truncate(5 << 30)  # sparse: 5 GiB that take no room
        for name in ("b.txt", "A.txt", "c.txt", "big.iso", "zdir", "Bdir", "adir"):
            os.utime(os.path.join(s.www, "l", name), (WHEN, WHEN))
        status, _, body = curl(s.url("/l/"))
        self.assertEqual(status, 200)
        got = rows(body)
        # folders first, then files; by name without regard to case
        self.assertEqual([r[1] for r in got], [b"../", b"adir/", b"Bdir/", b"zdir/", b"A.txt",
                                               b"b.txt", b"big.iso", b"c.txt"], body)
        sizes = {r[1]: r[2] for r in got}
        self.assertEqual(sizes[b"A.txt"], b"0 B")
        self.assertEqual(sizes[b"c.txt"], b"1023 B")
        self.assertEqual(sizes[b"b.txt"], b"1.5 KiB")
        self.assertEqual(sizes[b"big.iso"], b"5.0 GiB")
        self.assertEqual(sizes[b"adir/"], "\u2014".encode())
        for r in got[1:]:
            self.assertEqual(r[3:], (b"2024-03-09T14:05:33Z", b"2024-03-09 14:05"), r)

    def test_hostile_name_escaped_and_its_link_works(self):
        s = self.server(None, files={"h/plain.txt": "p"}, args=["--dev"])
        data = b"the hostile file\n"
        with open(os.path.join(os.fsencode(s.www), b"h", HOSTILE), "wb") as f:
            f.write(data)
        os.mkdir(os.path.join(os.fsencode(s.www), b"h", b"a&b <dir>"))
        status, _, body = curl(s.url("/h/"))
        self.assertEqual(status, 200)
        self.assertNotIn(b"<script>", body)
        links = {r[1]: r[0] for r in rows(body)}
        text = b"&lt;script&gt;&amp;&quot;&#39; x caf\xc3\xa9 \xff.txt"
        self.assertIn(text, links, body)
        self.assertEqual(links[text], b"%3Cscript%3E%26%22%27%20x%20caf%C3%A9%20%FF.txt")
        self.assertEqual(links[b"a&amp;b &lt;dir&gt;/"], b"a%26b%20%3Cdir%3E/")
        # every href only uses unreserved characters, '/' and %XX
        for href in links.values():
            self.assertRegex(href, rb"^([A-Za-z0-9._~/-]|%[0-9A-F]{2})*$")
        # the link leads to the file
        href = links[text].decode()
        self.assertEqual(urllib.parse.unquote_to_bytes(href), HOSTILE)
        self.assertEqual(curl(s.url("/h/" + href))[:3:2], (200, data))
        self.assertEqual(curl(s.url("/h/" + links[b"a&amp;b &lt;dir&gt;/"].decode()))[0], 200)

    def test_dotfiles_hidden_unless_allowed(self):
        files = {"p/.env": "SECRET=1", "p/.git/config": "[core]", "p/shown.txt": "s"}
        s = self.server(None, files=files, args=["--dev"])
        status, _, body = curl(s.url("/p/"))
        self.assertEqual(status, 200)
        self.assertEqual([r[0] for r in rows(body)], [b"../", b"shown.txt"])
        self.assertNotIn(b".env", body)
        self.assertNotIn(b".git", body)
        s = self.server("dotfiles = true\n", files=files, args=["--dev"])
        body = curl(s.url("/p/"))[2]
        self.assertEqual([r[0] for r in rows(body)], [b"../", b".git/", b".env", b"shown.txt"])
        self.assertEqual(curl(s.url("/p/.env"))[:3:2], (200, b"SECRET=1"))
