/**
 * What the JS client's tests share (kept outside test/, where every file is run as a test):
 * the live server's coordinates from the environment, a fetch that logs each attempt, a proxy
 * in front of the real server that can lose answers or disappear, and ports that never answer.
 *
 * The Python test tests/clients/test_js_client.py starts billplane, seeds a project and runs
 * `node --test clients/js/test/` with BILLPLANE_URL, BILLPLANE_TOKEN, BILLPLANE_TENANT_TOKEN
 * (scoped to `acme`), STRIPE_DOUBLE_URL and BILLPLANE_APP_ORIGIN.
 */

import http from "node:http";
import net from "node:net";

export const env = {
  url: required("BILLPLANE_URL"),
  token: required("BILLPLANE_TOKEN"),
  tenantToken: required("BILLPLANE_TENANT_TOKEN"),
  stripeDouble: process.env.STRIPE_DOUBLE_URL ?? "",
  appOrigin: process.env.BILLPLANE_APP_ORIGIN ?? "https://app.realtyos.test",
};

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set: run these tests through pytest`);
  return value;
}

/** A fetch that records every attempt (`{ method, url, body }`) into `log`, then really fetches. */
export function loggingFetch(log) {
  return async (url, init = {}) => {
    log.push({ method: init.method ?? "GET", url: String(url), body: init.body });
    return fetch(url, init);
  };
}

/** A local port nothing listens on. */
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** A server that accepts connections and never answers; `close()` when done. */
export async function silentServer() {
  const sockets = new Set();
  const server = net.createServer((socket) => sockets.add(socket));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      sockets.forEach((s) => s.destroy());
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A proxy in front of the real billplane. The first `failures` requests are passed on but
 * answered 502 (the answer was lost on its way back). `bodies` keeps what it saw; `close()`
 * makes billplane unreachable through it.
 */
export async function proxy(upstream, { failures = 0 } = {}) {
  const bodies = [];
  const server = http.createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString();
    bodies.push(body);
    const answer = await fetch(upstream + request.url, {
      method: request.method,
      headers: { authorization: request.headers.authorization, "content-type": "application/json" },
      body: body || undefined,
    });
    const text = await answer.text();
    if (bodies.length <= failures) {
      response.writeHead(502, { "content-type": "text/html" }).end("<h1>502 Bad Gateway</h1>");
      return;
    }
    response.writeHead(answer.status, { "content-type": "application/json" }).end(text);
  });
  server.keepAliveTimeout = 1;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    bodies,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A stand-in for billplane's address that can go away and come back on the same port: `down()`
 * refuses every connection (as a stopped server does) until `up()`; `bodies` keeps each request
 * body it passed on. `close()` when done.
 */
export async function switchable(upstream) {
  const bodies = [];
  const server = http.createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString();
    bodies.push({ method: request.method, path: request.url, body });
    const answer = await fetch(upstream + request.url, {
      method: request.method,
      headers: {
        authorization: request.headers.authorization,
        accept: request.headers.accept ?? "application/json",
        "content-type": "application/json",
      },
      body: body || undefined,
    });
    const type = answer.headers.get("content-type") ?? "application/json";
    response.writeHead(answer.status, { "content-type": type }).end(await answer.text());
  });
  server.keepAliveTimeout = 1;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  let listening = true;
  const down = async () => {
    if (!listening) return;
    listening = false;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    down,
    up: async () => {
      if (listening) return;
      await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
      listening = true;
    },
    close: down,
  };
}

/** A fresh directory for files a test writes (an outbox's, say). */
export async function temporaryDirectory() {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  return mkdtemp(join(tmpdir(), "billplane-js-"));
}

/** A clock the test moves by hand (milliseconds). */
export function manualClock(start = 1_000_000) {
  const clock = () => clock.now;
  clock.now = start;
  return clock;
}
