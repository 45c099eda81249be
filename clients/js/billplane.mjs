/**
 * billplane's JavaScript client: one dependency-free ES module for Node 18+, Deno and Base44
 * functions. It uses only web-standard globals: `fetch`, `AbortController`, `crypto.randomUUID`,
 * and `Request`/`Response` for the gating helper (`FileStore` alone imports `node:fs`, when used).
 *
 *   import { Billplane } from "./billplane.mjs";
 *   const bp = new Billplane({ url: "https://billing.example.com", token: PROJECT_TOKEN });
 *   if ((await bp.check({ tenant: "acme", feature: "listings.publish" })).allowed) { ... }
 *
 * Answers are billplane's JSON as documented (snake_case keys); errors are thrown as
 * `BillplaneError` subclasses carrying the API's `code`, `status` and `message`.
 */

export const VERSION = "0.1.0";
export const UNREACHABLE = "billplane_unreachable";

// --- errors ----------------------------------------------------------------------------------

/** An error answer from billplane, or no answer at all (`BillplaneUnreachable`). */
export class BillplaneError extends Error {
  constructor(code, message, { status = null, details = {} } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.details = details;
  }
}
/** 400 or 422: malformed input. */
export class InvalidRequest extends BillplaneError {}
/** 401: missing, unknown or revoked token. */
export class Unauthorized extends BillplaneError {}
/** 402: usage with `enforce: true` would pass the limit. */
export class PaymentRequired extends BillplaneError {}
/** 403: a tenant-scoped token used for another tenant. */
export class Forbidden extends BillplaneError {}
/** 404: unknown tenant, plan, feature or session. */
export class NotFound extends BillplaneError {}
/** 409: e.g. an idempotency key reused, or a tenant already subscribed. */
export class Conflict extends BillplaneError {}
/** 5xx: billplane or a proxy failed; retried before it is thrown. */
export class ServerError extends BillplaneError {}
/** 503: e.g. Stripe not configured. */
export class ServiceUnavailable extends ServerError {}
/** No answer on any attempt: refused connection, DNS failure, timeout. */
export class BillplaneUnreachable extends BillplaneError {
  constructor(message) {
    super(UNREACHABLE, message);
  }
}

const ERRORS_BY_STATUS = {
  400: InvalidRequest,
  401: Unauthorized,
  402: PaymentRequired,
  403: Forbidden,
  404: NotFound,
  409: Conflict,
  422: InvalidRequest,
  503: ServiceUnavailable,
};

/** The exception for an error answer; tolerates bodies that are not billplane's envelope. */
export function errorFromEnvelope(status, body, text = "") {
  const Kind = ERRORS_BY_STATUS[status] ?? (status >= 500 ? ServerError : BillplaneError);
  const error = body && typeof body === "object" ? body.error : null;
  if (error && typeof error.code === "string") {
    const { code, message, ...details } = error;
    return new Kind(code, message ?? code, { status, details });
  }
  const message = text.trim().slice(0, 200) || `HTTP ${status} without an error body.`;
  return new Kind(`http_${status}`, message, { status });
}

/** Whether billplane could not answer, so the outage policy applies. */
export function isOutage(error) {
  return error instanceof BillplaneUnreachable || error instanceof ServerError;
}

// --- the client ------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function newIdempotencyKey() {
  // Node 18 has no global `crypto` without a flag; its module has the same Web Crypto.
  const webCrypto = globalThis.crypto?.randomUUID
    ? globalThis.crypto
    : (await import("node:crypto")).webcrypto;
  return `bpc-${webCrypto.randomUUID()}`;
}

function environment() {
  if (globalThis.process?.env) return globalThis.process.env;
  if (globalThis.Deno?.env) return globalThis.Deno.env.toObject();
  return {};
}

/**
 * A client holding one project (or tenant-scoped) token.
 *
 * Options: `url`, `token`, `timeoutMs` (per attempt, default 5000), `retries` (extra attempts on
 * network errors and 5xx, default 2) with `backoffMs` (default 200, doubled each retry, full
 * jitter), `cacheTtlMs` (how long a tenant's entitlements answer `check()`, default 5000; 0 asks
 * `/v1/check` every time), `outage` (`{ default: "closed" | "open", features: { key: "open" } }`),
 * `outbox` (where usage billplane could not be told waits to be replayed: a store, by default a
 * `MemoryStore`; a `FileStore(path)` on Node keeps it across restarts; `false` throws instead),
 * `replayIntervalMs` (how long usage goes straight to the outbox after billplane failed to
 * answer, default 5000), `fetch` and `now` (to substitute the global fetch or the clock).
 */
export class Billplane {
  constructor({
    url,
    token,
    timeoutMs = 5000,
    retries = 2,
    backoffMs = 200,
    cacheTtlMs = 5000,
    outage = {},
    outbox = new MemoryStore(),
    replayIntervalMs = 5000,
    project,
    fetch: fetchImpl = globalThis.fetch,
    now = () => Date.now(),
  } = {}) {
    if (!url) throw new TypeError("billplane: `url` is required");
    if (!token) throw new TypeError("billplane: a project or tenant `token` is required");
    this.url = String(url).replace(/\/+$/, "");
    this.token = token;
    this.timeoutMs = timeoutMs;
    this.retries = retries;
    this.backoffMs = backoffMs;
    this.cacheTtlMs = cacheTtlMs;
    this.outage = { default: outage.default ?? "closed", features: outage.features ?? {} };
    this.fetch = fetchImpl;
    this.now = now;
    this.cache = new EntitlementsCache(cacheTtlMs, now);
    this.inFlight = new Map();
    this.outbox = outbox ? new Outbox(outbox) : null;
    // With the project's key, entitlements are fetched signed and kept to answer offline.
    this.project = project ?? null;
    this.snapshots = project ? new Snapshots(new SnapshotVerifier(project)) : null;
    this.unsignedUntil = -Infinity;
    this.replayIntervalMs = replayIntervalMs;
    this.awayUntil = -Infinity; // usage goes straight to the outbox until then
    this.replaying = null;
  }

