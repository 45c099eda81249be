// The outbox: usage recorded while billplane is away waits in a store, counts against the limit,
// and is replayed oldest first with its own keys once billplane answers; what billplane refuses
// for good is kept aside. Billplane is reached through a stand-in that can refuse connections and
// come back. Writes usage only for tenant `hooli`.

import assert from "node:assert/strict";
import { join } from "node:path";
import test from "node:test";

import { Billplane, BillplaneUnreachable, FileStore, MemoryStore } from "../billplane.mjs";
import { env, manualClock, switchable, temporaryDirectory } from "../test-helpers.mjs";

const FAST = { retries: 0, timeoutMs: 10_000 };

const direct = () =>
  new Billplane({ url: env.url, token: env.token, cacheTtlMs: 0, outbox: false });
const used = async (feature, tenant = "hooli") =>
  (await direct().entitlements(tenant)).features.find((f) => f.feature === feature).used;
const batches = (bodies) =>
  bodies
    .filter((b) => b.path === "/v1/usage/batch")
    .map((b) => JSON.parse(b.body).events.map((e) => e.idempotency_key));

test("usage recorded while billplane is away waits in the outbox and counts against the limit", async () => {
  const gateway = await switchable(env.url);
  try {
    const bp = new Billplane({ url: gateway.url, token: env.token, cacheTtlMs: 60_000, ...FAST });
    const before = await bp.check({ tenant: "hooli", feature: "listings.publish" });
    assert.deepEqual([before.used, before.remaining], [0, 3]);
    await gateway.down();

    const first = await bp.recordUsage({
      tenant: "hooli",
      feature: "listings.publish",
      idempotencyKey: "js-l-1",
    });
    await bp.recordUsage({
      tenant: "hooli",
      feature: "listings.publish",
      idempotencyKey: "js-l-2",
    });
    const oneMore = await bp.check({ tenant: "hooli", feature: "listings.publish" });
    const twoMore = await bp.check({ tenant: "hooli", feature: "listings.publish", quantity: 2 });

    assert.deepEqual([first.queued, first.recorded, first.used], [true, false, null]);
    assert.deepEqual(
      (await bp.outbox.pending()).map((e) => e.idempotency_key),
      ["js-l-1", "js-l-2"],
    );
    assert.deepEqual([oneMore.allowed, oneMore.used, oneMore.remaining], [true, 2, 1]);
    assert.deepEqual([twoMore.allowed, twoMore.reason], [false, "limit_reached"]);
    assert.equal(await used("listings.publish"), 0); // billplane has not seen them yet

    await gateway.up();
    assert.deepEqual(await bp.flush(), { delivered: 2, keptAside: 0, pending: 0 });
    assert.equal(await used("listings.publish"), 2);
  } finally {
    await gateway.close();
  }
});

test("a FileStore keeps queued usage across clients; it is replayed oldest first with its keys", async () => {
  const path = join(await temporaryDirectory(), "outbox.jsonl");
  const gateway = await switchable(env.url);
  const start = await used("ai.tokens");
  const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
  try {
    // Counted by billplane, but its answer was lost: the client queued it all the same.
    await direct().recordUsage({
      tenant: "hooli",
      feature: "ai.tokens",
      quantity: 8,
      idempotencyKey: "js-t-0",
    });
    const lost = new FileStore(path);
    await lost.append([
      {
        op: "queue",
        event: { tenant: "hooli", feature: "ai.tokens", quantity: 8, idempotency_key: "js-t-0" },
      },
    ]);
    await gateway.down();
    const before = new Billplane({
      url: gateway.url,
      token: env.token,
      outbox: new FileStore(path),
      ...FAST,
    });
    await before.recordUsage({
      tenant: "hooli",
      feature: "ai.tokens",
      quantity: 1,
      idempotencyKey: "js-t-1",
    });
    await before.recordUsage({
      tenant: "hooli",
      feature: "ai.tokens",
      quantity: 2,
      idempotencyKey: "js-t-2",
    });
    await before.recordUsage({
      tenant: "hooli",
      feature: "ai.tokens",
      quantity: 4,
      idempotencyKey: "js-t-3",
      timestamp: twoDaysAgo,
    });
    await gateway.up();

    // A new client on the same file (a restarted app): its first call replays the outbox.
    const after = new Billplane({
      url: gateway.url,
      token: env.token,
      outbox: new FileStore(path),
      ...FAST,
    });
    const answer = await after.check({ tenant: "hooli", feature: "ai.tokens" });

    assert.deepEqual(batches(gateway.bodies), [["js-t-0", "js-t-1", "js-t-2", "js-t-3"]]);
    assert.equal(answer.used, start + 15); // 8 + 1 + 2 + 4: the lost answer's event once
    assert.equal(await used("ai.tokens"), start + 15);
    assert.deepEqual(await after.outbox.pending(), []);
    const replayed = JSON.parse(gateway.bodies.find((b) => b.path === "/v1/usage/batch").body);
    assert.equal(replayed.events[3].timestamp, twoDaysAgo.toISOString());
    assert.ok(replayed.events.every((e) => e.enforce === false));
    // Settled and empty, the file is compacted to nothing.
    assert.deepEqual(await new FileStore(path).read(), []);
  } finally {
    await gateway.close();
  }
});

