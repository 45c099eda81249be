/**
 * billplane's JavaScript client: one dependency-free ES module for Node 18+, Deno and Base44
 * functions. It uses only web-standard globals: `fetch`, `AbortController`, `crypto.randomUUID`,
 * and `Request`/`Response` for the gating helper.
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
 * `fetch` and `now` (to substitute the global fetch or the clock).
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
    try {
      if (this.cacheTtlMs > 0) {
        const { entitlements, hit } = await this.#cachedEntitlements(tenant);
        return checkFromEntitlements(entitlements, feature, quantity, hit);
      }
      return await this.#send("POST", "/v1/check", { tenant, feature, quantity });
    } catch (error) {
      if (!isOutage(error)) throw error;
      const choice = onOutage ?? this.outage.features[feature] ?? this.outage.default;
      return outageAnswer(tenant, feature, choice);
    }
  }

  /** Every project feature for `tenant`, fetched now (and kept in the cache). */
  async entitlements(tenant) {
    const generation = this.cache.generation(tenant);
    const path = `/v1/tenants/${encodeURIComponent(tenant)}/entitlements`;
    const entitlements = await this.#send("GET", path);
    this.cache.put(entitlements, generation);
    return entitlements;
  }

  /**
   * Count usage exactly once per `idempotencyKey` (generated when not given, and the same on
   * every retry). With `enforce: true`, throws `PaymentRequired` instead of passing a limit.
   */
  async recordUsage(event) {
    const body = await usageBody(event);
    return this.#sendUsage("/v1/usage", body, [event.tenant]);
  }

  /** Up to 1,000 events in one request: `{ data: [{ status, result | error }] }`, in order. */
  async recordUsageBatch(events) {
    const bodies = await Promise.all(events.map(usageBody));
    return this.#sendUsage(
      "/v1/usage/batch",
      { events: bodies },
      events.map((e) => e.tenant),
    );
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

  // --- sending -------------------------------------------------------------------------------

  async #send(method, path, body) {
    let failure;
    for (let attempt = 0; attempt <= this.retries; attempt += 1) {
      if (attempt > 0) await sleep(this.#backoff(attempt));
      let answer;
      try {
        answer = await this.#attempt(method, path, body);
      } catch (error) {
        failure = error; // network error or timeout: try again
        continue;
      }
      if (answer.status < 500) return decode(answer);
      failure = answer;
    }
    if (failure.text !== undefined) return decode(failure); // a 5xx: throws its ServerError
    throw new BillplaneUnreachable(
      `billplane at ${this.url} could not be reached (${failure.name}: ${failure.message})`,
    );
  }

  #backoff(attempt) {
    return Math.random() * Math.min(2000, this.backoffMs * 2 ** (attempt - 1));
  }

  /** One try: `{ status, text }`, or a thrown network error or timeout (AbortError). */
  async #attempt(method, path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const response = await this.fetch(this.url + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          Accept: "application/json",
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
      // The body is read under the same timeout: a server that stalls mid-answer is away too.
      return { status: response.status, text: await response.text() };
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

/** The answer's JSON, or the API's error thrown as its `BillplaneError` subclass. */
function decode({ status, text }) {
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

/** The answer `/v1/check` would give, computed from a tenant's entitlements. */
export function checkFromEntitlements(entitlements, feature, quantity = 1, fromCache = true) {
  const entry = entitlements.features.find((f) => f.feature === feature);
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