  /** A client for BILLPLANE_URL with BILLPLANE_TOKEN (Node's or Deno's environment). */
  static fromEnv(options = {}) {
    const env = environment();
    return new Billplane({ url: env.BILLPLANE_URL, token: env.BILLPLANE_TOKEN, ...options });
  }

  /**
   * May `tenant` use `quantity` more of `feature`? Never throws for an outage: the outage
   * policy answers then, with `reason: "billplane_unreachable"`; `onOutage` overrides it.
   */
  async check({ tenant, feature, quantity = 1, onOutage } = {}) {
    await this.#replaySoon();
    try {
      if (this.cacheTtlMs > 0 || this.snapshots) {
        const { entitlements, hit } = await this.#cachedEntitlements(tenant);
        const local = await this.#localUsage(tenant, feature);
        return checkFromEntitlements(entitlements, feature, quantity, hit, local);
      }
      const local = await this.#localUsage(tenant, feature);
      const answer = await this.#send("POST", "/v1/check", {
        tenant,
        feature,
        quantity: quantity + local,
      });
      return local ? withLocalUsage(answer, local) : answer;
    } catch (error) {
      // A snapshot that does not verify is never used: the check goes on as if billplane were
      // away (a valid older snapshot, else the policy).
      if (!isOutage(error) && !(error instanceof SnapshotRefused)) throw error;
      return this.#offlineCheck(tenant, feature, quantity, onOutage);
    }
  }

  /** Drop `tenant`'s cached entitlements: its next check asks billplane (what a verified
   * billplane webhook does, see `Webhooks`). */
  forget(tenant) {
    this.cache.invalidate(tenant);
  }

  /**
   * Every project feature for `tenant`, fetched now (and kept in the cache). With `project`,
   * billplane's signed snapshot of them, verified (`SnapshotRefused` when it does not hold) and
   * kept to answer checks while billplane is away.
   */
  async entitlements(tenant) {
    await this.#replaySoon();
    const generation = this.cache.generation(tenant);
    const held = this.snapshots?.generation(tenant) ?? 0;
    const path = `/v1/tenants/${encodeURIComponent(tenant)}/entitlements`;
    const signed = this.snapshots && this.now() >= this.unsignedUntil;
    let answer;
    try {
      answer = await this.#send("GET", path, undefined, signed ? JWT : undefined);
    } catch (error) {
      if (!signed || !SIGNING_UNAVAILABLE.includes(error.code)) throw error;
      // billplane cannot sign (no BILLPLANE_SECRET_KEY): unsigned for a while, no offline checks.
      this.unsignedUntil = this.now() + UNSIGNED_FOR_MS;
      answer = await this.#send("GET", path);
    }
    let entitlements = answer;
    if (typeof answer === "string") {
      const verifier = this.snapshots.verifier;
      if (!verifier.knows(verifier.kidOf(answer)) && verifier.mayRefresh(this.now())) {
        await verifier.load(await this.#send("GET", "/.well-known/jwks.json"), this.now());
      }
      const snapshot = await verifier.verify(answer, tenant, this.now());
      this.snapshots.put(snapshot, held);
      entitlements = snapshot.entitlements;
    }
    this.cache.put(entitlements, generation);
    return entitlements;
  }

  /**
   * Count usage exactly once per `idempotencyKey` (generated when not given, and the same on
   * every retry). With `enforce: true`, throws `PaymentRequired` instead of passing a limit.
   * When billplane cannot be reached, the event goes to the outbox (`queued: true`) and is
   * replayed later with the same key; an enforced one only if the offline check allows it.
   */
  async recordUsage(event) {
    const body = await usageBody(event);
    await this.#replaySoon();
    if (this.outbox && this.#away()) return this.#queue(body, null);
    let usage;
    try {
      usage = await this.#sendUsage("/v1/usage", body, [event.tenant]);
    } catch (error) {
      if (!this.outbox || !isOutage(error)) throw error;
      return this.#queue(body, error);
    }
    if (usage.recorded && !usage.duplicate) this.#counted([usage]);
    return usage;
  }

  /**
   * Up to 1,000 events in one request: `{ data: [{ status, result | error }] }`, in order;
   * while billplane cannot be reached, status 202 and a `queued` result for each event kept.
   */
  async recordUsageBatch(events) {
    const bodies = await Promise.all(events.map(usageBody));
    await this.#replaySoon();
    if (this.outbox && this.#away()) return this.#queueBatch(bodies, null);
    let answer;
    try {
      answer = await this.#sendUsage(
        "/v1/usage/batch",
        { events: bodies },
        events.map((e) => e.tenant),
      );
    } catch (error) {
      if (!this.outbox || !isOutage(error)) throw error;
      return this.#queueBatch(bodies, error);
    }
    this.#counted(answer.data.map((r) => r.result).filter((u) => u && !u.duplicate));
    return answer;
  }

  /**
   * Replay every event of the outbox now, oldest first, in batches: `{ delivered, keptAside,
   * pending }`. Throws what stopped it (`BillplaneUnreachable`, say) once what was answered
   * before is settled.
   */
  async flush() {
    if (!this.outbox) return { delivered: 0, keptAside: 0, pending: 0 };
    while (this.replaying) await this.replaying.catch(() => {});
    return this.#replaying(this.#replay(true));
  }

  /** A Stripe Checkout session for `plan`: `{ id, url }`; send the person to `url`. */
  async checkout({ tenant, plan, successUrl, cancelUrl }) {
    const body = { tenant, plan, success_url: successUrl, cancel_url: cancelUrl };
    return this.#send("POST", "/v1/checkout", body);
  }

  /** Apply a completed checkout now, not waiting for the webhook; the tenant's entitlements. */
  async confirmCheckout(sessionId) {
    const path = `/v1/checkout/${encodeURIComponent(sessionId)}/confirm`;
    const entitlements = await this.#send("POST", path);
    this.cache.invalidate(entitlements.tenant);
    this.cache.put(entitlements);
    return entitlements;
  }

  /** A Stripe Customer Portal session: `{ url }`. */
  async portal({ tenant, returnUrl }) {
    return this.#send("POST", "/v1/portal", { tenant, return_url: returnUrl });
  }

  // --- credits -------------------------------------------------------------------------------

  /** The tenant's credit pools: `{ tenant, pools: [{ pool, balance, buckets, ledger }] }`. */
  async balances(tenant) {
    return this.#send("GET", `/v1/tenants/${encodeURIComponent(tenant)}/balances`);
  }

  /**
   * A Stripe Checkout session for a pack of credits (a one-time `price` a pool sells):
   * `{ id, url, pool, credits }`. Once paid, `confirmCheckout(id)` lands the credits at once.
   */
  async topup({ tenant, price, successUrl, cancelUrl }) {
    const body = { tenant, price, success_url: successUrl, cancel_url: cancelUrl };
    return this.#send("POST", "/v1/topups", body);
  }

  /**
   * Hold the credits `quantity` of `feature` costs for a long action: `{ id, amount, status,
   * balance, ... }`. Throws `PaymentRequired` (`insufficient_credits`, with `pool`, `cost` and
   * `balance` in `details`) when they are not there. The key is generated once when not given,
   * so a retry holds nothing twice.
   */
  async reserve({ tenant, feature, quantity = 1, idempotencyKey, expiresIn }) {
    const body = {
      tenant,
      feature,
      quantity,
      idempotency_key: idempotencyKey ?? (await newIdempotencyKey()),
    };
    if (expiresIn !== undefined) body.expires_in = expiresIn;
    return this.#held("/v1/reservations", body);
  }

  /** Charge what the action used (more or less than held); idempotent. */
  async finalize(reservationId, quantity) {
    const path = `/v1/reservations/${encodeURIComponent(reservationId)}/finalize`;
    return this.#held(path, { quantity });
  }

  /** Give everything held back; idempotent. */
  async release(reservationId) {
    return this.#held(`/v1/reservations/${encodeURIComponent(reservationId)}/release`);
  }

  async #held(path, body) {
    const reservation = await this.#send("POST", path, body);
    // Credits moved: the tenant's cached entitlements no longer tell the balance.
    this.cache.invalidate(reservation.tenant);
    return reservation;
  }

  // --- sending -------------------------------------------------------------------------------

  async #send(method, path, body, accept = "application/json") {
    let failure;
    for (let attempt = 0; attempt <= this.retries; attempt += 1) {
      if (attempt > 0) await sleep(this.#backoff(attempt));
      let answer;
      try {
        answer = await this.#attempt(method, path, body, accept);
      } catch (error) {
        failure = error; // network error or timeout: try again
        continue;
      }
      if (answer.status < 500 || cannotSign(answer)) {
        this.awayUntil = -Infinity;
        return decode(answer);
      }
      failure = answer;
    }
    this.awayUntil = this.now() + this.replayIntervalMs;
    if (failure.text !== undefined) return decode(failure); // a 5xx: throws its ServerError
    throw new BillplaneUnreachable(
      `billplane at ${this.url} could not be reached (${failure.name}: ${failure.message})`,
    );
  }

  #backoff(attempt) {
    return Math.random() * Math.min(2000, this.backoffMs * 2 ** (attempt - 1));
  }

  /** One try: `{ status, type, text }`, or a thrown network error or timeout (AbortError). */
  async #attempt(method, path, body, accept) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const response = await this.fetch(this.url + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          Accept: accept,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
      // The body is read under the same timeout: a server that stalls mid-answer is away too.
      const type = response.headers?.get?.("content-type") ?? "";
      return { status: response.status, type, text: await response.text() };
    } finally {
      clearTimeout(timer);
    }
  }

  async #sendUsage(path, body, tenants) {
    // Once billplane has answered, usage may have changed; with no answer, nothing did.
    try {
      const answer = await this.#send("POST", path, body);
      tenants.forEach((t) => this.cache.invalidate(t));
      return answer;
    } catch (error) {
      if (!(error instanceof BillplaneUnreachable))
        tenants.forEach((t) => this.cache.invalidate(t));
      throw error;
    }
  }

  // --- billplane away, and the outbox ---------------------------------------------------------

  #away() {
    return this.now() < this.awayUntil;
  }

  async #localUsage(tenant, feature) {
    return this.outbox ? this.outbox.queuedQuantity(tenant, feature) : 0;
  }

  /** billplane counted these: held snapshots do not show them. */
  #counted(usages) {
    for (const { tenant, feature, quantity } of usages) {
      this.snapshots?.counted(tenant, feature, quantity);
    }
  }

  /**
   * What a check answers when billplane cannot: the tenant's signed snapshot while it is valid,
   * the usage recorded since counted against its limits; else the feature's outage policy.
   */
  async #offlineCheck(tenant, feature, quantity, onOutage) {
    if (this.snapshots) {
      const queued = await this.#localUsage(tenant, feature);
      const answer = this.snapshots.answer(tenant, feature, quantity, queued, this.now());
      if (answer) return answer;
    }
    const choice = onOutage ?? this.outage.features[feature] ?? this.outage.default;
    return outageAnswer(tenant, feature, choice);
  }

  /** Keep an event billplane could not be asked about; an enforced one is decided first, as a
   * check would be answered offline (a refusal throws and queues nothing). */
  async #queue(body, error) {
    if (body.enforce) {
      const answer = await this.#offlineCheck(body.tenant, body.feature, body.quantity);
      if (!answer.allowed) {
        if (answer.reason === UNREACHABLE) {
          throw (
            error ??
            new BillplaneUnreachable(
              `billplane at ${this.url} was unreachable moments ago; enforced usage of ` +
                `${body.feature} fails closed`,
            )
          );
        }
        throw new PaymentRequired(
          answer.reason,
          `Recording ${body.quantity} more of '${body.feature}' would pass the limit ` +
            "(decided offline, billplane being unreachable).",
          {
            status: 402,
            details: {
              limit: answer.limit,
              used: answer.used,
              remaining: answer.remaining,
              offline: true,
            },
          },
        );
      }
    }
    // The moment it happened goes with it: replayed later, it still counts in its own period.
    const queued = await this.outbox.add({
      ...body,
      timestamp: body.timestamp ?? new Date().toISOString(),
    });
    return {
      tenant: queued.tenant,
      feature: queued.feature,
      idempotency_key: queued.idempotency_key,
      quantity: queued.quantity,
      recorded: false,
      duplicate: false,
      queued: true,
      used: null,
      limit: null,
      remaining: null,
      resets_at: null,
    };
  }

  async #queueBatch(bodies, error) {
    const data = [];
    for (const body of bodies) {
      try {
        data.push({ status: 202, result: await this.#queue(body, error), error: null });
      } catch (refused) {
        const { code, message, details } = refused;
        const status = refused.status ?? 503;
        data.push({ status, result: null, error: { code, message, ...details } });
      }
    }
    return { data };
  }

  /** Before a call: one batch of the outbox, if events wait and billplane is not known to be
   * away (and no replay is under way). Never throws: the call goes on. */
  async #replaySoon() {
    if (!this.outbox || this.replaying || this.#away()) return;
    if (!(await this.outbox.hasPending())) return;
    if (this.replaying) return;
    await this.#replaying(this.#replay(false)).catch(() => {});
  }

  #replaying(promise) {
    this.replaying = promise;
    return promise.finally(() => {
      if (this.replaying === promise) this.replaying = null;
    });
  }

  async #replay(everything) {
    let delivered = 0;
    let keptAside = 0;
    for (;;) {
      const events = await this.outbox.oldest(REPLAY_BATCH);
      if (events.length === 0) break;
      // Replayed without `enforce`: the action it stood for has happened (an enforced event is
      // queued only once the offline check allowed it), so the counter must show it.
      const bodies = events.map(({ queued_at, ...event }) => ({ ...event, enforce: false }));
      const answer = await this.#send("POST", "/v1/usage/batch", { events: bodies });
      const done = [];
      const refused = [];
      let stuck = false;
      answer.data.forEach((result, index) => {
        if (!result.error) done.push(events[index]);
        else if (result.status < 500) refused.push({ event: events[index], ...result });
        else stuck = true;
      });
      await this.outbox.settle(done, refused);
      new Set(done.map((e) => e.tenant)).forEach((t) => this.cache.invalidate(t));
      this.#counted(done);
      delivered += done.length;
      keptAside += refused.length;
      if (!everything || stuck) break;
    }
    return { delivered, keptAside, pending: await this.outbox.count() };
  }

  async #cachedEntitlements(tenant) {
    const cached = this.cache.get(tenant);
    if (cached) return { entitlements: cached, hit: true };
    // A burst of checks for one tenant shares a single fetch.
    if (!this.inFlight.has(tenant)) {
      const fetching = this.entitlements(tenant).finally(() => this.inFlight.delete(tenant));
      this.inFlight.set(tenant, fetching);
      return { entitlements: await fetching, hit: false };
    }
    return { entitlements: await this.inFlight.get(tenant), hit: true };
  }
}