test("usage goes straight to the outbox for a while after billplane failed to answer", async () => {
  const gateway = await switchable(env.url);
  const now = manualClock();
  const start = await used("ai.tokens");
  try {
    const bp = new Billplane({
      url: gateway.url,
      token: env.token,
      now,
      replayIntervalMs: 5000,
      ...FAST,
    });
    await gateway.down();
    const attempts = [];
    const tries = bp.fetch;
    bp.fetch = (url, init) => {
      attempts.push(url);
      return tries(url, init);
    };
    for (let n = 0; n < 10; n += 1) {
      await bp.recordUsage({ tenant: "hooli", feature: "ai.tokens", idempotencyKey: `js-b-${n}` });
    }
    assert.equal(attempts.length, 1); // one attempt found billplane away; nine went straight in
    await gateway.up();
    now.now += 4000;
    await bp.recordUsage({ tenant: "hooli", feature: "ai.tokens", idempotencyKey: "js-b-10" });
    now.now += 2000;
    await bp.recordUsage({ tenant: "hooli", feature: "ai.tokens", idempotencyKey: "js-b-11" });

    assert.deepEqual(batches(gateway.bodies), [Array.from({ length: 11 }, (_, n) => `js-b-${n}`)]);
    assert.equal(await used("ai.tokens"), start + 12);
  } finally {
    await gateway.close();
  }
});

test("an event billplane refuses for good is kept aside with the reason and never resent", async () => {
  const gateway = await switchable(env.url);
  const start = await used("ai.tokens");
  try {
    const bp = new Billplane({
      url: gateway.url,
      token: env.token,
      outbox: new MemoryStore(),
      ...FAST,
    });
    await gateway.down();
    await bp.recordUsage({
      tenant: "nobody",
      feature: "ai.tokens",
      quantity: 5,
      idempotencyKey: "js-r-1",
    });
    await bp.recordUsage({ tenant: "hooli", feature: "exports", idempotencyKey: "js-r-2" });
    await bp.recordUsage({
      tenant: "hooli",
      feature: "ai.tokens",
      quantity: 7,
      idempotencyKey: "js-r-3",
    });
    await gateway.up();

    assert.deepEqual(await bp.flush(), { delivered: 1, keptAside: 2, pending: 0 });
    assert.deepEqual(await bp.flush(), { delivered: 0, keptAside: 0, pending: 0 });
    assert.equal(batches(gateway.bodies).length, 1);
    const aside = await bp.outbox.keptAside();
    assert.deepEqual(
      aside.map((a) => [a.event.idempotency_key, a.status, a.code]),
      [
        ["js-r-1", 404, "tenant_not_found"],
        ["js-r-2", 400, "invalid_request"],
      ],
    );
    assert.ok(aside.every((a) => a.message && a.refused_at));
    assert.equal(await used("ai.tokens"), start + 7);

    assert.equal(await bp.outbox.discard("nobody", "js-r-1"), true);
    assert.equal(await bp.outbox.retry("hooli", "js-r-2"), true); // refused again, aside again
    assert.deepEqual(await bp.flush(), { delivered: 0, keptAside: 1, pending: 0 });
    assert.deepEqual(
      (await bp.outbox.keptAside()).map((a) => a.event.idempotency_key),
      ["js-r-2"],
    );
  } finally {
    await gateway.close();
  }
});

test("enforced usage while away is decided as an offline check, and throws without an outbox", async () => {
  const gateway = await switchable(env.url);
  try {
    const outage = { default: "closed", features: { "ai.tokens": "open" } };
    const bp = new Billplane({ url: gateway.url, token: env.token, outage, ...FAST });
    const bare = new Billplane({ url: gateway.url, token: env.token, outbox: false, ...FAST });
    await gateway.down();

    await assert.rejects(
      bp.recordUsage({ tenant: "hooli", feature: "listings.publish", enforce: true }),
      BillplaneUnreachable,
    );
    const allowed = await bp.recordUsage({
      tenant: "hooli",
      feature: "ai.tokens",
      quantity: 6,
      enforce: true,
    });
    await assert.rejects(
      bare.recordUsage({ tenant: "hooli", feature: "ai.tokens" }),
      BillplaneUnreachable,
    );

    assert.equal(allowed.queued, true);
    assert.deepEqual(
      (await bp.outbox.pending()).map((e) => [e.feature, e.quantity]),
      [["ai.tokens", 6]],
    );
  } finally {
    await gateway.close();
  }
});
