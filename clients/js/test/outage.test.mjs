// The outage policy and retries: billplane reached through a proxy that loses answers or goes
// away, a port nobody listens on, and a server that never answers. Reads tenant `globex` and
// writes only its `ai.tokens`.

import assert from "node:assert/strict";
import test from "node:test";

import { Billplane, BillplaneUnreachable, ServerError } from "../billplane.mjs";
import {
  closedPort,
  env,
  loggingFetch,
  manualClock,
  proxy,
  silentServer,
} from "../test-helpers.mjs";

const FAST = { backoffMs: 5, timeoutMs: 10_000 };

test("a warm cache answers while billplane is away; then each feature's policy does", async () => {
  const gateway = await proxy(env.url);
  const now = manualClock();
  const options = { url: gateway.url, token: env.token, cacheTtlMs: 30_000, now, ...FAST };
  const failsOpen = new Billplane({ ...options, outage: { default: "open" } });
  const failsClosed = new Billplane({
    ...options,
    outage: { default: "closed", features: { "ai.tokens": "open" } },
    outbox: false, // usage billplane cannot be told about throws (see outbox.test.mjs)
  });
  for (const bp of [failsOpen, failsClosed]) {
    assert.equal((await bp.check({ tenant: "globex", feature: "exports" })).from_cache, false);
  }
  await gateway.close(); // billplane is unreachable from here on

  for (const bp of [failsOpen, failsClosed]) {
    const cached = await bp.check({ tenant: "globex", feature: "exports" });
    assert.deepEqual(
      [cached.allowed, cached.reason, cached.from_cache],
      [false, "not_in_plan", true],
    );
  }
  now.now += 30_001;
  const open = await failsOpen.check({ tenant: "globex", feature: "exports" });
  const closed = await failsClosed.check({ tenant: "globex", feature: "listings.publish" });
  const openFeature = await failsClosed.check({ tenant: "globex", feature: "ai.tokens" });
  const perCall = await failsClosed.check({
    tenant: "globex",
    feature: "exports",
    onOutage: "open",
  });

  assert.deepEqual([open.allowed, open.reason], [true, "billplane_unreachable"]);
  assert.deepEqual([closed.allowed, closed.reason], [false, "billplane_unreachable"]);
  assert.equal(openFeature.allowed, true);
  assert.equal(perCall.allowed, true);
  await assert.rejects(
    failsClosed.recordUsage({ tenant: "globex", feature: "ai.tokens" }),
    (e) =>
      e instanceof BillplaneUnreachable && e.code === "billplane_unreachable" && e.status === null,
  );
});

test("a closed port from the start: retried, then the policy answers and calls throw", async () => {
  const log = [];
  const url = await closedPort();
  const bp = new Billplane({
    url,
    token: "bp_x",
    fetch: loggingFetch(log),
    outbox: false,
    ...FAST,
  });

  const answer = await bp.check({ tenant: "globex", feature: "exports" });
  assert.deepEqual([answer.allowed, answer.reason], [false, "billplane_unreachable"]);
  assert.equal(log.length, 3); // the first try and two retries, by default
  for (const call of [
    () => bp.entitlements("globex"),
    () => bp.recordUsage({ tenant: "globex", feature: "ai.tokens" }),
    () => bp.recordUsageBatch([{ tenant: "globex", feature: "ai.tokens" }]),
    () =>
      bp.checkout({
        tenant: "globex",
        plan: "pro",
        successUrl: "https://a.test",
        cancelUrl: "https://a.test",
      }),
    () => bp.confirmCheckout("cs_test_1"),
    () => bp.portal({ tenant: "globex", returnUrl: "https://a.test" }),
  ]) {
    await assert.rejects(call(), BillplaneUnreachable);
  }
});

test("a server that never answers times out into the policy", async () => {
  const silent = await silentServer();
  try {
    const bp = new Billplane({
      url: silent.url,
      token: "bp_x",
      timeoutMs: 300,
      retries: 0,
      outage: { default: "open" },
    });
    const answer = await bp.check({ tenant: "globex", feature: "exports" });
    assert.deepEqual([answer.allowed, answer.reason], [true, "billplane_unreachable"]);
  } finally {
    await silent.close();
  }
});

test("a lost answer is retried with the same idempotency key and counted once", async () => {
  const gateway = await proxy(env.url, { failures: 1 });
  try {
    const bp = new Billplane({ url: gateway.url, token: env.token, ...FAST });
    const usage = await bp.recordUsage({ tenant: "globex", feature: "ai.tokens", quantity: 4 });
    const keys = gateway.bodies.map((b) => JSON.parse(b).idempotency_key);

    assert.equal(keys.length, 2);
    assert.deepEqual(keys, [usage.idempotency_key, usage.idempotency_key]);
    assert.equal(usage.duplicate, true);
  } finally {
    await gateway.close();
  }
});

test("a 5xx on every attempt throws a ServerError", async () => {
  const gateway = await proxy(env.url, { failures: 100 });
  try {
    const bp = new Billplane({ url: gateway.url, token: env.token, retries: 2, ...FAST });
    await assert.rejects(
      bp.entitlements("globex"),
      (e) => e instanceof ServerError && e.status === 502 && e.code === "http_502",
    );
    assert.equal(gateway.bodies.length, 3);
  } finally {
    await gateway.close();
  }
});
