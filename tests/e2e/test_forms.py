"""CONTRACT section 3, "The request object": req.cookies, req.form and req.files,
through the real binary with what curl and Python send."""

import json
import os
import random
import subprocess
import tempfile

from harness import ServerTest, request

ROUTES = r'''
route("POST", "/form", function(req)
  local files = {}
  for name, f in pairs(req.files) do
    files[name] = { filename = f.filename, content_type = f.content_type or json.null,
                    size = f.size, data_len = #f.data }
  end
  return { form = req.form, files = files }
end)
-- the upload comes back as it arrived
route("POST", "/echo-file", function(req)
  local f = req.files.upload
  return f.data, { ["Content-Type"] = f.content_type }
end)
route("GET", "/cookies", function(req) return req.cookies end)
route("POST", "/caught", function(req)
  local ok, err = pcall(function() return req.form end)
  return { ok = ok, err = err }
end)
-- a form read in a before hook: the handler sees the same tables
before(function(req)
  if req.path == "/early" then req.ctx.name = req.form.name end
end)
route("POST", "/early", function(req)
  return { from_hook = req.ctx.name, same = req.form.name }
end)
'''


def curl_out(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "30", *args], capture_output=True,
                       timeout=40)
    assert p.returncode == 0, p.stderr
    return p.stdout


class Forms(ServerTest):
    def test_urlencoded(self):
        s = self.server(ROUTES)
        got = json.loads(curl_out("--data-urlencode", "q=a b&c=d/é", "-d", "x=1+2&x=3&flag",
                                  s.url("/form")))
        self.assertEqual(got, {"form": {"q": "a b&c=d/é", "x": "3", "flag": ""}, "files": {}})
        # not a form: empty tables, whatever the body
        got = json.loads(curl_out("-H", "Content-Type: application/json", "-d", '{"a":1}',
                                  s.url("/form")))
        self.assertEqual(got, {"form": {}, "files": {}})

    def test_multipart_fields_and_files(self):
        s = self.server(ROUTES)
        with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as f:
            f.write(b"a,b\r\n1,2\r\n")
        try:
            got = json.loads(curl_out("-F", "name=Ada Lovelace", "-F", "name=Ada",
                                      "-F", "note=line1\nline2",
                                      "-F", "doc=@%s;type=text/csv;filename=sheet\"1\".csv" % f.name,
                                      "-F", "empty=@/dev/null", s.url("/form")))
        finally:
            os.unlink(f.name)
        self.assertEqual(got["form"], {"name": "Ada", "note": "line1\nline2"})
        self.assertEqual(got["files"]["doc"],
                         # browsers and curl send a quote as %22, and it stays so
                         {"filename": "sheet%221%22.csv", "content_type": "text/csv",
                          "size": 10, "data_len": 10})
        self.assertEqual(got["files"]["empty"]["size"], 0)

    def test_a_900_kib_upload_comes_back_byte_identical(self):
        s = self.server(ROUTES)
        data = random.Random(12).randbytes(900 * 1024)
        data += b"\r\n--not-the-boundary\r\n\x00\xff"  # delimiter-like bytes stay data
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
        try:
            out = curl_out("-F", "upload=@%s;type=application/octet-stream" % f.name,
                           s.url("/echo-file"))
        finally:
            os.unlink(f.name)
        self.assertEqual(len(out), len(data))
        self.assertTrue(out == data)

    def test_malformed_forms_are_400(self):
        s = self.server(ROUTES)
        cases = [
            ("multipart/form-data; boundary=zz", b"not multipart at all"),
            ("multipart/form-data", b"--zz\r\n\r\nx\r\n--zz--\r\n"),          # no boundary
            ("multipart/form-data; boundary=zz",
             b"--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ncut short"),
            ("multipart/form-data; boundary=zz", b"--zz\r\n\r\nno headers\r\n--zz--\r\n"),
            ("application/x-www-form-urlencoded", b"a=%G1"),
        ]
        for ctype, body in cases:
            self.assertEqual(self.post(s, "/form", ctype, body)[0], 400, (ctype, body))
        # a handler that catches the error decides itself
        st, body = self.post(s, "/caught", "application/x-www-form-urlencoded", b"a=%4")[::2]
        self.assertEqual(st, 200)
        self.assertFalse(json.loads(body)["ok"])
        # and the server serves on
        self.assertEqual(self.post(s, "/form", "application/x-www-form-urlencoded",
                                   b"ok=1")[0], 200)

    def post(self, s, path, ctype, body):
        r, rd = request(s.port, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: " + ctype.encode() + b"\r\nContent-Length: " +
                        str(len(body)).encode() + b"\r\n\r\n" + body)
        return r.status, r.headers, r.body

    def test_a_before_hook_reads_the_form_too(self):
        s = self.server(ROUTES)
        got = json.loads(curl_out("-F", "name=Grace", s.url("/early")))
        self.assertEqual(got, {"from_hook": "Grace", "same": "Grace"})

    def test_cookies(self):
        s = self.server(ROUTES)
        got = json.loads(curl_out("-b", 'sid=abc123; theme="dark mode";bad; =x; sid=second',
                                  s.url("/cookies")))
        self.assertEqual(got, {"sid": "abc123", "theme": "dark mode"})
        # two Cookie headers (as some proxies send): both read
        r, _ = request(s.port, b"GET /cookies HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\n"
                               b"Cookie: b=2\r\n\r\n")
        self.assertEqual(json.loads(r.body), {"a": "1", "b": "2"})
        # none: an empty table
        self.assertEqual(curl_out(s.url("/cookies")), b"{}")
