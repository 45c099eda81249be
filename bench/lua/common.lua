-- Shared by every bench script: tally response statuses in each wrk thread, then print one JSON
-- line (prefixed with BENCH_JSON) with throughput, latency percentiles, errors and statuses.
-- Each wrk thread runs its own Lua state, so `done` (run in the main state) collects the tallies
-- through the thread objects kept by `setup`.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

statuses = {}

-- Every request a POST of JSON with the bearer `token`.
function post_json(token)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. token
end

-- An enforced usage of 1 of `feature` by `who` under a fresh key: `prefix` (a run's nonce and
-- the thread), then a count and a random number, so unique across threads, runs and warm-ups.
local sent = 0

function enforced_usage(prefix, feature, who)
   sent = sent + 1
   local key = string.format("%s%d-%06d", prefix, sent, math.random(0, 999999))
   local body = string.format(
      '{"tenant": "%s", "feature": "%s", "quantity": 1, "idempotency_key": "%s", "enforce": true}',
      who, feature, key)
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local function json_map(map)
   local parts = {}
   for key, value in pairs(map) do
      table.insert(parts, string.format('"%s": %d', tostring(key), value))
   end
   return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
   local merged = {}
   local events = 0
   for _, thread in ipairs(threads) do
      events = events + (thread:get("events_201") or 0)
      for status, count in pairs(thread:get("statuses") or {}) do
         merged[status] = (merged[status] or 0) + count
      end
   end
   local e = summary.errors
   local percentiles = {}
   for _, p in ipairs({50, 75, 90, 99, 99.9}) do
      table.insert(percentiles, string.format('"%s": %d', tostring(p), latency:percentile(p)))
   end
   io.write(string.format(
      'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, "percentiles": {%s}}, ' ..
      '"statuses": %s, "events_201": %d}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.max, table.concat(percentiles, ", "),
      json_map(merged), events))
end
