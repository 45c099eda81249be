-- POST /v1/usage with a fresh idempotency key on every request, each for a tenant drawn at
-- random among the seeded many (t0000 ... t<n-1>): usage spread the way many copies send it.
-- Arguments after `--`: bearer token, feature key, a per-run nonce, how many tenants.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local counter = 0
local prefix, feature, tenants

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   feature, tenants = args[2], tonumber(args[4])
   prefix = string.format("bench-%s-%d-", args[3], tid)
   math.randomseed(os.time() + tid)
end

function request()
   counter = counter + 1
   local key = string.format("%s%d-%06d", prefix, counter, math.random(0, 999999))
   local body = string.format(
      '{"tenant": "t%04d", "feature": "%s", "quantity": 1, "idempotency_key": "%s", "enforce": true}',
      math.random(0, tenants - 1), feature, key)
   return wrk.format(nil, nil, nil, body)
end
