-- lua_host.lua -- LuaJIT + luv host for tests/hosts.rs.
--
--     luajit lua_host.lua N     (UVCURL_LIB: the system-libuv libuvcurl.so;
--                                LUA_PATH: finds examples/lua/uvcurl.lua)
--
-- On luv's loop: a luv TCP HTTP server (127.0.0.1, keep-alive), a luv timer,
-- and N uvcurl requests to that server (50 at a time, every 10th streamed
-- through on_data, bodies compared byte for byte), one POST echoing its body
-- and a header, then 10 requests the server never answers: 5 cancelled, 5
-- still running when the client is closed. uv.run() must return. Prints
-- "ok ..." last when everything held.
local uv = require "luv"
local uvcurl = require "uvcurl"

local N = tonumber(arg[1] or "1000")

local function body_len(i) return (i * 7919) % 20000 + 1 end
local body_cache = {}
local function body_of(i)
  local b = body_cache[i]
  if b then return b end
  local t = {}
  for k = 0, body_len(i) - 1 do t[#t + 1] = string.char(97 + (i + k * 13) % 26) end
  b = table.concat(t)
  body_cache[i] = b
  return b
end

-- ---- the host's own server --------------------------------------------------
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
local port = server:getsockname().port
local conns = {}
assert(server:listen(128, function(err)
  assert(not err, err)
  local c = uv.new_tcp()
  server:accept(c)
  conns[c] = true
  local buf = ""
  c:read_start(function(rerr, data)
    if rerr or not data then
      conns[c] = nil
      if not c:is_closing() then c:close() end
      return
    end
    buf = buf .. data
    while true do
      local head_end = buf:find("\r\n\r\n", 1, true)
      if not head_end then break end
      local head = buf:sub(1, head_end + 3)
      local len = tonumber(head:lower():match("content%-length:%s*(%d+)") or "0")
      if #buf < head_end + 3 + len then break end
      local body = buf:sub(head_end + 4, head_end + 3 + len)
      buf = buf:sub(head_end + 4 + len)
      local method, path = head:match("^(%u+) (%S+)")
      if path == "/hang" then
        -- never answered; the client cancels or closes
      elseif path == "/echo" then
        local got = head:match("\r\n[Xx]%-[Tt]est:%s*([^\r]*)") or ""
        c:write("HTTP/1.1 201 Created\r\nX-Got: " .. got .. "\r\nX-Method: " .. method ..
          "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
      else
        local i = tonumber(path:match("^/(%d+)$") or "0")
        local b = body_of(i)
        c:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #b .. "\r\n\r\n" .. b)
      end
    end
  end)
end))

local ticks = 0
local ticker = uv.new_timer()
ticker:start(2, 2, function() ticks = ticks + 1 end)

-- A hard limit: never hang the test.
local watchdog = uv.new_timer()
watchdog:start(60000, 0, function()
  io.stderr:write("lua_host: watchdog fired\n")
  os.exit(2)
end)

local client = uvcurl.new(uv)
local failures, ok_count, next_i, finished = {}, 0, 0, 0
local hang_cancelled, hang_closed, closed_cb_ran, echo_ok = 0, 0, false, false

local function fail(msg)
  failures[#failures + 1] = msg
  io.stderr:write("lua_host: ", msg, "\n")
end

local start_hangs

local function start_next()
  if next_i >= N then return end
  local i = next_i
  next_i = next_i + 1
  local streamed = (i % 10 == 0) and {} or nil
  client:request({
    url = "http://127.0.0.1:" .. port .. "/" .. i,
    timeout = 30,
    on_data = streamed and function(chunk) streamed[#streamed + 1] = chunk end,
  }, function(err, res)
    finished = finished + 1
    local body = res and (streamed and table.concat(streamed) or res.body)
    if err then
      fail("request " .. i .. ": " .. err)
    elseif res.status ~= 200 or body ~= body_of(i) then
      fail("request " .. i .. ": status " .. tostring(res.status) .. " len " .. #body)
    elseif tonumber(res.headers["content-length"]) ~= body_len(i) then
      fail("request " .. i .. ": content-length header " .. tostring(res.headers["content-length"]))
    else
      ok_count = ok_count + 1
    end
    start_next()
    if finished == N then start_hangs() end
  end)
end

function start_hangs()
  client:request({
    url = "http://127.0.0.1:" .. port .. "/echo", method = "POST", body = "posted body",
    headers = { ["X-Test"] = "lua" }, timeout = 30,
  }, function(err, res)
    echo_ok = not err and res.status == 201 and res.body == "posted body"
      and res.headers["x-got"] == "lua" and res.headers["x-method"] == "POST"
    if not echo_ok then fail("echo: " .. tostring(err or res.status)) end
    local hangs = {}
    for k = 1, 10 do
      hangs[k] = client:request({ url = "http://127.0.0.1:" .. port .. "/hang", timeout = 30 },
        function(herr)
          if herr ~= "cancelled" then fail("hang " .. k .. ": " .. tostring(herr)) end
          if k <= 5 then hang_cancelled = hang_cancelled + 1 else hang_closed = hang_closed + 1 end
        end)
    end
    -- Let them connect and send, then cancel five and close with five running.
    local later = uv.new_timer()
    later:start(50, 0, function()
      later:close()
      for k = 1, 5 do
        if not client:cancel(hangs[k]) then fail("cancel " .. k .. " refused") end
      end
      if client:active() ~= 5 then fail("active after cancels: " .. client:active()) end
      client:close(function()
        closed_cb_ran = true
        ticker:stop(); ticker:close()
        watchdog:stop(); watchdog:close()
        for c in pairs(conns) do if not c:is_closing() then c:close() end end
        server:close()
      end)
    end)
  end)
end

for _ = 1, 50 do start_next() end
local host_uv, uvcurl_uv = uv.version(), client:libuv_version()
uv.run()

-- One libuv in the process: the version luv sees is the one uvcurl calls, and
-- one libuv file is mapped.
local files = {}
for line in io.lines("/proc/self/maps") do
  local path = line:match("(/%S*/libuv%.so[%.%d]*)$")
  if path then files[path] = true end
end
local nfiles = 0
for _ in pairs(files) do nfiles = nfiles + 1 end

print(string.format("transfers %d ok %d failures %d ticks %d cancelled %d closed %d closed_cb %s echo %s host_uv %x uvcurl_uv %x libuv_files %d",
  N, ok_count, #failures, ticks, hang_cancelled, hang_closed, tostring(closed_cb_ran), tostring(echo_ok),
  host_uv, uvcurl_uv, nfiles))
if ok_count == N and #failures == 0 and ticks > 0 and hang_cancelled == 5 and hang_closed == 5
  and closed_cb_ran and echo_ok and host_uv == uvcurl_uv and nfiles == 1 then
  print("ok")
  -- Ending normally runs lua_close, which unloads libuvcurl.so: valgrind
  -- then sees whatever uvcurl left allocated as lost.
else
  os.exit(1)
end
