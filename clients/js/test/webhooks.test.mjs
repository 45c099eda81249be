// billplane's webhooks verified with WebCrypto's HMAC, as the Standard Webhooks spec signs them:
// a delivery billplane signed drops its tenant's cached entitlements (the live server's), and a
// forged, altered, stale or unsigned one is refused in billplane's error envelope, dropping
// nothing. Reads only: no usage is written.

import assert from "node:assert/strict";
import test from "node:test";

import { Billplane, WebhookRefused, Webhooks } from "../billplane.mjs";
import { env } from "../test-helpers.mjs";

// A vector signed by the Python `standardwebhooks` library (the spec's own), the library
// billplane signs with: the same secret, id, timestamp and body must verify here.
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_vector";
const TIMESTAMP = "1900000000";
const BODY =
  '{"type":"tenant.entitlements.updated","timestamp":"2026-12-04T12:00:00Z",' +
  '"data":{"project":"realtyos","tenant":"initech","sequence":7,"plan":"pro"}}';
const SIGNATURE = "v1,MK5qSROT8JH4lZTZvpv44TkSgr/Z0AOwNei3GGIcTtU=";
const HOUR_MS = 3_600_000;
const AT_SIGNING = () => Number(TIMESTAMP) * 1000 + 5_000;

const headers = (changes = {}) => ({
  "webhook-id": ID,
  "webhook-timestamp": TIMESTAMP,
  "webhook-signature": SIGNATURE,
  ...changes,
});

async function cachedClient() {
  const bp = new Billplane({ url: env.url, token: env.token, cacheTtlMs: HOUR_MS });
  for (const tenant of ["initech", "hooli"]) await bp.check({ tenant, feature: "exports" });
  return bp;
}

test("a webhook billplane signed drops only its tenant's cached entitlements", async () => {
  const bp = await cachedClient();
  // Mid-rotation the app holds both secrets: either verifies.
  const webhooks = new Webhooks(bp, ["whsec_" + btoa("another secret of 24 bytes"), SECRET], {
    now: AT_SIGNING,
  });

  const event = await webhooks.receive(BODY, headers());

  assert.deepEqual(
    [event.id, event.type, event.tenant, event.sequence],
    [ID, "tenant.entitlements.updated", "initech", 7],
  );
  assert.equal(bp.cache.get("initech"), null);
  assert.notEqual(bp.cache.get("hooli"), null);
});

test("a webhook billplane did not sign is refused with 400 and drops nothing", async () => {
  const bp = await cachedClient();
  const webhooks = new Webhooks(bp, SECRET, { now: AT_SIGNING });
  const forgeries = {
    "another secret": new Webhooks(bp, "whsec_" + btoa("not the endpoint's secret"), {
      now: AT_SIGNING,
    }).handle(request(BODY, headers())),
    "an altered body": webhooks.handle(request(BODY.replace('"pro"', '"max"'), headers())),
    "no signature": webhooks.handle(request(BODY, headers({ "webhook-signature": "" }))),
    "a malformed signature": webhooks.handle(request(BODY, headers({ "webhook-signature": "v1" }))),
    "a stale delivery": new Webhooks(bp, SECRET, { now: () => AT_SIGNING() + HOUR_MS }).handle(
      request(BODY, headers()),
    ),
  };

  for (const [forgery, answer] of Object.entries(forgeries)) {
    const response = await answer;
    assert.equal(response.status, 400, forgery);
    assert.equal((await response.json()).error.code, "invalid_signature", forgery);
  }
  assert.notEqual(bp.cache.get("initech"), null);
  await assert.rejects(webhooks.receive(BODY, {}), WebhookRefused);

  const accepted = await webhooks.handle(request(BODY, headers()));
  assert.equal(accepted.status, 204);
  assert.equal(bp.cache.get("initech"), null);
});

function request(body, fields) {
  return new Request("https://app.realtyos.test/billplane/webhooks", {
    method: "POST",
    body,
    headers: fields,
  });
}
