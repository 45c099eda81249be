// Checks answered from billplane's signed snapshots while billplane is stopped. Run by
// tests/clients/test_offline_checks.py, which starts billplane (with BILLPLANE_SECRET_KEY) and a
// proxy that spoils snapshots on the way (BILLPLANE_SPOILER: /tampered, /other-tenant,
// /forged-key), then stops both once this file says it is ready.
//
// Before the stop (top level, before any test): snapshots fetched, usage recorded, refusals
// seen. After: the tests, billplane unreachable.

import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import test from "node:test";

import { Billplane, PaymentRequired, SnapshotRefused } from "../billplane.mjs";

const env = process.env;
const [url, spoiler, project] = [env.BILLPLANE_URL, env.BILLPLANE_SPOILER, env.BILLPLANE_PROJECT];
const [token, otherToken] = [env.BILLPLANE_TOKEN, env.BILLPLANE_OTHER_TOKEN];
const HOUR = 3_600_000;

const client = (options = {}) =>
  new Billplane({ url, token, project, cacheTtlMs: 0, retries: 0, timeoutMs: 10_000, ...options });

// --- while billplane answers -------------------------------------------------------------------

const good = client();
const warm = await good.check({ tenant: "globex", feature: "listings.publish" });
await good.recordUsage({ tenant: "globex", feature: "listings.publish", idempotencyKey: "js-1" });

const later = { now: Date.now() };
const ageing = client({ now: () => later.now });
await ageing.check({ tenant: "globex", feature: "listings.publish" });

const refusing = {
  tampered: client({ url: `${spoiler}/tampered` }),
  "wrong tenant": client({ url: `${spoiler}/other-tenant` }),
  "unknown kid": client({ url: `${spoiler}/forged-key` }),
  "wrong audience": client({ token: otherToken }),
  expired: client({ now: () => Date.now() + 2 * HOUR }), // a clock two hours ahead
};
const refusals = {};
for (const [name, bp] of Object.entries(refusing)) {
  try {
    await bp.entitlements("globex");
    refusals[name] = "accepted";
  } catch (error) {
    refusals[name] = error instanceof SnapshotRefused ? error.code : String(error);
  }
  await bp.check({ tenant: "globex", feature: "listings.publish" }); // refused, not kept
}

// --- billplane stopped -------------------------------------------------------------------------

writeFileSync(env.BILLPLANE_READY_FILE, "ready");
while (!existsSync(env.BILLPLANE_STOPPED_FILE)) await new Promise((r) => setTimeout(r, 20));

test("snapshots that do not hold are refused with their reason", () => {
  assert.deepEqual([warm.allowed, warm.remaining], [true, 3]);
  assert.deepEqual(refusals, {
    tampered: "snapshot_bad_signature",
    "wrong tenant": "snapshot_wrong_tenant",
    "unknown kid": "snapshot_unknown_kid",
    "wrong audience": "snapshot_wrong_audience",
    expired: "snapshot_expired",
  });
});

test("a valid snapshot answers while billplane is stopped, never past its limit", async () => {
  const check = () => good.check({ tenant: "globex", feature: "listings.publish" });
  const first = await check(); // 1 recorded before the stop, after the snapshot was cut
  await good.recordUsage({ tenant: "globex", feature: "listings.publish", idempotencyKey: "js-2" });
  const second = await check();
  const queued = await good.recordUsage({
    tenant: "globex",
    feature: "listings.publish",
    idempotencyKey: "js-3",
  });
  const full = await check();

  assert.deepEqual(
    [first.allowed, first.reason, first.used, first.remaining, first.offline],
    [true, "ok", 1, 2, true],
  );
  assert.deepEqual([second.used, second.remaining], [2, 1]);
  assert.equal(queued.queued, true);
  assert.deepEqual([full.allowed, full.reason, full.remaining], [false, "limit_reached", 0]);
  await assert.rejects(
    good.recordUsage({ tenant: "globex", feature: "listings.publish", enforce: true }),
    (error) => error instanceof PaymentRequired && error.code === "limit_reached",
  );
  const exports = await good.check({ tenant: "globex", feature: "exports" });
  assert.deepEqual(
    [exports.allowed, exports.reason, exports.offline],
    [false, "not_in_plan", true],
  );
});

test("without a valid snapshot the outage policy answers", async () => {
  const noSnapshot = await good.check({ tenant: "acme", feature: "listings.publish" });
  assert.deepEqual([noSnapshot.allowed, noSnapshot.reason], [false, "billplane_unreachable"]);
  for (const [name, bp] of Object.entries(refusing)) {
    const answer = await bp.check({ tenant: "globex", feature: "listings.publish" });
    assert.deepEqual([answer.allowed, answer.reason], [false, "billplane_unreachable"], name);
  }
  const fresh = await ageing.check({ tenant: "globex", feature: "listings.publish" });
  later.now += 2 * HOUR; // past the snapshot's exp
  const expired = await ageing.check({ tenant: "globex", feature: "listings.publish" });
  assert.deepEqual([fresh.allowed, fresh.offline], [true, true]);
  assert.deepEqual([expired.allowed, expired.reason], [false, "billplane_unreachable"]);
});
