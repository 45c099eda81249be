-- POST /v1/usage/batch: SIZE enforced events per request, fresh keys, spread over the seeded
-- tenants in turn. Counts the events answered 201 (`events_201`) from each response body.
-- Arguments after `--`: bearer token, feature key, a per-run nonce, how many tenants, SIZE.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local counter = 0
local prefix, feature, tenants, size

function init(args)
   post_json(args[1])
   feature, tenants, size = args[2], tonumber(args[4]), tonumber(args[5])
   prefix = string.format("batch-%s-%d-", args[3], tid)
end

function request()
   counter = counter + 1
   local events = {}
   for i = 1, size do
      events[i] = string.format(
         '{"tenant": "t%04d", "feature": "%s", "idempotency_key": "%s%d-%d", "enforce": true}',
         (counter * size + i) % tenants, feature, prefix, counter, i)
   end
   return wrk.format(nil, nil, nil, '{"events": [' .. table.concat(events, ",") .. ']}')
end

events_201 = 0

local base_response = response
function response(status, headers, body)
   base_response(status, headers, body)
   local _, n = string.gsub(body, '"status":%s*201', "")
   events_201 = events_201 + n
end
