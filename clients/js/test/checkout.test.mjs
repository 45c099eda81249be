// Checkout, confirm and portal through billplane, with Stripe played by the Stripe double.
// Subscribes tenant `initech` only.

import assert from "node:assert/strict";
import test from "node:test";

import { Billplane, Conflict } from "../billplane.mjs";
import { env } from "../test-helpers.mjs";

test("checkout, payment at Stripe, confirm and portal upgrade a tenant", async () => {
  const bp = new Billplane({ url: env.url, token: env.token, timeoutMs: 30_000 });
  assert.equal((await bp.check({ tenant: "initech", feature: "exports" })).allowed, false);

  const session = await bp.checkout({
    tenant: "initech",
    plan: "pro",
    successUrl: `${env.appOrigin}/billing/success`,
    cancelUrl: `${env.appOrigin}/pricing`,
  });
  assert.match(session.id, /^cs_/);
  assert.ok(session.url.startsWith("http"));
  const paid = await fetch(`${env.stripeDouble}/_double/checkout/${session.id}/complete`, {
    method: "POST",
  });
  assert.equal(paid.status, 200);

  const entitlements = await bp.confirmCheckout(session.id);
  assert.equal(entitlements.plan, "pro");
  const exports = await bp.check({ tenant: "initech", feature: "exports" });
  assert.deepEqual([exports.allowed, exports.from_cache], [true, true]);

  const portal = await bp.portal({ tenant: "initech", returnUrl: `${env.appOrigin}/account` });
  assert.ok(portal.url.startsWith("http"));
  await assert.rejects(
    bp.checkout({
      tenant: "initech",
      plan: "pro",
      successUrl: `${env.appOrigin}/billing/success`,
      cancelUrl: `${env.appOrigin}/pricing`,
    }),
    (e) => e instanceof Conflict && e.status === 409,
  );
});

test("checkout refuses a success URL outside the project's origins", async () => {
  const bp = new Billplane({ url: env.url, token: env.token, timeoutMs: 30_000 });
  await assert.rejects(
    bp.checkout({
      tenant: "acme",
      plan: "pro",
      successUrl: "https://evil.test/steal",
      cancelUrl: `${env.appOrigin}/pricing`,
    }),
    (e) => e.status === 400 || e.status === 422,
  );
});
