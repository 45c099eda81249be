// Verifying billplane's signed snapshots with WebCrypto, against an Ed25519 key made here: what
// holds is used, and a tampered, expired, wrong-audience, wrong-tenant or unknown-kid snapshot is
// refused with its reason. Against a real billplane that is then stopped: offline.test.mjs.

import assert from "node:assert/strict";
import test from "node:test";

import { SnapshotRefused, SnapshotVerifier } from "../billplane.mjs";

const PROJECT = "realtyos";
const NOW = 1_900_000_000_000; // milliseconds

const encode = (bytes) =>
  Buffer.from(bytes)
    .toString("base64")
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
const encodeJson = (value) => encode(new TextEncoder().encode(JSON.stringify(value)));

/** A signing key as billplane holds one: its kid, its JWK, and `sign(claims)`. */
async function signer(kid) {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const { x } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return {
    kid,
    jwk: { kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" },
    async sign(claims, header = {}) {
      const head = encodeJson({ alg: "EdDSA", typ: "JWT", kid, ...header });
      const body = encodeJson(claims);
      const data = new TextEncoder().encode(`${head}.${body}`);
      const signature = await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, data);
      return `${head}.${body}.${encode(new Uint8Array(signature))}`;
    },
  };
}

function claims(subject = "acme", changes = {}) {
  return {
    tenant: subject,
    plan: "free",
    subscription: null,
    features: [
      {
        feature: "listings.publish",
        type: "limit",
        allowed: true,
        reason: "ok",
        limit: 3,
        used: 1,
        remaining: 2,
        resets_at: new Date(NOW + 10 * 86_400_000).toISOString(),
      },
    ],
    iss: "https://billing.realtyos.test",
    aud: PROJECT,
    sub: subject,
    iat: NOW / 1000 - 60,
    exp: NOW / 1000 + 3600,
    ...changes,
  };
}

async function verifierFor(key) {
  const verifier = new SnapshotVerifier(PROJECT);
  await verifier.load({ keys: [key.jwk] }, 0);
  return verifier;
}

function tampered(token) {
  const [head, body, signature] = token.split(".");
  const forged = JSON.parse(Buffer.from(body, "base64url").toString());
  forged.features[0].limit = 300;
  return `${head}.${encodeJson(forged)}.${signature}`;
}

test("a valid snapshot is verified and carries the entitlements", async () => {
  const key = await signer("key-2026");
  const snapshot = await (await verifierFor(key)).verify(await key.sign(claims()), "acme", NOW);

  assert.equal(snapshot.kid, "key-2026");
  assert.equal(snapshot.expiresAt, NOW + 3_600_000);
  assert.equal(snapshot.entitlements.features[0].remaining, 2);
});

test("a snapshot that does not hold is refused with its reason", async () => {
  const key = await signer("key-2026");
  const verifier = await verifierFor(key);
  const cases = {
    tampered: [tampered(await key.sign(claims())), "snapshot_bad_signature"],
    expired: [await key.sign(claims("acme", { exp: NOW / 1000 - 1 })), "snapshot_expired"],
    "wrong audience": [
      await key.sign(claims("acme", { aud: "another-project" })),
      "snapshot_wrong_audience",
    ],
    "wrong tenant": [await key.sign(claims("globex")), "snapshot_wrong_tenant"],
    "another tenant's body": [
      await key.sign(claims("acme", { tenant: "globex" })),
      "snapshot_wrong_tenant",
    ],
    "unknown kid": [await (await signer("key-other")).sign(claims()), "snapshot_unknown_kid"],
    "another key, same kid": [
      await (await signer("key-2026")).sign(claims()),
      "snapshot_bad_signature",
    ],
    "no signature": [
      `${encodeJson({ alg: "none", kid: "key-2026" })}.${encodeJson(claims())}.`,
      "snapshot_malformed",
    ],
    "no expiry": [await key.sign(claims("acme", { exp: undefined })), "snapshot_malformed"],
    "not a JWS": ["not-a-token", "snapshot_malformed"],
  };
  for (const [name, [token, code]] of Object.entries(cases)) {
    await assert.rejects(
      verifier.verify(token, "acme", NOW),
      (error) => error instanceof SnapshotRefused && error.code === code,
      name,
    );
  }
});

test("a new kid is learnt from a fresh JWKS, fetched at most every 10 seconds", async () => {
  const rotated = await signer("key-2027");
  const verifier = new SnapshotVerifier(PROJECT);
  await verifier.load({ keys: [rotated.jwk, { kty: "RSA", kid: "rsa", n: "x", e: "AQAB" }] }, 0);

  assert.deepEqual([verifier.knows("key-2027"), verifier.knows("rsa")], [true, false]);
  assert.equal((await verifier.verify(await rotated.sign(claims()), "acme", NOW)).kid, "key-2027");
  assert.deepEqual([verifier.mayRefresh(9_999), verifier.mayRefresh(10_000)], [false, true]);
});
