-- POST /v1/usage, enforced, a fresh key each time, alternating between two features on the same
-- connections: the plain one in even blocks of the wall clock, the credit-priced one in odd
-- ones. Arguments after `--`: bearer token, plain feature, priced feature, a per-run nonce, the
-- number N of tenants (t0000 ... t<N-1>, drawn at random) and the block's length in seconds.
-- Each 201 is tallied by the block it arrived in and by its feature (the answer names it), and
-- `done` prints, after common.lua's line, one line prefixed with PAIR_JSON: every block from
-- the first seen to the last, in order, as [block parity, plain 201s, priced 201s].

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local common_setup, common_response, common_done = setup, response, done
local threads = {}
local prefix, plain, priced, tenants, block_s

function setup(thread)
   common_setup(thread)
   table.insert(threads, thread)
end

function init(args)
   post_json(args[1])
   plain, priced, tenants, block_s = args[2], args[3], tonumber(args[5]), tonumber(args[6])
   prefix = string.format("pair-%s-%d-", args[4], tid)
   math.randomseed(os.time() + tid)
end

local function block()
   return math.floor(os.time() / block_s)
end

function request()
   local feature = block() % 2 == 0 and plain or priced
   return enforced_usage(prefix, feature, string.format("t%04d", math.random(0, tenants - 1)))
end

-- Per thread, flat (wrk copies them to `done` through the thread objects): block -> 201s.
plain_201s, priced_201s = {}, {}

function response(status, headers, body)
   common_response(status, headers, body)
   if status == 201 then
      local b = block()
      local tally = body:find('"' .. priced .. '"', 1, true) and priced_201s or plain_201s
      tally[b] = (tally[b] or 0) + 1
   end
end

function done(summary, latency, requests)
   common_done(summary, latency, requests)
   local merged, first, last = {{}, {}}, nil, nil
   for _, thread in ipairs(threads) do
      for kind, name in ipairs({"plain_201s", "priced_201s"}) do
         for b, n in pairs(thread:get(name) or {}) do
            merged[kind][b] = (merged[kind][b] or 0) + n
            first = (first == nil or b < first) and b or first
            last = (last == nil or b > last) and b or last
         end
      end
   end
   local parts = {}
   for b = first or 0, last or -1 do
      table.insert(parts, string.format(
         "[%d, %d, %d]", b % 2, merged[1][b] or 0, merged[2][b] or 0))
   end
   io.write("PAIR_JSON [" .. table.concat(parts, ", ") .. "]\n")
end
