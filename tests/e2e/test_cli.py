"""CONTRACT section 2 (command line, exit codes) and the settings of section 3."""

import os
import re
import socket
import tempfile

from harness import BINARY, ServerTest, curl, run


class CommandLine(ServerTest):
    def test_version_and_help(self):
        for flag in ("-v", "--version"):
            code, out, _ = run([flag])
            self.assertEqual(code, 0)
            self.assertRegex(out, r"^luahttpd \d+\.\d+\.\d+")
        for flag in ("-h", "--help"):
            code, out, _ = run([flag])
            self.assertEqual(code, 0)
            self.assertIn("usage", out.lower())
            self.assertIn("--check", out)

    def test_bad_usage_exits_2(self):
        for args in (["--bogus"], ["-p"], ["-p", "notaport"], ["-p", "70000"], ["-w", "0"],
                     ["extra-arg"]):
            code, _, err = run(args)
            self.assertEqual(code, 2, args)
            self.assertIn("usage", err.lower(), args)

    def test_check_good_config(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "html"))
            path = os.path.join(d, "config.lua")
            with open(path, "w") as f:
                f.write("port = 8123\nkeepalive = { timeout = 3 }\n")
            code, out, _ = run(["--check", "-c", path])
            self.assertEqual((code, out.strip()), (0, "config OK"))

    def test_check_bad_config_names_file_and_line(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "html"))
            path = os.path.join(d, "config.lua")
            with open(path, "w") as f:
                f.write("-- comment\nhost = '127.0.0.1'\nport = 'abc'\n")
            code, out, err = run(["--check", "-c", path])
            self.assertEqual(code, 1)
            self.assertIn("config.lua:3:", out + err)
            self.assertIn("port", out + err)

    def test_syntax_error_at_start_exits_1(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "config.lua")
            with open(path, "w") as f:
                f.write("port = 8080\n\nkeepalive = {\n")
            code, _, err = run(["-c", path, "-p", "0"])
            self.assertEqual(code, 1)
            self.assertRegex(err, r"config\.lua:\d+:")

    def test_wrong_type_exits_1_with_line(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "config.lua")
            with open(path, "w") as f:
                f.write("workers = 1\nport = \"abc\"\n")
            code, _, err = run(["-c", path])
            self.assertEqual(code, 1)
            self.assertIn("config.lua:2:", err)

    def test_missing_config_file_exits_1(self):
        code, _, err = run(["-c", "/nonexistent/config.lua", "-p", "0"])
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent/config.lua", err)

    def test_missing_docroot_exits_1(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "config.lua")
            with open(path, "w") as f:
                f.write('docroot = "no-such-dir"\n')
            code, _, err = run(["-c", path, "-p", "0"])
            self.assertEqual(code, 1)
            self.assertIn("no-such-dir", err)

    def test_port_in_use_exits_1(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            with tempfile.TemporaryDirectory() as d:
                os.mkdir(os.path.join(d, "html"))
                code, _, err = run(["-p", str(port), "-r", os.path.join(d, "html")], cwd=d)
            self.assertEqual(code, 1)
            self.assertIn(str(port), err)
        finally:
            busy.close()

    def test_builtin_defaults_without_config(self):
        # no config.lua in the working folder and no -c: defaults, flags still apply
        with tempfile.TemporaryDirectory() as d:
            www = os.path.join(d, "site")
            os.mkdir(www)
            with open(os.path.join(www, "index.html"), "w") as f:
                f.write("defaults ok")
            from harness import Server
            import subprocess, time
            out = os.path.join(d, "out")
            with open(out, "w") as o:
                p = subprocess.Popen([BINARY, "-p", "0", "-r", www], cwd=d, stdout=o,
                                     stderr=subprocess.DEVNULL)
            try:
                port = None
                for _ in range(100):
                    with open(out) as f:
                        m = re.search(r":(\d+)/", f.read())
                    if m:
                        port = int(m.group(1))
                        break
                    time.sleep(0.05)
                self.assertIsNotNone(port)
                status, _, body = curl("http://127.0.0.1:%d/" % port)
                self.assertEqual((status, body), (200, b"defaults ok"))
            finally:
                p.kill()
                p.wait()

    def test_flags_override_config(self):
        s = self.server('port = 1\n', files={"a.txt": "from www"})
        # -p 0 overrode port = 1 (a port we could not bind): we are listening
        self.assertNotEqual(s.port, 1)
        other = os.path.join(s.dir, "other")
        os.mkdir(other)
        with open(os.path.join(other, "a.txt"), "w") as f:
            f.write("from other")
        s2 = self.server("", args=["-r", other])
        self.assertEqual(curl(s2.url("/a.txt"))[2], b"from other")
        self.assertEqual(curl(s.url("/a.txt"))[2], b"from www")

    def test_unknown_global_warns_but_starts(self):
        s = self.server("keepalve = { timeout = 3 }\n", files={"a.txt": "x"})
        self.assertIn("keepalve", s.stderr())
        self.assertEqual(curl(s.url("/a.txt"))[0], 200)

    def test_docroot_relative_to_config_folder(self):
        # the server's cwd is the temp folder's parent here: docroot must still resolve
        s = self.server("", files={"a.txt": "rel"})
        self.assertEqual(curl(s.url("/a.txt"))[2], b"rel")

    def test_require_from_scripts_folder(self):
        s = self.server('index = require("settings").index\n',
                        files={"home.html": "home page"},
                        dirfiles={"scripts/settings.lua": 'return { index = "home.html" }\n'})
        self.assertEqual(curl(s.url("/"))[2], b"home page")