/** The answer's JSON (a signed snapshot's compact JWS as text), or the API's error thrown as its
 * `BillplaneError` subclass. */
function decode({ status, type, text }) {
  if (status >= 200 && status < 300 && type?.startsWith(JWT)) return text;
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (status >= 200 && status < 300) return body;
  throw errorFromEnvelope(status, body, text);
}

async function usageBody({
  tenant,
  feature,
  quantity = 1,
  idempotencyKey,
  enforce = false,
  timestamp,
}) {
  const body = {
    tenant,
    feature,
    quantity,
    idempotency_key: idempotencyKey ?? (await newIdempotencyKey()),
    enforce,
  };
  if (timestamp !== undefined) {
    body.timestamp = timestamp instanceof Date ? timestamp.toISOString() : timestamp;
  }
  return body;
}

// --- the cache and the outage answer -----------------------------------------------------------

/** Entitlements by tenant, each fresh for `ttlMs`; an invalidation bumps the tenant's
 * generation, so a fetch that started before it cannot put its older answer back. */
class EntitlementsCache {
  constructor(ttlMs, now) {
    this.ttlMs = ttlMs;
    this.now = now;
    this.entries = new Map();
    this.generations = new Map();
  }

  get(tenant) {
    const entry = this.entries.get(tenant);
    return entry && this.now() < entry.expiresAt ? entry.entitlements : null;
  }

