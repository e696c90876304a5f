-- scripts/forms.lua - HTML forms, cookies and uploads: a login that sets a session
-- cookie and redirects, and a file upload kept in SQLite. config.lua loads it with
-- require("forms"). Try, in a browser: http://127.0.0.1:8080/login (ada / lovelace),
-- then http://127.0.0.1:8080/upload. Or with curl:
--   curl -i -d "user=ada&password=lovelace" http://127.0.0.1:8080/login
--   curl -b "sid=..." http://127.0.0.1:8080/me
--   curl -F "file=@notes.txt" http://127.0.0.1:8080/upload
--   curl http://127.0.0.1:8080/uploads
-- Sessions live in `shared` for an hour (every worker sees them; a restart logs
-- everyone out); uploads in data/app.db, beside the API's items.

local db = sql.open("data/app.db")
db:exec([[
  CREATE TABLE IF NOT EXISTS uploads (
    id           INTEGER PRIMARY KEY,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    data         BLOB NOT NULL
  )
]])

local USERS = { ada = "lovelace" }  -- a prototype's user list

local function page(title, body)
  return "<!DOCTYPE html><meta charset=utf-8><title>" .. title .. "</title>" ..
         "<body style=\"font-family: sans-serif; max-width: 30em; margin: 2em auto\">" ..
         "<h1>" .. title .. "</h1>" .. body .. "</body>"
end

-- 16 random bytes as hex: a session id no one can guess
local function new_sid()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function user_of(req)
  local sid = req.cookies.sid
  return sid and shared.get("session:" .. sid)
end

route("GET", "/login", function(req)
  return page("Log in", [[
<form method="post" action="/login">
  <p><label>Name <input name="user" autofocus></label>
  <p><label>Password <input name="password" type="password"></label>
  <p><button>Log in</button>
</form>]])
end)

route("POST", "/login", function(req)
  local user, password = req.form.user, req.form.password
  if not user or USERS[user] ~= password then
    return 401, page("Log in", "<p>Wrong name or password. <a href=\"/login\">Again</a>")
  end
  local sid = new_sid()
  shared.set("session:" .. sid, user, 3600)
  -- 303: the browser follows with a GET, so a reload does not post the form again
  return redirect("/me", 303,
                  { ["Set-Cookie"] = "sid=" .. sid .. "; Path=/; HttpOnly; SameSite=Lax" })
end)

route("GET", "/me", function(req)
  local user = user_of(req)
  if not user then return redirect("/login") end
  return { user = user }
end)

route("GET", "/logout", function(req)
  if req.cookies.sid then shared.delete("session:" .. req.cookies.sid) end
  return redirect("/login", 303, { ["Set-Cookie"] = "sid=; Path=/; Max-Age=0" })
end)

route("GET", "/upload", function(req)
  return page("Upload", [[
<form method="post" action="/upload" enctype="multipart/form-data">
  <p><input type="file" name="file">
  <p><button>Upload</button>
</form>
<p><a href="/uploads">What is there</a>]])
end)

route("POST", "/upload", function(req)
  local f = req.files.file
  if not f or f.filename == "" then
    return 400, page("Upload", "<p>Choose a file first. <a href=\"/upload\">Back</a>")
  end
  local id = db:exec("INSERT INTO uploads (filename, content_type, size, data) " ..
                     "VALUES (?, ?, ?, ?)", f.filename,
                     f.content_type or "application/octet-stream", f.size, f.data).last_id
  return redirect("/uploads/" .. id, 303)
end)

route("GET", "/uploads", function(req)
  return json.array(db:query("SELECT id, filename, content_type, size FROM uploads ORDER BY id"))
end)

route("GET", "/uploads/:id", function(req)
  local row = db:row("SELECT filename, content_type, data FROM uploads WHERE id = ?",
                     tonumber(req.params.id))
  if not row then return 404, { error = "no such upload" } end
  return row.data, {
    ["Content-Type"] = row.content_type,
    ["Content-Disposition"] = "inline; filename=\"" .. row.filename:gsub("[\"\\\r\n]", "_") .. "\"",
  }
end)

return {}
