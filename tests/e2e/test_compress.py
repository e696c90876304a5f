"""CONTRACT section 8, compress: gzip of text responses over 1 KiB for clients that
send Accept-Encoding: gzip, static and from Lua; Vary: Accept-Encoding; a Range
request gets the identity bytes; compressed and identity ETags differ and each
gives its own 304; HEAD says the length GET sends."""

import gzip
import os
import time
import zlib

from harness import ServerTest, curl

JS = b"export function f(x) { return x * 2 }\n" * 3000     # 114 KiB: the coded-copy cache
CSS = b"body { color: rgb(1, 2, 3) }\n" * 200              # 5.8 KiB: the small-file cache
CONFIG = r'''
route("GET", "/big.json", function()
  local t = {} for i = 1, 200 do t[i] = { id = i, name = "item " .. i } end
  return t
end)
route("GET", "/small.json", function() return { ok = true } end)
route("GET", "/page", function() return string.rep("<p>hello</p>", 200) end)
route("GET", "/own", function()
  return 200, string.rep("x", 4000), { ["Content-Type"] = "text/plain",
                                      ["Content-Encoding"] = "identity" }
end)
route("GET", "/tagged", function()
  return 200, string.rep("y", 4000), { ["Content-Type"] = "text/plain", ETag = '"v1"' }
end)
route("GET", "/stream", function()
  local n = 0
  return 200, function()
    n = n + 1
    if n <= 3 then return string.rep("z", 2000) end
  end, { ["Content-Type"] = "text/plain" }
end)
'''
GZ = ("-H", "Accept-Encoding: gzip")


def gunzip(body):
    return gzip.decompress(body)


class Compress(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(CONFIG, files={
            "app.js": JS, "style.css": CSS, "tiny.css": b"p{}",
            "logo.png": os.urandom(4000), "pic.svgz": gzip.compress(b"<svg/>" * 500),
            "random.txt": os.urandom(3000)})

    def get(self, path, *args):
        return curl(*args, self.s.url(path))

    def test_static_files_decompress_to_the_identity_bytes(self):
        for name, data in (("app.js", JS), ("style.css", CSS)):
            status, h, body = self.get("/" + name, *GZ)
            self.assertEqual(h.get("content-encoding"), "gzip", name)
            self.assertEqual(h["vary"], "Accept-Encoding")
            self.assertEqual(int(h["content-length"]), len(body))
            self.assertLess(len(body), len(data) // 4)
            self.assertEqual(gunzip(body), data, name)
            # the same file without Accept-Encoding: identity, its own tag, still Vary
            status, h2, body = self.get("/" + name)
            self.assertNotIn("content-encoding", h2)
            self.assertEqual(h2["vary"], "Accept-Encoding")
            self.assertEqual(body, data)
            self.assertNotEqual(h["etag"], h2["etag"])
            # each tag gives a 304 for its own representation only
            for tag, args, want in ((h["etag"], GZ, 304), (h2["etag"], (), 304),
                                    (h2["etag"], GZ, 200), (h["etag"], (), 200)):
                status, h3, _ = self.get("/" + name, "-H", "If-None-Match: " + tag, *args)
                self.assertEqual(status, want, (name, tag, args))
                if status == 304:
                    self.assertEqual(h3["etag"], tag)

    def test_head_says_the_coded_length(self):
        _, h, body = self.get("/app.js", *GZ)
        _, h2, _ = self.get("/app.js", "-I", *GZ)
        self.assertEqual(h2["content-length"], h["content-length"])
        self.assertEqual(h2["content-encoding"], "gzip")

    def test_range_gets_identity_bytes(self):
        status, h, body = self.get("/app.js", "-r", "0-99", *GZ)
        self.assertEqual(status, 206)
        self.assertNotIn("content-encoding", h)
        self.assertEqual(body, JS[:100])

    def test_what_is_never_coded(self):
        for path, args in (("/tiny.css", GZ), ("/logo.png", GZ),
                           ("/app.js", ("-H", "Accept-Encoding: gzip;q=0")),
                           ("/app.js", ("-H", "Accept-Encoding: br")),
                           ("/random.txt", GZ),     # text that gzip cannot shrink
                           ("/small.json", GZ), ("/own", GZ), ("/stream", GZ)):
            status, h, body = self.get(path, *args)
            self.assertEqual(status, 200, path)
            self.assertNotEqual(h.get("content-encoding"), "gzip", (path, args))
        # a file stored coded keeps its own Content-Encoding, coded once
        status, h, body = self.get("/pic.svgz", *GZ)
        self.assertEqual(h["content-encoding"], "gzip")
        self.assertEqual(gunzip(body), b"<svg/>" * 500)
        # a stream arrives whole
        self.assertEqual(self.get("/stream", *GZ)[2], b"z" * 6000)

    def test_lua_responses(self):
        status, h, body = self.get("/big.json", *GZ)
        self.assertEqual(h["content-encoding"], "gzip")
        self.assertEqual(h["vary"], "Accept-Encoding")
        self.assertEqual(h["content-type"], "application/json")
        plain = self.get("/big.json")[2]
        self.assertEqual(gunzip(body), plain)
        self.assertIn(b'"item 200"', plain)
        status, h, body = self.get("/page", "--compressed")
        self.assertEqual(body, b"<p>hello</p>" * 200)
        # an ETag set by the handler names the identity body; the coded one differs
        _, h, body = self.get("/tagged", *GZ)
        self.assertEqual(h["etag"], '"v1-gzip"')
        self.assertEqual(self.get("/tagged")[1]["etag"], '"v1"')

    def test_a_changed_file_is_coded_again(self):
        for name, data in (("app.js", JS), ("style.css", CSS)):
            self.assertEqual(gunzip(self.get("/" + name, *GZ)[2]), data)
            new = data.replace(b"2", b"3")
            self.s.write(name, new)
            time.sleep(1.1)  # past the small-file cache's second
            self.assertEqual(gunzip(self.get("/" + name, *GZ)[2]), new, name)

    def test_curl_and_python_clients(self):
        # curl --compressed, as people use it
        status, h, body = self.get("/app.js", "--compressed")
        self.assertEqual((status, body), (200, JS))
        # a raw zlib stream reader: what browsers' decoders accept
        _, _, body = self.get("/style.css", *GZ)
        self.assertEqual(zlib.decompress(body, 16 + zlib.MAX_WBITS), CSS)

    def test_compress_false_sends_identity_without_vary(self):
        s = self.server("compress = false\n" + CONFIG, files={"app.js": JS})
        for path in ("/app.js", "/big.json"):
            status, h, body = curl("-H", "Accept-Encoding: gzip", s.url(path))
            self.assertEqual(status, 200)
            self.assertNotIn("content-encoding", h, path)
            self.assertNotIn("vary", h, path)
        self.assertEqual(body[:1], b"[")
