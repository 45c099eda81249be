-- POST /v1/usage with a fresh idempotency key on every request, so each one is a real insert.
-- Arguments after `--`: bearer token, tenant key, feature key, a per-run nonce.
-- The key is nonce-thread-counter-random: unique across threads, runs and the warm-up.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local counter = 0
local prefix, tenant, feature

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   tenant, feature = args[2], args[3]
   prefix = string.format("bench-%s-%d-", args[4], tid)
   math.randomseed(os.time() + tid)
end

function request()
   counter = counter + 1
   local key = string.format("%s%d-%06d", prefix, counter, math.random(0, 999999))
   local body = string.format(
      '{"tenant": "%s", "feature": "%s", "quantity": 1, "idempotency_key": "%s", "enforce": true}',
      tenant, feature, key)
   return wrk.format(nil, nil, nil, body)
end
