"""CONTRACT section 10, "An embedded SQL database": sql.open relative to the config
file's folder, every worker on one file, SQL errors as Lua errors, queries under the
handler's time limit."""

import json
import os
import threading
import time

from harness import SLOW, Reader, ServerTest, connect, curl

DB = '''
local db = sql.open("data/app.db")
db:exec([[CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, n REAL)]])
route("POST", "/items", function(req)
  local r = db:exec("INSERT INTO items (name) VALUES (?)", req.body)
  return 201, r
end)
route("GET", "/items", function(req)
  return json.array(db:query("SELECT id, name FROM items ORDER BY id"))
end)
route("GET", "/count", function(req)
  -- a handle of its own: it sees only what was committed
  local other = sql.open("data/app.db")
  local n = other:row("SELECT count(*) AS n FROM items").n
  other:close()
  return { n = n }
end)
'''


def post_loop(port, n, statuses):
    """n POST /items on one keep-alive connection; statuses collects the answers."""
    sock = connect(port, timeout=30 * SLOW)
    rd = Reader(sock)
    try:
        for i in range(n):
            body = b"item %d" % i
            sock.sendall(b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" %
                         (len(body), body))
            statuses.append(rd.response().status)
    finally:
        sock.close()


class Sql(ServerTest):
    def test_rows_values_and_errors(self):
        s = self.server(DB + r'''
route("GET", "/kinds", function(req)
  db:exec("DELETE FROM items")
  local id = db:exec("INSERT INTO items (name, n) VALUES (?, ?)", "a'b; DROP TABLE items; --", 0.5).last_id
  db:exec("INSERT INTO items (name, n) VALUES (?, ?)", nil, true)
  local rows = db:query("SELECT id, name, n FROM items ORDER BY id")
  return { id = math.type(id), first = rows[1], second_name = rows[2].name == nil,
           second_n = rows[2].n, none = db:row("SELECT * FROM items WHERE id = ?", -1) == nil }
end)
route("GET", "/bad", function(req) return db:query("SELECT * FROM nowhere") end)
route("GET", "/caught", function(req)
  local ok, err = pcall(db.query, db, "SELECT * FROM nowhere")
  return { ok = ok, err = err }
end)
route("GET", "/tx", function(req)
  pcall(db.tx, db, function()
    db:exec("INSERT INTO items (name) VALUES ('rolled back')")
    error("no")
  end)
  return db:row("SELECT count(*) AS n FROM items WHERE name = 'rolled back'")
end)
''')
        st, _, body = curl(s.url("/kinds"))
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {
            "id": "integer", "first": {"id": 1, "name": "a'b; DROP TABLE items; --", "n": 0.5},
            "second_name": True, "second_n": 1, "none": True})
        self.assertEqual(curl(s.url("/bad"))[0], 500)
        self.assertIn("no such table: nowhere", s.stderr())
        got = json.loads(curl(s.url("/caught"))[2])
        self.assertFalse(got["ok"])
        self.assertIn("no such table: nowhere", got["err"])
        self.assertEqual(json.loads(curl(s.url("/tx"))[2]), {"n": 0})

    def test_path_is_the_config_folder_and_logged(self):
        s = self.server('local db = sql.open("../outside/app.db")\n'
                        'route("GET", "/", function() return db:row("SELECT 1 AS one") end)\n')
        where = os.path.realpath(os.path.join(s.dir, "..", "outside", "app.db"))
        try:
            self.assertEqual(json.loads(curl(s.url("/"))[2]), {"one": 1})
            self.assertIn("sql: opened %s" % where, s.stderr())
            self.assertTrue(os.path.exists(where))
        finally:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(where + suffix):
                    os.unlink(where + suffix)
            os.rmdir(os.path.dirname(where))

    def test_four_workers_write_one_file(self):
        # 400 inserts from 20 connections at once, on 4 workers: every one lands
        s = self.server("workers = 4\n" + DB)
        self.wait_for(lambda: len(s.workers()) == 4, what="4 workers")
        statuses = []
        threads = [threading.Thread(target=post_loop, args=(s.port, 20, statuses))
                   for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120 * SLOW)
        self.assertEqual(statuses, [201] * 400, s.stderr()[-2000:])
        self.assertEqual(json.loads(curl(s.url("/count"))[2]), {"n": 400})
        self.assertNotIn("locked", s.stderr())

    def test_a_long_query_is_stopped_by_the_time_limit(self):
        s = self.server("limits = { handler_timeout_ms = 300 }\n" + DB + '''
route("GET", "/forever", function(req)
  return db:row([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                  SELECT max(x) AS m FROM c]])
end)
''')
        t = time.time()
        self.assertEqual(curl(s.url("/forever"), timeout=30)[0], 503)
        self.assertLess(time.time() - t, 5 * SLOW)
        self.assertIn("sql: interrupted: the handler ran out of time", s.stderr())
        self.assertEqual(curl(s.url("/count"))[0], 200)

    def test_an_abandoned_transaction_lets_go_at_once(self):
        # a handler paused inside db:tx and stopped there: its transaction is rolled
        # back when it is dropped, not when the collector finds it
        s = self.server("limits = { handler_timeout_ms = 300 }\n" + DB + '''
route("GET", "/hold", function(req)
  db:tx(function()
    db:exec("INSERT INTO items (name) VALUES ('held')")
    while true do coroutine.yield() end
  end)
end)
route("GET", "/write", function(req)
  db:tx(function() db:exec("INSERT INTO items (name) VALUES ('after')") end)
  return "written"
end)
''')
        self.assertEqual(curl(s.url("/hold"), timeout=30)[0], 503)
        self.assertEqual(curl(s.url("/write"))[2], b"written")
        # another handle sees the committed row, and not the abandoned one
        self.assertEqual(json.loads(curl(s.url("/count"))[2]), {"n": 1})
        self.assertEqual(json.loads(curl(s.url("/items"))[2]), [{"id": 1, "name": "after"}])

    def test_a_transaction_is_not_paused_for_other_clients(self):
        # a handler computes inside db:tx for longer than a time slice (10 ms), then
        # fails: had the server paused it there and let /write run, /write's row
        # would have gone into its transaction and been rolled back with it
        s = self.server("limits = { handler_timeout_ms = 60000 }\n" + DB + '''
route("GET", "/long", function(req)
  db:tx(function()
    db:exec("INSERT INTO items (name) VALUES ('long')")
    io.open("long", "w"):close()  -- beside config.lua: the test sends its POST now
    local t = os.clock()
    while os.clock() - t < 0.5 do end
    error("the long one fails")
  end)
end)
''')
        answers = {}

        def long():
            answers["long"] = curl(s.url("/long"), timeout=60)[0]
        t = threading.Thread(target=long)
        t.start()
        # /long is in its loop (0.5 s of CPU) once it has made the file
        self.wait_for(lambda: os.path.exists(os.path.join(s.dir, "long")), what="/long's loop")
        st, _, body = curl("-X", "POST", "--data", "other", s.url("/items"), timeout=60)
        t.join(timeout=60 * SLOW)
        self.assertEqual((answers.get("long"), st), (500, 201), body)
        self.assertEqual(json.loads(curl(s.url("/items"))[2]), [{"id": 1, "name": "other"}])