  generation(tenant) {
    return this.generations.get(tenant) ?? 0;
  }

  put(entitlements, generation) {
    if (this.ttlMs <= 0) return;
    const tenant = entitlements.tenant;
    if (generation !== undefined && generation !== this.generation(tenant)) return;
    this.entries.set(tenant, { entitlements, expiresAt: this.now() + this.ttlMs });
  }

  invalidate(tenant) {
    this.entries.delete(tenant);
    this.generations.set(tenant, this.generation(tenant) + 1);
  }

  clear() {
    for (const tenant of this.entries.keys()) this.invalidate(tenant);
  }
}

/**
 * The answer `/v1/check` would give, computed from a tenant's entitlements, with `local` more
 * used: usage this client recorded that the entitlements do not count yet.
 */
export function checkFromEntitlements(
  entitlements,
  feature,
  quantity = 1,
  fromCache = true,
  local = 0,
) {
  const found = entitlements.features.find((f) => f.feature === feature);
  const entry = found && local ? withLocalUsage(found, local) : found;
  let allowed = entry ? entry.allowed : false;
  let reason = entry ? entry.reason : "unknown_feature";
  // Entitlements are computed for a quantity of 1: the limit is applied again for `quantity`.
  if (entry && (reason === "ok" || reason === "limit_reached") && entry.limit != null) {
    allowed = (entry.used ?? 0) + quantity <= entry.limit;
    reason = allowed ? "ok" : "limit_reached";
  }
  const answer = {
    allowed,
    reason,
    tenant: entitlements.tenant,
    feature,
    plan: entitlements.plan,
    subscription_status: entitlements.subscription?.status ?? null,
  };
  if (entry && entry.type !== "boolean") {
    Object.assign(answer, {
      limit: entry.limit ?? null,
      used: entry.used ?? null,
      remaining: entry.remaining ?? null,
      resets_at: entry.resets_at ?? null,
    });
  }
  return { ...answer, from_cache: fromCache };
}

