// The JS client against a live billplane: every call, errors with the API's code, the cache,
// and the fetch-style gate. Writes usage only for tenant `acme` (other files use other tenants).

import assert from "node:assert/strict";
import test from "node:test";

import {
  Billplane,
  Forbidden,
  InvalidRequest,
  NotFound,
  PaymentRequired,
  Unauthorized,
  requireFeature,
  wantsHtml,
} from "../billplane.mjs";
import { env, loggingFetch, manualClock } from "../test-helpers.mjs";

const client = (options = {}) =>
  new Billplane({ url: env.url, token: env.token, cacheTtlMs: 0, timeoutMs: 30_000, ...options });

const used = async (feature) =>
  (await client().entitlements("acme")).features.find((f) => f.feature === feature).used;

test("check answers with the reason and the limit numbers", async () => {
  const bp = client();
  const publish = await bp.check({ tenant: "acme", feature: "listings.publish" });
  const exports = await bp.check({ tenant: "acme", feature: "exports" });
  const unknown = await bp.check({ tenant: "acme", feature: "teleport" });

  assert.equal(publish.allowed, true);
  assert.equal(publish.reason, "ok");
  assert.equal(publish.plan, "free");
  assert.equal(publish.limit, 3);
  assert.equal(typeof publish.remaining, "number");
  assert.deepEqual([exports.allowed, exports.reason], [false, "not_in_plan"]);
  assert.equal(unknown.reason, "unknown_feature");
});

test("fromEnv reads BILLPLANE_URL and BILLPLANE_TOKEN", async () => {
  const bp = Billplane.fromEnv({ cacheTtlMs: 0 });
  const answer = await bp.check({ tenant: "acme", feature: "ai.tokens" });

  assert.equal(bp.url, env.url);
  assert.deepEqual([answer.allowed, answer.plan], [true, "free"]);
});

test("usage gets a generated idempotency key, and the same key counts once", async () => {
  const bp = client();
  const before = await used("ai.tokens");
  const first = await bp.recordUsage({ tenant: "acme", feature: "ai.tokens", quantity: 10 });
  const again = await bp.recordUsage({
    tenant: "acme",
    feature: "ai.tokens",
    quantity: 10,
    idempotencyKey: first.idempotency_key,
  });
  const timed = await bp.recordUsage({
    tenant: "acme",
    feature: "ai.tokens",
    timestamp: new Date(),
  });

  assert.match(first.idempotency_key, /^bpc-[0-9a-f-]{36}$/);
  assert.deepEqual([first.recorded, first.duplicate, again.duplicate], [true, false, true]);
  assert.notEqual(timed.idempotency_key, first.idempotency_key);
  assert.equal(await used("ai.tokens"), before + 11);
});

test("enforced usage over the limit throws PaymentRequired with the API's code", async () => {
  const bp = client();
  const room = 3 - (await used("listings.publish"));
  if (room > 0) {
    await bp.recordUsage({
      tenant: "acme",
      feature: "listings.publish",
      quantity: room,
      enforce: true,
    });
  }
  await assert.rejects(
    bp.recordUsage({ tenant: "acme", feature: "listings.publish", enforce: true }),
    (error) =>
      error instanceof PaymentRequired && error.status === 402 && error.code === "limit_reached",
  );
  assert.equal(await used("listings.publish"), 3);
});

test("a batch answers each event in order", async () => {
  const answer = await client().recordUsageBatch([
    { tenant: "acme", feature: "ai.tokens", quantity: 2 },
    { tenant: "acme", feature: "teleport", idempotencyKey: "js-batch-2" },
  ]);

  assert.deepEqual(
    answer.data.map((r) => r.status),
    [201, 404],
  );
  assert.match(answer.data[0].result.idempotency_key, /^bpc-/);
  assert.equal(answer.data[1].error.code, "unknown_feature");
});

test("entitlements list every feature", async () => {
  const entitlements = await client().entitlements("acme");

  assert.equal(entitlements.tenant, "acme");
  assert.equal(entitlements.plan, "free");
  assert.deepEqual(entitlements.features.map((f) => f.feature).sort(), [
    "ai.tokens",
    "exports",
    "listings.publish",
  ]);
});

