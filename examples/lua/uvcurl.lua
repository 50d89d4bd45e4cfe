--[[
uvcurl.lua -- HTTP requests on luv's loop, through uvcurl's C ABI (LuaJIT FFI).

    local uv = require "luv"
    local uvcurl = require "uvcurl"            -- this file, on package.path
    local client = uvcurl.new(uv)               -- or uvcurl.new(uv, {lib = "/path/libuvcurl.so"})
    local req = client:request({
        url = "http://127.0.0.1:8080/",
        method = "POST",                         -- default GET (POST if body is given)
        headers = { ["content-type"] = "text/plain" },
        body = "hello",
        timeout = 10,                            -- seconds, whole transfer
        on_data = function(chunk) end,           -- optional: stream the body instead of collecting it
    }, function(err, res)
        -- err: nil, or a message ("cancelled", libcurl's text, ...)
        -- res: { status = 200, headers = { ["content-type"] = "..." }, body = "..." }
    end)
    client:cancel(req)                           -- its callback runs with err "cancelled"
    client:close()                               -- cancels what runs; the loop may then end
    uv.run()

Needs the system-libuv build of the C library (`vendor/install-c
--system-libuv`): luv already loaded libuv.so.1 (1.44 on Debian 12), and that
library links the very same copy, so the process has one libuv. The library is
found as `opts.lib`, else $UVCURL_LIB, else "libuvcurl.so.0" on the loader's
path. The libcurl functions for easy handles (curl_easy_*) come from that
library too: it exports the libcurl it contains.

luv's loop: luv runs its own loop, not uv_default_loop(), and does not hand
out its address. Every luv handle is a userdata holding a pointer to its
uv_handle_t, whose first two fields are `void *data` and `uv_loop_t *loop`;
the loop is read from a timer created for that purpose and closed at once.

Callbacks: LuaJIT has a limited number of FFI callback slots, so the module
creates exactly four C callbacks (write, header, done, closed) once, when it is
loaded, and dispatches by a request id passed as libcurl's/uvcurl's userdata.
They are referenced from the module for the life of the process, so they are
never collected while libcurl or uvcurl can call them.
]]

local ffi = require "ffi"
local jit = require "jit"

ffi.cdef [[
typedef void CURL;
typedef struct uvcurl_multi uvcurl_multi;
typedef struct uv_loop_s uv_loop_t;
struct curl_slist;
typedef void (*uvcurl_done_cb)(uvcurl_multi *multi, CURL *easy, int result, void *userdata);
typedef void (*uvcurl_closed_cb)(void *userdata);
typedef size_t (*uvcurl_lua_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);

int uvcurl_multi_new(uv_loop_t *loop, uvcurl_multi **out);
int uvcurl_multi_add(uvcurl_multi *multi, CURL *easy, uvcurl_done_cb done, void *userdata);
int uvcurl_multi_cancel(uvcurl_multi *multi, CURL *easy);
int uvcurl_multi_active(const uvcurl_multi *multi);
int uvcurl_multi_close(uvcurl_multi *multi, uvcurl_closed_cb closed, void *userdata);
const char *uvcurl_strerror(int code);
unsigned int uvcurl_libuv_version(void);

CURL *curl_easy_init(void);
void curl_easy_cleanup(CURL *easy);
int curl_easy_setopt(CURL *easy, int option, ...);
int curl_easy_getinfo(CURL *easy, int info, ...);
const char *curl_easy_strerror(int code);
struct curl_slist *curl_slist_append(struct curl_slist *list, const char *string);
void curl_slist_free_all(struct curl_slist *list);
]]

-- libcurl's option and info numbers (curl/curl.h: type base + index).
local OPT = {
  WRITEDATA = 10001, URL = 10002, WRITEFUNCTION = 20011, HTTPHEADER = 10023,
  HEADERDATA = 10029, CUSTOMREQUEST = 10036, NOBODY = 44, POST = 47,
  POSTFIELDSIZE = 60, HEADERFUNCTION = 20079, NOSIGNAL = 99, TIMEOUT_MS = 155,
  COPYPOSTFIELDS = 10165, CAINFO = 10065, SSL_VERIFYPEER = 64, SSL_VERIFYHOST = 81,
}
local INFO_RESPONSE_CODE = 0x200000 + 2
local UVCURL_ECANCELED = -6

local M = {}

-- Every running request by id, across clients: the callbacks find them here.
local requests = {}
local next_id = 0
-- Closed callbacks waiting to run, by client id.
local closing = {}

local function id_of(userdata)
  return tonumber(ffi.cast("intptr_t", userdata))
end

local function report(where, err)
  io.stderr:write("uvcurl.lua: error in ", where, ": ", tostring(err), "\n")
end

-- The four C callbacks, created once (see the header comment).
local write_cb = ffi.cast("uvcurl_lua_data_cb", function(ptr, size, nmemb, userdata)
  local n = size * nmemb
  local req = requests[id_of(userdata)]
  if req and not req.cancelled then
    local chunk = ffi.string(ptr, n)
    if req.on_data then
      local ok, err = pcall(req.on_data, chunk)
      if not ok then report("on_data", err) end
    else
      local body = req.body_parts
      body[#body + 1] = chunk
    end
  end
  -- Always the full count: a cancelled transfer stops once libcurl returns.
  return n
end)

local header_cb = ffi.cast("uvcurl_lua_data_cb", function(ptr, size, nmemb, userdata)
  local n = size * nmemb
  local req = requests[id_of(userdata)]
  if req then
    local line = ffi.string(ptr, n)
    if line:sub(1, 5) == "HTTP/" then
      req.headers = {} -- a new response (after a redirect or 100 Continue)
    else
      local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
      if name then
        name = name:lower()
        local old = req.headers[name]
        req.headers[name] = old and (old .. ", " .. value) or value
      end
    end
  end
  return n
end)

local long_box = ffi.new("long[1]")

local done_cb = ffi.cast("uvcurl_done_cb", function(_, easy, result, userdata)
  local id = id_of(userdata)
  local req = requests[id]
  requests[id] = nil
  if not req then return end
  long_box[0] = 0
  req.lib.curl_easy_getinfo(easy, INFO_RESPONSE_CODE, long_box)
  local status = tonumber(long_box[0])
  req.lib.curl_easy_cleanup(easy)
  if req.slist ~= nil then req.lib.curl_slist_free_all(req.slist) end
  req.client.running[id] = nil
  local err, res
  if result == 0 then
    res = { status = status, headers = req.headers, body = table.concat(req.body_parts) }
  elseif result == UVCURL_ECANCELED then
    err = "cancelled"
  elseif result < 0 then
    err = ffi.string(req.lib.uvcurl_strerror(result))
  else
    err = ffi.string(req.lib.curl_easy_strerror(result))
  end
  local ok, cb_err = pcall(req.callback, err, res)
  if not ok then report("request callback", cb_err) end
end)

local closed_cb = ffi.cast("uvcurl_closed_cb", function(userdata)
  local id = id_of(userdata)
  local on_closed = closing[id]
  closing[id] = nil
  if on_closed then
    local ok, err = pcall(on_closed)
    if not ok then report("close callback", err) end
  end
end)

-- A C function that may run one of the callbacks above before it returns must
-- not be called from JIT-compiled code (LuaJIT: "bad callback"), so the
-- methods that call them run interpreted.
local function interpreted(f)
  jit.off(f)
  return f
end

local libs = {}
local function load_lib(path)
  path = path or os.getenv("UVCURL_LIB") or "libuvcurl.so.0"
  if not libs[path] then libs[path] = ffi.load(path) end
  return libs[path]
end

-- luv's uv_loop_t *, from a throwaway luv handle (see the header comment).
local function luv_loop(uv)
  local timer = uv.new_timer()
  local handle = ffi.cast("void **", ffi.cast("void **", timer)[0])
  local loop = ffi.cast("uv_loop_t *", handle[1])
  timer:close()
  assert(loop ~= nil, "uvcurl.lua: cannot find luv's loop")
  return loop
end

local Client = {}
Client.__index = Client

--- A client on luv's loop. `opts.lib`: path of libuvcurl.so (system-libuv build).
function M.new(uv, opts)
  opts = opts or {}
  local lib = load_lib(opts.lib)
  -- Two libuvs acting on one loop crash: refuse a library that carries its own.
  local theirs, ours = uv.version(), tonumber(lib.uvcurl_libuv_version())
  if theirs ~= ours then
    error(string.format("uvcurl.lua: luv runs libuv %x but libuvcurl calls libuv %x; "
      .. "use the system-libuv build (vendor/install-c --system-libuv)", theirs, ours), 2)
  end
  local out = ffi.new("uvcurl_multi *[1]")
  local rc = lib.uvcurl_multi_new(luv_loop(uv), out)
  if rc ~= 0 then
    error("uvcurl_multi_new: " .. ffi.string(lib.uvcurl_strerror(rc)), 2)
  end
  next_id = next_id + 1
  return setmetatable({ lib = lib, multi = out[0], id = next_id, running = {} }, Client)
end

--- The libuv version uvcurl's calls reach (uv_version() encoding).
function Client:libuv_version()
  return tonumber(self.lib.uvcurl_libuv_version())
end

local function setopt(lib, easy, option, value)
  local rc = lib.curl_easy_setopt(easy, option, value)
  if rc ~= 0 then error("curl_easy_setopt(" .. option .. "): " .. ffi.string(lib.curl_easy_strerror(rc)), 3) end
end

--- Starts a request; `callback(err, res)` runs once when it ends. Returns a
--- request object for `cancel`.
Client.request = interpreted(function(self, spec, callback)
  assert(not self.closed, "uvcurl.lua: client is closed")
  assert(type(spec.url) == "string", "request needs a url")
  assert(type(callback) == "function", "request needs a callback")
  local lib = self.lib
  local easy = lib.curl_easy_init()
  if easy == nil then error("curl_easy_init failed", 2) end
  next_id = next_id + 1
  local id = next_id
  local req = {
    id = id, easy = easy, lib = lib, client = self, callback = callback,
    on_data = spec.on_data, headers = {}, body_parts = {}, slist = nil,
  }
  local ud = ffi.cast("void *", id)
  local ok, err = pcall(function()
    setopt(lib, easy, OPT.URL, spec.url)
    setopt(lib, easy, OPT.NOSIGNAL, ffi.new("long", 1))
    setopt(lib, easy, OPT.WRITEFUNCTION, write_cb)
    setopt(lib, easy, OPT.WRITEDATA, ud)
    setopt(lib, easy, OPT.HEADERFUNCTION, header_cb)
    setopt(lib, easy, OPT.HEADERDATA, ud)
    if spec.timeout then setopt(lib, easy, OPT.TIMEOUT_MS, ffi.new("long", math.floor(spec.timeout * 1000))) end
    if spec.cainfo then setopt(lib, easy, OPT.CAINFO, spec.cainfo) end
    if spec.insecure then
      setopt(lib, easy, OPT.SSL_VERIFYPEER, ffi.new("long", 0))
      setopt(lib, easy, OPT.SSL_VERIFYHOST, ffi.new("long", 0))
    end
    local method = spec.method or (spec.body and "POST") or "GET"
    if spec.body then
      setopt(lib, easy, OPT.POSTFIELDSIZE, ffi.new("long", #spec.body))
      setopt(lib, easy, OPT.COPYPOSTFIELDS, spec.body) -- libcurl copies it
    end
    if method == "HEAD" then
      setopt(lib, easy, OPT.NOBODY, ffi.new("long", 1))
    elseif method ~= "GET" and not (method == "POST" and spec.body) then
      setopt(lib, easy, OPT.CUSTOMREQUEST, method)
    end
    if spec.headers then
      for name, value in pairs(spec.headers) do
        local list = lib.curl_slist_append(req.slist, name .. ": " .. tostring(value))
        if list == nil then error("curl_slist_append failed") end
        req.slist = list
      end
      if req.slist ~= nil then setopt(lib, easy, OPT.HTTPHEADER, req.slist) end
    end
  end)
  if not ok then
    lib.curl_easy_cleanup(easy)
    if req.slist ~= nil then lib.curl_slist_free_all(req.slist) end
    error(err, 2)
  end
  requests[id] = req
  self.running[id] = req
  local rc = lib.uvcurl_multi_add(self.multi, easy, done_cb, ud)
  if rc ~= 0 then
    requests[id] = nil
    self.running[id] = nil
    lib.curl_easy_cleanup(easy)
    if req.slist ~= nil then lib.curl_slist_free_all(req.slist) end
    error("uvcurl_multi_add: " .. ffi.string(lib.uvcurl_strerror(rc)), 2)
  end
  return req
end)

--- Cancels a running request: its callback runs with err "cancelled". Returns
--- false if it already finished.
Client.cancel = interpreted(function(self, req)
  if self.closed or not self.running[req.id] then return false end
  req.cancelled = true
  return self.lib.uvcurl_multi_cancel(self.multi, req.easy) == 0
end)

--- How many requests are running.
function Client:active()
  local n = 0
  for _ in pairs(self.running) do n = n + 1 end
  return n
end

--- Closes the client: running requests get err "cancelled", then uvcurl's
--- handles leave the loop and `on_closed` (optional) runs.
Client.close = interpreted(function(self, on_closed)
  if self.closed then return end
  self.closed = true
  for _, req in pairs(self.running) do req.cancelled = true end
  closing[self.id] = on_closed
  local rc = self.lib.uvcurl_multi_close(self.multi, closed_cb, ffi.cast("void *", self.id))
  if rc ~= 0 then
    closing[self.id] = nil
    error("uvcurl_multi_close: " .. ffi.string(self.lib.uvcurl_strerror(rc)), 2)
  end
end)

return M
