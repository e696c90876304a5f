-- scripts/api.lua - a small JSON API, to show how routes, `sql` and `shared` work.
-- config.lua loads it with require("api"). Try:
--   curl http://127.0.0.1:8080/api/items
--   curl -X POST -d '{"name":"milk"}' http://127.0.0.1:8080/api/items
--   curl http://127.0.0.1:8080/api/items/1
--   curl -X DELETE http://127.0.0.1:8080/api/items/1
--   curl http://127.0.0.1:8080/api/items.csv
--   curl http://127.0.0.1:8080/api/stats
-- The items live in SQLite, in data/app.db beside config.lua (created on first start):
-- every worker sees the same list, and it is still there after a restart. The request
-- counter lives in `shared`, the memory all workers share: it survives a reload, not a
-- restart.

local db = sql.open("data/app.db")
db:exec([[
  CREATE TABLE IF NOT EXISTS items (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
  )
]])

local api = {}

function api.count()
  return db:row("SELECT count(*) AS n FROM items").n
end

-- every API request adds one to a counter that all workers share
local function counted(handler)
  return function(req)
    shared.incr("api:requests", 1)
    return handler(req)
  end
end

route("GET", "/api/items", counted(function(req)
  -- json.array: encodes as [] even when there are no rows
  return json.array(db:query("SELECT id, name FROM items ORDER BY id"))
end))

route("POST", "/api/items", counted(function(req)
  local ok, body = pcall(req.json, req)
  if not ok or type(body) ~= "table" or type(body.name) ~= "string" then
    return 400, { error = "send a JSON object with a string field 'name'" }
  end
  local id = db:exec("INSERT INTO items (name) VALUES (?)", body.name).last_id
  return 201, { id = id, name = body.name }, { Location = "/api/items/" .. id }
end))

route("GET", "/api/items/:id", counted(function(req)
  local item = db:row("SELECT id, name, created FROM items WHERE id = ?",
                      tonumber(req.params.id))
  if not item then return 404, { error = "no such item" } end
  return item
end))

route("DELETE", "/api/items/:id", counted(function(req)
  local gone = db:exec("DELETE FROM items WHERE id = ?", tonumber(req.params.id)).changes
  if gone == 0 then return 404, { error = "no such item" } end
  return 204
end))

-- the items as CSV, streamed: one row a piece, so a long table never sits whole in
-- memory on its way out (curl http://127.0.0.1:8080/api/items.csv)
route("GET", "/api/items.csv", counted(function(req)
  local last, header = 0, "id,name\r\n"
  return 200, function()
    if header then
      local h = header
      header = nil
      return h
    end
    local row = db:row("SELECT id, name FROM items WHERE id > ? ORDER BY id LIMIT 1", last)
    if not row then return nil end             -- the end
    last = row.id
    return row.id .. ',"' .. row.name:gsub('"', '""') .. '"\r\n'
  end, { ["Content-Type"] = "text/csv; charset=utf-8" }
end))

route("GET", "/api/stats", counted(function(req)
  return { requests = shared.get("api:requests"), items = api.count() }
end))

return api