/** An answer's numbers with `local` more used (a check's, or a feature's entitlement). */
function withLocalUsage(answer, local) {
  if (answer.used == null) return answer;
  const used = answer.used + local;
  const remaining = answer.limit == null ? answer.remaining : Math.max(answer.limit - used, 0);
  return { ...answer, used, remaining };
}

function outageAnswer(tenant, feature, choice) {
  if (choice !== "open" && choice !== "closed") {
    throw new TypeError(`billplane: outage policy must be "open" or "closed", not ${choice}`);
  }
  return {
    allowed: choice === "open",
    reason: UNREACHABLE,
    tenant,
    feature,
    plan: null,
    subscription_status: null,
    from_cache: false,
  };
}

// --- signed snapshots: checks answered while billplane is away ---------------------------------

const JWT = "application/jwt";
// What billplane answers (503) when it cannot sign a snapshot, and how long it is not asked again.
const SIGNING_UNAVAILABLE = ["signing_not_configured", "signing_key_unreadable"];
const UNSIGNED_FOR_MS = 300_000;

function cannotSign({ status, text }) {
  if (status !== 503) return false;
  try {
    return SIGNING_UNAVAILABLE.includes(JSON.parse(text)?.error?.code);
  } catch {
    return false;
  }
}
// A kid billplane's JWKS does not hold sends the client back to it at most this often.
const JWKS_REFRESH_MS = 10_000;

/**
 * billplane's signed snapshot failed verification; it is never used. `code` says why:
 * `snapshot_malformed`, `snapshot_unknown_kid`, `snapshot_bad_signature`,
 * `snapshot_wrong_audience`, `snapshot_wrong_tenant` or `snapshot_expired`.
 */
export class SnapshotRefused extends BillplaneError {
  constructor(code, why) {
    super(code, `billplane's signed snapshot is refused: ${why}`);
  }
}

async function subtleCrypto() {
  // Node 18 has no global `crypto` without a flag; its module has the same Web Crypto.
  return (globalThis.crypto ?? (await import("node:crypto")).webcrypto).subtle;
}

