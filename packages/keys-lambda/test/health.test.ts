import { mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditRecord } from "@blindcast/keys";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { createPostgresLeaseStore, type PostgresLeaseStore } from "@blindcast/keys/lease-postgres";
import { createSqliteLeaseStore } from "@blindcast/keys/lease-sqlite";
import {
  createHealthChecks,
  type RunningKeyServer,
  startKeyServer,
  withHealthChecks,
} from "@blindcast/keys/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type BlackholeProxy, startBlackholeProxy } from "./support/blackhole-proxy.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";
import { databaseUrl } from "./support/postgres.js";

const ORIGIN = "http://localhost:5173";
const running: RunningKeyServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

async function start(options: Partial<Parameters<typeof startKeyServer>[0]> = {}) {
  const audit: AuditRecord[] = [];
  const logger = recordingLogger();
  const server = await startKeyServer({
    masterKey,
    salt,
    corsOrigins: ORIGIN,
    port: 0,
    // Refuses everyone: a probe must not need a token.
    authenticate: () => ({ ok: false, status: 401, reason: "no token" }),
    leaseStore: createMemoryLeaseStore(),
    audit: (record) => audit.push(record),
    logger,
    ...options,
  });
  running.push(server);
  const base = server.keysUrl.replace(/\/keys$/, "");
  return { server, base, audit, logger };
}

describe("/healthz and /readyz on startKeyServer", () => {
  it("answer 200 without a token, without CORS headers and without an audit record", async () => {
    const { server, base, audit } = await start();
    for (const [path, body] of [
      ["/healthz", { status: "alive" }],
      ["/readyz", { status: "ready", leaseStore: "answers" }],
    ] as const) {
      const response = await fetch(`${base}${path}`, { headers: { origin: ORIGIN } });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual(body);
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    }
    // A key request next to them is audited (and refused: no token), the probes are not.
    const key = await fetch(`${server.keysUrl}/movie-42`, { headers: { origin: ORIGIN } });
    expect(key.status).toBe(401);
    expect(audit.map((record) => record.route)).toEqual(["content_key"]);
  });

  it("take HEAD and a query string, refuse other methods with 405 and Allow", async () => {
    const { base, audit } = await start();
    const head = await fetch(`${base}/healthz?probe=1`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const post = await fetch(`${base}/readyz`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect(audit).toEqual([]);
  });

  it("live outside the key routes only: /keys/healthz is a key request", async () => {
    const { server, audit } = await start();
    const response = await fetch(`${server.keysUrl}/healthz`);
    expect(response.status).toBe(401);
    expect(audit).toHaveLength(1);
  });

  it("are off with healthChecks: false", async () => {
    const { base, audit } = await start({ healthChecks: false });
    expect((await fetch(`${base}/healthz`)).status).toBe(404);
    expect(audit).toHaveLength(1);
  });

  it("report ready with no lease store, and a store without ping as not checked", async () => {
    const none = await start({ leaseStore: undefined, authenticate: undefined });
    expect(await (await fetch(`${none.base}/readyz`)).json()).toEqual({
      status: "ready",
      leaseStore: "none",
    });
    const { ping: _, ...withoutPing } = createMemoryLeaseStore();
    const custom = await start({ leaseStore: withoutPing });
    expect(await (await fetch(`${custom.base}/readyz`)).json()).toEqual({
      status: "ready",
      leaseStore: "not checked (the store has no ping)",
    });
  });

  it("answers 503 once the SQLite store is closed", async () => {
    const store = createSqliteLeaseStore(join(mkdtempSync(join(tmpdir(), "blindcast-ready-")), "leases.db"));
    const { base, logger } = await start({ leaseStore: store });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    store.close();
    const response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: "not ready", reason: "the lease store does not answer" });
    // Said once, naming the kind of error only.
    await fetch(`${base}/readyz`);
    expect(logger.errors).toEqual(["blindcast-keys: the lease store does not answer (TypeError): not ready"]);
    // The process is still alive.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe("/readyz with PostgreSQL whose connections go silent", () => {
  const QUERY_TIMEOUT_MS = 1000;
  let proxy: BlackholeProxy;
  let store: PostgresLeaseStore;

  beforeAll(async () => {
    proxy = await startBlackholeProxy(Number(new URL(databaseUrl()).port));
    const url = new URL(databaseUrl());
    url.port = String(proxy.port);
    store = await createPostgresLeaseStore(url.href, {
      table: `ready_${process.pid}`,
      queryTimeoutMillis: QUERY_TIMEOUT_MS,
      logger: recordingLogger(),
    });
  });
  afterAll(async () => {
    proxy.restore();
    await store?.close();
    await proxy?.close();
  });

  it("answers 503 within the store's bound while silent, 200 again once connections work", async () => {
    const { base, logger } = await start({ leaseStore: store });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    proxy.blackhole();
    const probes = await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/readyz`)));
    expect(probes.map((p) => p.status)).toEqual(Array(10).fill(503));
    expect(logger.errors).toEqual([
      "blindcast-keys: the lease store does not answer (LeaseStoreTimeoutError): not ready",
    ]);
    // Liveness does not depend on the store.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    proxy.restore();
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(logger.warnings).toContain("blindcast-keys: the lease store answers again: ready");
  });
});

describe("createHealthChecks", () => {
  async function serve(health: ReturnType<typeof createHealthChecks>) {
    const server = createServer(
      withHealthChecks(health, (_req, res) => {
        res.writeHead(418).end();
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  it("gives up on a store whose ping never answers, with one ping for many probes", async () => {
    let pings = 0;
    const store = {
      ...createMemoryLeaseStore(),
      ping: () => {
        pings++;
        return new Promise<void>(() => {});
      },
    };
    const logger = recordingLogger();
    const server = await serve(
      createHealthChecks({ leaseStore: store, readinessTimeoutMillis: 200, logger }),
    );
    try {
      const first = await Promise.all(Array.from({ length: 20 }, () => fetch(`${server.url}/readyz`)));
      expect(first.map((r) => r.status)).toEqual(Array(20).fill(503));
      const again = await fetch(`${server.url}/readyz`);
      expect(again.status).toBe(503);
      // The hung ping is still the one: no pile of pings behind a store that hangs.
      expect(pings).toBe(1);
      expect(logger.errors).toEqual([
        "blindcast-keys: the lease store does not answer (no answer within 200 ms): not ready",
      ]);
      // Other requests go on to the next listener.
      expect((await fetch(`${server.url}/keys/x`)).status).toBe(418);
    } finally {
      await server.close();
    }
  });

  it("answers 503 to readiness once stopping, while liveness stays 200", async () => {
    const health = createHealthChecks({ leaseStore: createMemoryLeaseStore() });
    const server = await serve(health);
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      health.markStopping();
      const response = await fetch(`${server.url}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ status: "stopping" });
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
