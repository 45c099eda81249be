-- POST /v1/usage with `enforce: true` and a fresh idempotency key on every request, so each one
-- is a real insert. Arguments after `--`: bearer token, feature key, a per-run nonce, and the
-- tenant: a key (every request for that one tenant: its counter row is the hot spot), or a
-- number N (each request for one of the seeded t0000 ... t<N-1>, drawn at random).
-- The key is nonce-thread-counter-random: unique across threads, runs and the warm-up.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local prefix, feature, tenant, tenants

function init(args)
   post_json(args[1])
   feature, tenants = args[2], tonumber(args[4])
   tenant = tenants == nil and args[4] or nil
   prefix = string.format("bench-%s-%d-", args[3], tid)
   math.randomseed(os.time() + tid)
end

function request()
   return enforced_usage(prefix, feature, tenant or string.format("t%04d", math.random(0, tenants - 1)))
end