function base64urlBytes(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function base64urlJson(text) {
  return JSON.parse(new TextDecoder().decode(base64urlBytes(text)));
}

/** Checks snapshots for one project against the Ed25519 keys of billplane's JWKS (WebCrypto). */
export class SnapshotVerifier {
  constructor(project) {
    this.project = project;
    this.keys = new Map();
    this.fetchedAt = null;
  }

  /** The key id a snapshot names (before it is trusted: only to pick the key). */
  kidOf(token) {
    let header;
    try {
      header = base64urlJson(String(token).split(".")[0]);
    } catch {
      throw new SnapshotRefused("snapshot_malformed", "not a compact JWS");
    }
    if (header?.alg !== "EdDSA" || typeof header.kid !== "string") {
      throw new SnapshotRefused("snapshot_malformed", "EdDSA with a kid expected");
    }
    return header.kid;
  }

  knows(kid) {
    return this.keys.has(kid);
  }

  mayRefresh(now) {
    return this.fetchedAt === null || now - this.fetchedAt >= JWKS_REFRESH_MS;
  }

  /** billplane's JWKS, as fetched: its Ed25519 signing keys replace those known. */
  async load(jwks, now) {
    const subtle = await subtleCrypto();
    const keys = new Map();
    for (const jwk of jwks?.keys ?? []) {
      if (jwk?.kty !== "OKP" || jwk.crv !== "Ed25519" || (jwk.use ?? "sig") !== "sig") continue;
      try {
        const material = { kty: "OKP", crv: "Ed25519", x: jwk.x };
        const key = await subtle.importKey("jwk", material, { name: "Ed25519" }, false, ["verify"]);
        keys.set(String(jwk.kid), key);
      } catch {
        // A key this runtime cannot read: snapshots naming it are refused as unknown.
      }
    }
    this.keys = keys;
    this.fetchedAt = now;
  }

  /**
   * `{ entitlements, issuedAt, expiresAt, kid }` (milliseconds), if the snapshot's kid,
   * signature, `aud`, `sub` and `exp` hold; else throws `SnapshotRefused` for the first that
   * does not.
   */
  async verify(token, tenant, now) {
    const kid = this.kidOf(token);
    const parts = token.split(".");
    if (parts.length !== 3) throw new SnapshotRefused("snapshot_malformed", "not a compact JWS");
    const key = this.keys.get(kid);
    if (!key) throw new SnapshotRefused("snapshot_unknown_kid", `kid ${kid} is not in the JWKS`);
    let valid = false;
    let claims;
    try {
      const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
      const subtle = await subtleCrypto();
      valid = await subtle.verify({ name: "Ed25519" }, key, base64urlBytes(parts[2]), signed);
      claims = base64urlJson(parts[1]);
    } catch {
      valid = false;
    }
    if (!valid)
      throw new SnapshotRefused("snapshot_bad_signature", "its signature does not verify");
    const { aud, sub, iat, exp } = claims ?? {};
    if (typeof exp !== "number" || typeof iat !== "number" || !Array.isArray(claims.features)) {
      throw new SnapshotRefused("snapshot_malformed", "exp, iat and features expected");
    }
    if (!(aud === this.project || (Array.isArray(aud) && aud.includes(this.project)))) {
      throw new SnapshotRefused("snapshot_wrong_audience", `it is not for ${this.project}`);
    }
    if (sub !== tenant || claims.tenant !== tenant) {
      throw new SnapshotRefused("snapshot_wrong_tenant", `it is not tenant ${tenant}'s`);
    }
    if (exp * 1000 <= now) throw new SnapshotRefused("snapshot_expired", "it has expired");
    return { entitlements: claims, issuedAt: iat * 1000, expiresAt: exp * 1000, kid };
  }
}

/** The latest verified snapshot of each tenant, and the usage billplane counted since. */
class Snapshots {
  constructor(verifier) {
    this.verifier = verifier;
    this.held = new Map(); // tenant -> { snapshot, since: Map(feature -> quantity) }
    this.generations = new Map();
  }

  generation(tenant) {
    return this.generations.get(tenant) ?? 0;
  }

  /** Hold a snapshot fetched at `generation`; usage counted meanwhile may or may not be in it,
   * so what was counted since the older one is kept (maybe twice, never missed). */
  put(snapshot, generation) {
    const tenant = snapshot.entitlements.tenant;
    const held = this.held.get(tenant);
    if (held && held.snapshot.issuedAt > snapshot.issuedAt) return;
    const since = held && generation !== this.generation(tenant) ? held.since : new Map();
    this.held.set(tenant, { snapshot, since });
  }

  counted(tenant, feature, quantity) {
    this.generations.set(tenant, this.generation(tenant) + 1);
    const since = this.held.get(tenant)?.since;
    since?.set(feature, (since.get(feature) ?? 0) + quantity);
  }

  /** The check's answer from a valid snapshot, or null (none, expired, or its period over). */
  answer(tenant, feature, quantity, queued, now) {
    const held = this.held.get(tenant);
    if (!held || held.snapshot.expiresAt <= now) return null;
    const { entitlements } = held.snapshot;
    const entry = entitlements.features.find((f) => f.feature === feature);
    if (entry?.resets_at && Date.parse(entry.resets_at) <= now) return null;
    const local = (held.since.get(feature) ?? 0) + queued;
    return {
      ...checkFromEntitlements(entitlements, feature, quantity, true, local),
      offline: true,
    };
  }
}

// --- the outbox: usage billplane has not confirmed yet -----------------------------------------

// The most a replay sends at once: one batch request, the API's own limit.
const REPLAY_BATCH = 1000;

/**
 * Undelivered usage, oldest first, kept by a store until billplane counts it. An event billplane
 * refuses for good on replay (a 4xx: unknown tenant, a key reused, a timestamp too old) is kept
 * aside with the reason, never sent again unless `retry()` puts it back.
 *
 * A store keeps a log of what happened to the outbox: `read()` resolves to every record written
 * (oldest first), `append(records)` adds some, `rewrite(records)` replaces them all (to compact
 * the log). `MemoryStore` (the default) lasts as long as the process; `FileStore(path)` writes a
 * JSON-lines file on Node or Deno. Any store of those three methods will do (Deno KV, Redis...).
 */
export class Outbox {
  constructor(store) {
    this.store = store;
    this.events = new Map(); // pending, by "tenant\u0000key", in the order they were queued
    this.aside = new Map(); // kept aside, by the same key
    this.ready = false; // the store read
    this.chain = Promise.resolve(); // one change at a time, in the order asked
  }

  /** Every event waiting for billplane, oldest first. */
  async pending() {
    await this.#loaded();
    return [...this.events.values()];
  }

  /** Every event billplane refused for good: `{ event, status, code, message, refused_at }`. */
  async keptAside() {
    await this.#loaded();
    return [...this.aside.values()];
  }

  /** Put a kept-aside event back in line (its cause fixed); false if there is none. */
  async retry(tenant, idempotencyKey) {
    return this.#change(() => this.#takeAside(tenant, idempotencyKey, "retry"));
  }

  /** Drop a kept-aside event for good; false if there is none. */
  async discard(tenant, idempotencyKey) {
    return this.#change(() => this.#takeAside(tenant, idempotencyKey, "discard"));
  }

  async add(body) {
    return this.#change(async () => {
      const id = ident(body);
      if (!this.events.has(id)) {
        const event = {
          tenant: body.tenant,
          feature: body.feature,
          quantity: body.quantity,
          idempotency_key: body.idempotency_key,
          timestamp: body.timestamp,
          queued_at: new Date().toISOString(),
        };
        await this.store.append([{ op: "queue", event }]);
        this.events.set(id, event);
      }
      return this.events.get(id);
    });
  }

  async hasPending() {
    await this.#loaded();
    return this.events.size > 0;
  }

  async count() {
    await this.#loaded();
    return this.events.size;
  }

  async oldest(limit) {
    await this.#loaded();
    return [...this.events.values()].slice(0, limit);
  }

  async queuedQuantity(tenant, feature) {
    await this.#loaded();
    let total = 0;
    for (const event of this.events.values()) {
      if (event.tenant === tenant && event.feature === feature) total += event.quantity;
    }
    return total;
  }

  /** Forget what billplane counted; keep aside what it refused (`{ event, status, error }`). */
  async settle(delivered, refused) {
    return this.#change(async () => {
      const at = new Date().toISOString();
      const records = [
        ...delivered.map((event) => ({ op: "done", id: ident(event) })),
        ...refused.map(({ event, status, error }) => ({
          op: "aside",
          id: ident(event),
          status,
          code: error.code,
          message: error.message ?? error.code,
          refused_at: at,
        })),
      ];
      if (records.length === 0) return;
      for (const record of records) this.#apply(record);
      if (this.events.size === 0 && this.aside.size === 0) await this.store.rewrite([]);
      else await this.store.append(records);
    });
  }

  async #takeAside(tenant, key, op) {
    const id = ident({ tenant, idempotency_key: key });
    if (!this.aside.has(id)) return false;
    await this.store.append([{ op, id }]);
    this.#apply({ op, id });
    return true;
  }

  #change(work) {
    const next = this.chain.then(() => this.#loaded()).then(work);
    this.chain = next.catch(() => {});
    return next;
  }

  async #loaded() {
    if (this.ready) return;
    this.loading ??= this.#load();
    await this.loading;
  }

  async #load() {
    this.events = new Map();
    this.aside = new Map();
    const records = (await this.store.read()) ?? [];
    for (const record of records) this.#apply(record);
    if (records.length > 2 * (this.events.size + this.aside.size) + 100) {
      // Mostly settled records: write the live ones alone.
      await this.store.rewrite([
        ...[...this.events.values()].map((event) => ({ op: "queue", event })),
        ...[...this.aside.entries()].map(([id, entry]) => ({ op: "aside", id, ...entry })),
      ]);
    }
    this.ready = true;
  }

  #apply(record) {
    switch (record.op) {
      case "queue":
        this.events.set(ident(record.event), record.event);
        break;
      case "done":
        this.events.delete(record.id);
        break;
      case "aside": {
        const event = this.events.get(record.id) ?? record.event;
        this.events.delete(record.id);
        if (!event) break;
        const { status, code, message, refused_at } = record;
        this.aside.set(record.id, { event, status, code, message, refused_at });
        break;
      }
      case "retry": {
        const entry = this.aside.get(record.id);
        this.aside.delete(record.id);
        if (entry) this.events.set(record.id, entry.event);
        break;
      }
      case "discard":
        this.aside.delete(record.id);
        break;
      default:
        break;
    }
  }
}

