--[[
fetch.lua -- uvcurl on luv's loop, beside a luv TCP server and a luv timer.

    UVCURL_LIB=/usr/local/lib/libuvcurl.so LUA_PATH="examples/lua/?.lua;;" \
      luajit examples/lua/fetch.lua [URL...]

With no URL it fetches 20 pages from its own server. Every response is printed
as "<status> <bytes> <url>"; the timer's ticks show that the loop kept
running while the transfers did. Needs the system-libuv build of the C library
(`vendor/install-c --system-libuv`), so luv and uvcurl share one libuv.
]]
local uv = require "luv"
local uvcurl = require "uvcurl"

-- A tiny HTTP server on the same loop: every request gets "hello <path>".
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
local port = server:getsockname().port
server:listen(64, function(err)
  assert(not err, err)
  local conn = uv.new_tcp()
  server:accept(conn)
  local buf = ""
  conn:read_start(function(rerr, data)
    if rerr or not data then conn:close() return end
    buf = buf .. data
    local head_end = buf:find("\r\n\r\n", 1, true)
    while head_end do
      local path = buf:match("^%u+ (%S+)")
      buf = buf:sub(head_end + 4)
      local body = "hello " .. path .. "\n"
      conn:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
      head_end = buf:find("\r\n\r\n", 1, true)
    end
  end)
end)

local ticks = 0
local ticker = uv.new_timer()
ticker:start(10, 10, function() ticks = ticks + 1 end)

local urls = { ... }
if #urls == 0 then
  for i = 1, 20 do urls[i] = "http://127.0.0.1:" .. port .. "/page/" .. i end
end

local client = uvcurl.new(uv)
local left, failed = #urls, 0
for _, url in ipairs(urls) do
  client:request({ url = url, timeout = 30 }, function(err, res)
    if err then
      failed = failed + 1
      print("error " .. err .. " " .. url)
    else
      print(res.status .. " " .. #res.body .. " " .. url)
    end
    left = left - 1
    if left == 0 then
      client:close(function()
        ticker:close()
        server:close()
      end)
    end
  end)
end

uv.run()
print("ticks " .. ticks .. ", failed " .. failed)
os.exit(failed == 0 and 0 or 1)
