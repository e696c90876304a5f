"""Backends on 127.0.0.1 for the outbound-HTTP tests (test_http_client.py): a
keep-alive HTTP/1.1 server that counts the connections it accepted, and a raw
socket server that plays a script per connection (a malformed head, a close in
the middle of a body, silence). Each runs in daemon threads of the test process
and stops with close()."""

import hashlib
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def any(self):
        path, _, query = self.path.partition("?")
        self.server.paths.append(self.path)
        q = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path == "/slow":
            time.sleep(float(q.get("s", "2")))
            return self.reply(200, "slow")
        if path == "/echo" or path.startswith("/echo/"):
            return self.reply(200, json.dumps({
                "method": self.command, "path": self.path,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
                "body": self.body().decode("latin-1")}),
                [("Content-Type", "application/json"), ("X-Backend", "yes")])
        if path == "/cookies":
            return self.reply(200, "c", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                                         ("Connection", "X-Drop"), ("X-Drop", "1"),
                                         ("Keep-Alive", "timeout=5")])
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"chunk", b"ed ", b"body"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True
            return
        if path == "/big":
            n = int(q.get("n", "1048576"))
            data = (b"0123456789abcdef" * (n // 16 + 1))[:n]
            return self.reply(200, data, [("X-Sha", hashlib.sha256(data).hexdigest())])
        if path == "/bigchunked":
            n = int(q.get("n", "1048576"))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, n, 65536):
                piece = b"c" * min(65536, n - i)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/redirect":
            return self.reply(int(q.get("code", "302")), "", [("Location", q.get("to", "/echo"))])
        if path == "/status":
            return self.reply(int(q.get("code", "200")), "status " + q.get("code", "200"))
        return self.reply(200, "hello", [("X-B", "b-value")])

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = any

    def handle_one_request(self):
        # any method token (PROPFIND, ...) goes to any()
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self.any()
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.paths = []
        self.tls = tls
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request, client_address):
        pass  # a client that went away (the tests make them) is no news

    def get_request(self):
        sock, addr = super().get_request()
        self.connections += 1
        return sock, addr

    @property
    def port(self):
        return self.server_address[1]

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def close(self):
        self.shutdown()
        self.server_close()


class Scripted:
    """Plays script(conn) for every connection accepted on 127.0.0.1; counts them
    and notes when a peer closed on its own (peer_closed)."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.connections = 0
        self.peer_closed = threading.Event()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            c.settimeout(30)
            self.script(self, c)
        except OSError:
            pass
        finally:
            c.close()

    def read_head(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None
            buf += d
        return buf

    def wait_peer_close(self, c, limit=30):
        """Block until the peer closes c (then set peer_closed)."""
        c.settimeout(limit)
        while True:
            d = c.recv(65536)
            if not d:
                self.peer_closed.set()
                return

    def close(self):
        self.stopping = True
        self.sock.close()


def self_signed(folder, name="localhost"):
    """A key and a self-signed certificate for name (a DNS name only, no IP
    address) made with the openssl tool; returns (certfile, keyfile)."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", key, "-out", cert, "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def tls_server(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return Server(tls=ctx).start()