function ident({ tenant, idempotency_key }) {
  return `${tenant}\u0000${idempotency_key}`;
}

/** An outbox store in memory: the default; what it holds ends with the process. */
export class MemoryStore {
  constructor() {
    this.records = [];
  }

  async read() {
    return [...this.records];
  }

  async append(records) {
    this.records.push(...records);
  }

  async rewrite(records) {
    this.records = [...records];
  }
}

/**
 * An outbox store in a file of JSON lines (Node or Deno, through `node:fs`), synced to disk on
 * every write: what the client said it queued survives a crash or a restart. One process per
 * file: two writing one file would each miss the other's records.
 */
export class FileStore {
  constructor(path) {
    if (!path) throw new TypeError("billplane: FileStore needs a path");
    this.path = String(path);
  }

  async read() {
    const fs = await import("node:fs/promises");
    let text;
    try {
      text = await fs.readFile(this.path, "utf8");
    } catch (error) {
      if (error.code === "ENOENT") return [];
      throw error;
    }
    const records = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        records.push(JSON.parse(line));
      } catch {
        // A line cut short by a crash mid-write: the record it began was never acknowledged.
      }
    }
    return records;
  }

  async append(records) {
    await this.#write(records, "a");
  }

  async rewrite(records) {
    // A new file put in place whole: a crash leaves the old one or the new one, never half.
    const pid = globalThis.process?.pid ?? globalThis.Deno?.pid ?? 0;
    await this.#write(records, "w", `${this.path}.${pid}.tmp`);
  }

  async #write(records, flags, temporary = null) {
    const fs = await import("node:fs/promises");
    const path = await import("node:path");
    await fs.mkdir(path.dirname(this.path), { recursive: true });
    const file = await fs.open(temporary ?? this.path, flags);
    try {
      await file.writeFile(records.map((r) => `${JSON.stringify(r)}\n`).join(""));
      await file.sync();
    } finally {
      await file.close();
    }
    if (temporary) await fs.rename(temporary, this.path);
  }
}

// --- gating fetch-style handlers (Deno.serve, Base44 functions, Node with Request) ------------

/** Whether a request prefers an HTML page over JSON (a browser navigating, not `fetch`). */
export function wantsHtml(accept) {
  let html = 0;
  let json = 0;
  for (const range of (accept ?? "").split(",")) {
    const [kind, ...params] = range.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const quality = q ? Number(q.slice(2)) || 0 : 1;
    if (kind === "text/html" || kind === "application/xhtml+xml") html = Math.max(html, quality);
    else if (kind === "application/json") json = Math.max(json, quality);
  }
  return html > json;
}

const REFUSALS = {
  limit_reached: "The {feature} limit of your plan is reached.",
  not_in_plan: "Your plan does not include {feature}.",
  no_plan: "Choose a plan to use {feature}.",
  subscription_inactive: "Your subscription is not active: renew it to use {feature}.",
  unknown_feature: "{feature} is not a feature billplane knows for this project.",
  tenant_archived: "This account is archived: ask to have it restored to use {feature}.",
  feature_archived: "{feature} is no longer offered.",
};

