-- scripts/api.lua - a small JSON API over an in-memory list, to show how routes work.
-- config.lua loads it with require("api"). Try:
--   curl http://127.0.0.1:8080/api/items
--   curl -X POST -d '{"name":"milk"}' http://127.0.0.1:8080/api/items
--   curl http://127.0.0.1:8080/api/items/1
--   curl -X DELETE http://127.0.0.1:8080/api/items/1
-- The list lives in the worker's Lua state: it starts empty again on reload, and with
-- workers > 1 each worker has its own.

local items, next_id = {}, 1
local api = {}

function api.count()
  local n = 0
  for _ in pairs(items) do n = n + 1 end
  return n
end

route("GET", "/api/items", function(req)
  local list = json.array({})            -- encodes as [] even when empty
  for id = 1, next_id - 1 do
    if items[id] then list[#list + 1] = items[id] end
  end
  return list
end)

route("POST", "/api/items", function(req)
  local ok, body = pcall(req.json, req)
  if not ok or type(body) ~= "table" or type(body.name) ~= "string" then
    return 400, { error = "send a JSON object with a string field 'name'" }
  end
  local item = { id = next_id, name = body.name }
  items[next_id] = item
  next_id = next_id + 1
  return 201, item, { Location = "/api/items/" .. item.id }
end)

route("GET", "/api/items/:id", function(req)
  local item = items[tonumber(req.params.id)]
  if not item then return 404, { error = "no such item" } end
  return item
end)

route("DELETE", "/api/items/:id", function(req)
  local id = tonumber(req.params.id)
  if not items[id] then return 404, { error = "no such item" } end
  items[id] = nil
  return 204
end)

return api