test("errors carry code, status and message; a 4xx is not retried", async () => {
  const log = [];
  const wrong = client({ token: "bp_wrong", retries: 3, fetch: loggingFetch(log) });
  const scoped = client({ token: env.tenantToken });

  await assert.rejects(wrong.check({ tenant: "acme", feature: "exports" }), (error) => {
    assert.ok(error instanceof Unauthorized);
    assert.deepEqual([error.status, error.code], [401, "unauthorized"]);
    assert.ok(error.message.length > 0);
    return true;
  });
  assert.equal(log.length, 1);
  await assert.rejects(
    scoped.entitlements("globex"),
    (e) => e instanceof Forbidden && e.status === 403,
  );
  await assert.rejects(
    client().check({ tenant: "nobody", feature: "exports" }),
    (e) => e instanceof NotFound && e.code === "tenant_not_found",
  );
  await assert.rejects(
    client().recordUsage({ tenant: "acme", feature: "ai.tokens", quantity: 0 }),
    (e) => e instanceof InvalidRequest && e.status === 422 && e.details.param === "quantity",
  );
});

test("a burst of checks costs one request, and usage through the client refreshes it", async () => {
  const log = [];
  const bp = client({ cacheTtlMs: 60_000, fetch: loggingFetch(log) });
  const burst = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      bp.check({ tenant: "acme", feature: i % 2 ? "exports" : "ai.tokens" }),
    ),
  );
  const before = burst[0].used;
  await bp.recordUsage({ tenant: "acme", feature: "ai.tokens", quantity: 5 });
  const after = await bp.check({ tenant: "acme", feature: "ai.tokens" });

  assert.deepEqual(
    log.map((r) => new URL(r.url).pathname),
    ["/v1/tenants/acme/entitlements", "/v1/usage", "/v1/tenants/acme/entitlements"],
  );
  assert.deepEqual(
    [burst[0].allowed, burst[1].allowed, burst[1].reason],
    [true, false, "not_in_plan"],
  );
  assert.equal(after.used, before + 5);
  assert.equal(burst.filter((c) => c.from_cache).length, 11);
});

test("a cached check applies the quantity asked and expires after its TTL", async () => {
  const now = manualClock();
  const bp = client({ cacheTtlMs: 10_000, now });
  const direct = client();
  const first = await bp.check({ tenant: "acme", feature: "listings.publish", quantity: 1 });
  const many = await bp.check({ tenant: "acme", feature: "listings.publish", quantity: 50 });
  now.now += 10_001;
  const later = await bp.check({ tenant: "acme", feature: "ai.tokens" });

  const truth = await direct.check({ tenant: "acme", feature: "listings.publish", quantity: 50 });
  assert.equal(first.from_cache, false);
  assert.deepEqual([many.allowed, many.reason], [truth.allowed, truth.reason]);
  assert.equal(many.reason, "limit_reached");
  assert.equal(later.from_cache, false);
});

test("requireFeature answers API calls with 402 and pages with a redirect", async () => {
  const bp = client();
  const api = new Request("https://app.test/export?x=1", {
    headers: { accept: "application/json" },
  });
  const page = new Request("https://app.test/export", {
    headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
  });

  const refused = await requireFeature(bp, api, { tenant: "acme", feature: "exports" });
  const redirected = await requireFeature(bp, page, { tenant: "acme", feature: "exports" });
  const allowed = await requireFeature(bp, api, { tenant: "acme", feature: "ai.tokens" });
  const anonymous = await requireFeature(bp, api, { tenant: null, feature: "exports" });

  assert.equal(refused.status, 402);
  const { error } = await refused.json();
  assert.deepEqual([error.code, error.reason], ["payment_required", "not_in_plan"]);
  assert.equal(error.upgrade_url, "/upgrade?feature=exports&next=%2Fexport%3Fx%3D1");
  assert.equal(redirected.status, 303);
  assert.equal(redirected.headers.get("location"), "/upgrade?feature=exports&next=%2Fexport");
  assert.equal(allowed, null);
  assert.equal(anonymous.status, 401);
  assert.equal(wantsHtml("*/*"), false);
});