function jsonResponse(status, code, message, details = {}) {
  return new Response(JSON.stringify({ error: { code, message, ...details } }), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

/**
 * Gate a fetch-style handler on a feature: resolves to null when the request may go on, else to
 * the Response to send — 402 `payment_required` JSON for an API call, a 303 to `upgradeUrl`
 * (with `{feature}`, `{tenant}`, `{next}` filled in) for a page, 401 without a tenant, 503 when
 * billplane is away and the feature fails closed.
 */
export async function requireFeature(
  client,
  request,
  { tenant, feature, quantity = 1, upgradeUrl = "/upgrade?feature={feature}&next={next}" },
) {
  if (!tenant)
    return jsonResponse(401, "unauthorized", "Sign in first: this request has no tenant.");
  const check = await client.check({ tenant, feature, quantity });
  if (check.allowed) return null;
  if (check.reason === UNREACHABLE) {
    return jsonResponse(503, UNREACHABLE, "Billing is unavailable right now; try again soon.");
  }
  const url = new URL(request.url);
  const target = upgradeUrl
    .replaceAll("{feature}", encodeURIComponent(feature))
    .replaceAll("{tenant}", encodeURIComponent(tenant))
    .replaceAll("{next}", encodeURIComponent(url.pathname + url.search));
  if (wantsHtml(request.headers.get("accept"))) {
    return new Response(null, { status: 303, headers: { Location: target } });
  }
  const message = (REFUSALS[check.reason] ?? "Upgrade to use {feature}.").replace(
    "{feature}",
    feature,
  );
  const details = { feature, reason: check.reason, upgrade_url: target };
  for (const name of ["limit", "used", "remaining"]) {
    if (check[name] != null) details[name] = check[name];
  }
  return jsonResponse(402, "payment_required", message, details);
}

// --- billplane's webhooks to this app (Standard Webhooks) --------------------------------------

/** A request to the webhook route that billplane did not sign with this secret: answer 400. */
export class WebhookRefused extends Error {
  constructor(message) {
    super(message);
    this.name = "WebhookRefused";
    this.status = 400;
    this.code = "invalid_signature";
  }
}

const WEBHOOK_TOLERANCE_SECONDS = 300; // the spec's: older or newer deliveries are refused

/**
 * Verifies billplane's webhooks (the Standard Webhooks spec: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`, HMAC-SHA256 with the endpoint's `whsec_` secret, by WebCrypto) and drops
 * the event's tenant's cached entitlements from `client`, so its next check sees the change.
 * `secret` may be a list while billplane rotates it (either verifies). Every billplane event
 * tells of one tenant; a repeat (the same `id`) drops the entry again, which is harmless.
 *
 *   const webhooks = new Webhooks(bp, Deno.env.get("BILLPLANE_WEBHOOK_SECRET"));
 *   Deno.serve((request) => webhooks.handle(request));   // 204, or 400 for a forgery
 */
export class Webhooks {
  constructor(client, secret, { now = () => Date.now() } = {}) {
    const secrets = (Array.isArray(secret) ? secret : [secret]).filter(Boolean);
    if (!secrets.length) {
      throw new TypeError("billplane: the webhook secret (whsec_...) is required");
    }
    this.client = client;
    this.now = now;
    this.keys = Promise.all(secrets.map(hmacKey));
  }

  /** The verified event `{ id, type, tenant, project, sequence, data }`, once its tenant's
   * cached entitlements are dropped; throws `WebhookRefused` otherwise. */
  async receive(body, headers) {
    const event = await this.verify(body, headers);
    if (event.tenant) this.client.forget(event.tenant);
    return event;
  }

  async verify(body, headers) {
    const get = (name) =>
      typeof headers?.get === "function" ? headers.get(name) : headerOf(headers, name);
    const id = get("webhook-id");
    const timestamp = get("webhook-timestamp");
    const signatures = get("webhook-signature");
    const refused = new WebhookRefused(
      "This request is not a webhook billplane signed with this endpoint's secret.",
    );
    if (!id || !timestamp || !signatures) throw refused;
    const seconds = Number(timestamp);
    const skew = Math.abs(this.now() / 1000 - seconds);
    if (!/^\d+$/.test(timestamp) || skew > WEBHOOK_TOLERANCE_SECONDS) throw refused;
    const text = typeof body === "string" ? body : new TextDecoder().decode(body);
    const signed = new TextEncoder().encode(`${id}.${timestamp}.${text}`);
    const subtle = await subtleCrypto();
    for (const entry of signatures.split(" ")) {
      const [version, signature] = entry.split(",");
      if (version !== "v1" || !signature) continue;
      let bytes;
      try {
        bytes = Uint8Array.from(atob(signature), (c) => c.charCodeAt(0));
      } catch {
        continue;
      }
      for (const key of await this.keys) {
        // WebCrypto's verify compares in constant time.
        if (await subtle.verify("HMAC", key, bytes, signed)) return eventOf(id, text);
      }
    }
    throw refused;
  }

  /** A fetch-style handler: 204 once verified, 400 in billplane's error envelope otherwise. */
  async handle(request) {
    try {
      await this.receive(await request.text(), request.headers);
    } catch (error) {
      if (!(error instanceof WebhookRefused)) throw error;
      return jsonResponse(error.status, error.code, error.message);
    }
    return new Response(null, { status: 204 });
  }
}

async function hmacKey(secret) {
  const raw = Uint8Array.from(atob(String(secret).replace(/^whsec_/, "")), (c) => c.charCodeAt(0));
  const subtle = await subtleCrypto();
  return subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
}

function headerOf(headers, name) {
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return null;
}

function eventOf(id, text) {
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new WebhookRefused("The webhook's body is not JSON.");
  }
  const data = payload?.data && typeof payload.data === "object" ? payload.data : {};
  return {
    id,
    type: String(payload?.type ?? ""),
    tenant: typeof data.tenant === "string" ? data.tenant : null,
    project: typeof data.project === "string" ? data.project : null,
    sequence: Number.isInteger(data.sequence) ? data.sequence : null,
    data,
  };
}
