"""CONTRACT section 5, strict parsing (RFC 9112): the request-target's bytes (RFC 3986),
the Host value, chunk extensions and trailer lines, and transfer codings. Each refusal
closes the connection, and the server goes on serving other clients, on a connection
opened before the refusal and on a new one."""

from harness import Reader, ServerTest, connect, curl, get

ROUTES = r'''
route("GET", "/host", function(req) return "host=[" .. tostring(req.headers.host) .. "]" end)
route("GET", "/q", function(req) return "q=[" .. tostring(req.query.q) .. "]" end)
route("POST", "/echo", function(req) return "body=[" .. req.body .. "]" end)
'''

CAFE = "caf\u00e9.txt"   # a file whose name is UTF-8 on disk
CHUNKED = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


class ParserRfc(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server(ROUTES, files={"a.txt": "A", CAFE: "cafe"})

    def assertAnswer(self, data, status, body=None):
        """One request on a new connection gets status (and body); a refusal then
        closes the connection."""
        s = connect(self.s.port)
        try:
            s.sendall(data)
            rd = Reader(s)
            r = rd.response()
            self.assertEqual(r.status, status, data[:100])
            if body is not None:
                self.assertEqual(r.body, body, data[:100])
            if status >= 400:
                self.assertTrue(rd.closed(), "left open after %d: %r" % (status, data[:100]))
        finally:
            s.close()

    def assertServed(self, data, body):
        self.assertAnswer(data, 200, body)

    def assertRefused(self, data, status=400):
        """data gets status and a closed connection; a client connected before it and
        one connecting after it are still served."""
        other = connect(self.s.port)
        try:
            other.sendall(get("/a.txt"))
            rd = Reader(other)
            self.assertEqual(rd.response().body, b"A")
            self.assertAnswer(data, status)
            other.sendall(get("/a.txt"))
            self.assertEqual(rd.response().body, b"A")
        finally:
            other.close()
        self.assertEqual(curl(self.s.url("/a.txt"))[2], b"A")

    # ---- item 20: the request-target ----------------------------------------------

    def test_raw_utf8_in_target_refused(self):
        # one name, three spellings: only the percent-encoded one is a valid target
        self.assertRefused(b"GET /caf\xc3\xa9.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertRefused(b"GET /caf\xc3%A9.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertRefused(b"GET /q?q=caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertRefused(b"GET /\x80 HTTP/1.0\r\n\r\n")
        self.assertServed(get("/caf%C3%A9.txt"), b"cafe")
        self.assertServed(get("/caf%c3%a9.txt"), b"cafe")
        self.assertEqual(curl(self.s.url("/caf%C3%A9.txt"))[2], b"cafe")
        self.assertServed(get("/q?q=caf%C3%A9"), "q=[caf\u00e9]".encode())

    def test_bad_percent_escape_refused(self):
        # malformed like the rest: 400 and the close, so what follows is not read
        for path in (b"/f%zz", b"/f%2", b"/f%", b"/q%g1?q=a"):
            self.assertRefused(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertRefused(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n" + get("/a.txt"))

    def test_fragment_and_userinfo_refused(self):
        self.assertRefused(get("/a.txt#frag"))
        self.assertRefused(get("/x/..#/../a.txt"))
        self.assertRefused(get("http://user@x/a.txt"))
        self.assertRefused(get("http://user:pw@x/a.txt"))
        self.assertServed(get("http://x/a.txt"), b"A")
        self.assertServed(get("http://[::1]:8080/a.txt"), b"A")

    def test_ascii_that_browsers_send_raw_is_tolerated(self):
        # WHATWG URL leaves these unencoded in a query; curl sends them as typed
        self.assertServed(get('/q?q={"a":[1]}|^`\\<>'), b'q=[{"a":[1]}|^`\\<>]')
        self.assertEqual(curl("-g", self.s.url("/q?q=[1]|{2}"))[2], b"q=[[1]|{2}]")

    # ---- item 21: Host ------------------------------------------------------------

    def test_invalid_host_refused_before_lua(self):
        for host in (b"a b", b"a/b", b"u@a", b"a:b", b"a:80:80", b"[::1", b"[::1]x",
                     b"[1.2.3.4]", b"a%zz", b"caf\xc3\xa9", b"a?b"):
            self.assertRefused(b"GET /host HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        self.assertRefused(b"GET /host HTTP/1.0\r\nHost: a b\r\n\r\n")

    def test_valid_hosts_reach_lua(self):
        for host in (b"example.com", b"example.com:8080", b"127.0.0.1:80", b"[::1]",
                     b"[2001:db8::1]:8080", b"a:", b"xn--caf-dma.example", b"a_b-c~d"):
            self.assertServed(b"GET /host HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
                              b"host=[" + host + b"]")
        # RFC 9112 3.2: an empty Host is valid
        self.assertServed(b"GET /host HTTP/1.1\r\nHost:\r\n\r\n", b"host=[]")
        self.assertEqual(curl(self.s.url("/host"))[2],
                         ("host=[127.0.0.1:%d]" % self.s.port).encode())

    # ---- item 22: chunk extensions and trailers -----------------------------------

    def test_bad_chunk_extensions_and_trailers_refused(self):
        for chunks in (b"2;\r\nab\r\n0\r\n\r\n",                 # no name
                       b"2;a=\"b\r\nab\r\n0\r\n\r\n",            # unclosed quote
                       b"2;a=\"b\\\"\r\nab\r\n0\r\n\r\n",        # the quote is escaped
                       b"2;a=\r\nab\r\n0\r\n\r\n",               # '=' without a value
                       b"2;a b\r\nab\r\n0\r\n\r\n",
                       b"2 \r\nab\r\n0\r\n\r\n",
                       b"2\r\nab\r\n0\r\nNo-colon\r\n\r\n",      # a trailer line
                       b"2\r\nab\r\n0\r\nX : y\r\n\r\n"):
            self.assertRefused(CHUNKED + chunks)

    def test_valid_chunk_extensions_ignored(self):
        self.assertServed(CHUNKED + b"2 ; a = b ;c;d=\"e; \\\"f\\\"\"\r\nab\r\n"
                          b"1;g=h\r\nc\r\n0;i\r\nX-T: 1\r\nY:\r\n\r\n", b"body=[abc]")

    # ---- item 23: transfer codings ------------------------------------------------

    def test_unsupported_coding_gets_501_and_close(self):
        body = b"2\r\nab\r\n0\r\n\r\n"
        for te in (b"deflate, chunked", b"gzip, chunked", b"gzip\r\nTransfer-Encoding: chunked"):
            self.assertRefused(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                               b"\r\n\r\n" + body, 501)

    def test_ambiguous_codings_get_400(self):
        for te in (b"chunked, chunked", b"chunked, gzip", b"gzip", b"", b",",
                   b"chunked;q=1", b"chunked\r\nTransfer-Encoding: chunked"):
            self.assertRefused(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                               b"\r\n\r\n2\r\nab\r\n0\r\n\r\n")
        # HTTP/1.0 and Content-Length: 400 even for a coding that would get 501
        self.assertRefused(b"POST /echo HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
        self.assertRefused(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                           b"Transfer-Encoding: gzip, chunked\r\n\r\nab")

    def test_empty_list_elements_ignored(self):
        self.assertServed(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , Chunked ,\r\n"
                          b"\r\n2\r\nab\r\n0\r\n\r\n", b"body=[ab]")
