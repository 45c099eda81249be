// Credits: balances, a top-up paid at the Stripe double, and reservations held, finalized and
// released. In a project of their own (BILLPLANE_CREDITS_TOKEN), the pytest fixture prices
// `ai.tokens` at 5 credits in the pool `credits`, grants `acme` 50 of them, and sells
// BILLPLANE_CREDIT_PACK (a one-time price) as 500.

import assert from "node:assert/strict";
import test from "node:test";

import { Billplane, Conflict, PaymentRequired } from "../billplane.mjs";
import { env } from "../test-helpers.mjs";

const token = process.env.BILLPLANE_CREDITS_TOKEN;
const client = () => new Billplane({ url: env.url, token, timeoutMs: 30_000 });
const credits = async (bp) => (await bp.balances("acme")).pools[0].balance;

test("credits: balances, then a hold finalized for less and another released", async () => {
  const bp = client();
  const before = await bp.balances("acme");
  assert.equal(before.tenant, "acme");
  const [pool] = before.pools;
  assert.equal(pool.pool, "credits");
  assert.ok(pool.buckets.some((b) => b.source === "grant"));
  const start = pool.balance;

  const held = await bp.reserve({
    tenant: "acme",
    feature: "ai.tokens",
    quantity: 4,
    idempotencyKey: "js-render-1",
    expiresIn: 600,
  });
  assert.match(held.id, /^rsv_/);
  assert.deepEqual([held.status, held.amount, held.balance], ["held", 20, start - 20]);
  const repeat = await bp.reserve({
    tenant: "acme",
    feature: "ai.tokens",
    quantity: 4,
    idempotencyKey: "js-render-1",
  });
  assert.equal(repeat.id, held.id);

  const done = await bp.finalize(held.id, 3);
  assert.deepEqual([done.status, done.final_amount, done.balance], ["finalized", 15, start - 15]);
  assert.deepEqual(await bp.finalize(held.id, 3), done);

  const other = await bp.reserve({ tenant: "acme", feature: "ai.tokens" });
  const released = await bp.release(other.id);
  assert.deepEqual([released.status, released.balance], ["released", start - 15]);
  assert.equal((await bp.release(other.id)).status, "released");
  await assert.rejects(bp.finalize(other.id, 1), (e) => e instanceof Conflict);
  assert.equal(await credits(bp), start - 15);
});

test("credits: a hold past the balance throws PaymentRequired with the numbers", async () => {
  const bp = client();
  const start = await credits(bp);
  const quantity = Math.floor(start / 5) + 1;
  await assert.rejects(
    bp.reserve({ tenant: "acme", feature: "ai.tokens", quantity }),
    (e) =>
      e instanceof PaymentRequired &&
      e.status === 402 &&
      e.code === "insufficient_credits" &&
      e.details.pool === "credits" &&
      e.details.cost === quantity * 5 &&
      e.details.balance === start,
  );
  assert.equal(await credits(bp), start);
});

test("credits: a top-up paid at Stripe lands its credits once on confirm", async () => {
  const bp = client();
  const price = process.env.BILLPLANE_CREDIT_PACK;
  assert.ok(price, "BILLPLANE_CREDIT_PACK must be set");
  const start = await credits(bp);
  const topup = await bp.topup({
    tenant: "acme",
    price,
    successUrl: `${env.appOrigin}/credits/thanks`,
    cancelUrl: `${env.appOrigin}/credits`,
  });
  assert.match(topup.id, /^cs_/);
  assert.deepEqual([topup.pool, topup.credits], ["credits", 500]);
  assert.equal(await credits(bp), start);

  const paid = await fetch(`${env.stripeDouble}/_double/checkout/${topup.id}/complete`, {
    method: "POST",
  });
  assert.equal(paid.status, 200);
  await bp.confirmCheckout(topup.id);
  await bp.confirmCheckout(topup.id);
  assert.equal(await credits(bp), start + 500);
});
