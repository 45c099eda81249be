-- The same request every time (GET /healthz, POST /v1/check): built once per thread by wrk.
-- Arguments after `--`: method, JSON body ("" for none), bearer token ("" for none).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

function init(args)
   wrk.method = args[1]
   if args[2] ~= "" then
      wrk.body = args[2]
      wrk.headers["Content-Type"] = "application/json"
   end
   if args[3] ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. args[3]
   end
end
