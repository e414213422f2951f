import { readFileSync } from "node:fs";
import { bytesToHex } from "@blindcast/crypto";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createPostgresLeaseStore, type PostgresLeaseStore } from "@blindcast/keys/lease-postgres";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type BlackholeProxy, startBlackholeProxy } from "./support/blackhole-proxy.js";
import { headersOf, jsonBody, keyBytes, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt, vectorFor } from "./support/fixtures.js";
import { databaseUrl, earlierSchemaSql, roleWithoutCreate } from "./support/postgres.js";

// Connections that go silent (a failover, a stateful firewall that forgot them): no close, no
// reset, no answer. Through a proxy on loopback that can silence them, in front of the test
// run's real PostgreSQL.
const QUERY_TIMEOUT_MS = 1000;
// What a request may take beyond the store's bound: the rest of the handler, a busy machine.
const SLACK_MS = 1000;

const admin = new pg.Pool({ connectionString: databaseUrl(), max: 1 });
let proxy: BlackholeProxy;
let stores: PostgresLeaseStore[] = [];
let tables = 0;
const logger = recordingLogger();

beforeAll(async () => {
  proxy = await startBlackholeProxy(Number(new URL(databaseUrl()).port));
});
afterEach(async () => {
  proxy.restore();
  await Promise.all(stores.map((s) => s.close()));
  stores = [];
});
afterAll(async () => {
  await proxy?.close();
  await admin.end();
});

/**
 * A store connecting through the proxy. `withoutRoutines`: as a role that may not create the
 * lease routines, on a table made beforehand, so that it uses plain statements.
 */
async function storeBehindProxy(withoutRoutines = false): Promise<PostgresLeaseStore> {
  const table = `blackhole_${process.pid}_${tables++}`;
  let url = new URL(databaseUrl());
  if (withoutRoutines) {
    await admin.query(earlierSchemaSql(table, "previous"));
    url = new URL(await roleWithoutCreate(admin, [table]));
  }
  url.port = String(proxy.port);
  const store = await createPostgresLeaseStore(url.href, {
    table,
    queryTimeoutMillis: QUERY_TIMEOUT_MS,
    logger,
  });
  stores.push(store);
  await store.ensureSchema();
  return store;
}

function keyServer(store: PostgresLeaseStore) {
  const server = createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    // A test stand-in for token verification: the viewer is whoever the header names.
    authenticate: (event) => {
      const viewerId = event.headers?.["x-viewer"];
      return viewerId ? { ok: true, viewerId } : { ok: false, status: 401, reason: "no viewer" };
    },
    leaseStore: store,
    maxConcurrentLeases: 10,
    audit: false,
    logger,
  });
  const timed = async (event: Parameters<typeof server>[0]) => {
    const started = performance.now();
    const response = await server(event);
    return { response, ms: performance.now() - started };
  };
  const json = (viewer: string) => ({ "content-type": "application/json", "x-viewer": viewer });
  return {
    create: (viewer: string) =>
      timed(
        v2Event({
          method: "POST",
          path: "/keys/leases",
          headers: json(viewer),
          body: '{"contentId":"movie-42"}',
        }),
      ),
    renew: (viewer: string, leaseId: string) =>
      timed(
        v2Event({
          method: "POST",
          path: "/keys/leases/renew",
          headers: json(viewer),
          body: JSON.stringify({ leaseId }),
        }),
      ),
    release: (viewer: string, leaseId: string) =>
      timed(v2Event({ method: "DELETE", path: `/keys/leases/${leaseId}`, headers: { "x-viewer": viewer } })),
    key: (viewer: string, leaseId: string) =>
      timed(
        v2Event({ path: "/keys/movie-42/7", headers: { "x-viewer": viewer, "x-blindcast-lease": leaseId } }),
      ),
  };
}

type Answer = Awaited<ReturnType<ReturnType<typeof keyServer>["key"]>>;

function expectUnavailableWithinBound(answers: Answer[]) {
  for (const { response, ms } of answers) {
    expect(response.statusCode).toBe(503);
    expect(headersOf(response)["retry-after"]).toBe("1");
    expect(jsonBody(response).code).toBe("store_unavailable");
    expect(ms).toBeLessThan(QUERY_TIMEOUT_MS + SLACK_MS);
  }
}

describe("the Postgres lease store when its connections go silent", () => {
  it("answers 503 within its bound while silent, and recovers by itself once connections work", async () => {
    const store = await storeBehindProxy();
    const server = keyServer(store);
    const viewers = ["viewer-0", "viewer-1", "viewer-2", "viewer-3"];
    const leases: string[] = [];
    for (const viewer of viewers) {
      const { response } = await server.create(viewer);
      expect(response.statusCode).toBe(201);
      leases.push(String(jsonBody(response).leaseId));
    }
    const lease = (i: number) => leases[i] ?? "";
    // Both pooled connections open and idle, as in a warm execution environment.
    const warm = await Promise.all(viewers.map((viewer, i) => server.key(viewer, lease(i))));
    for (const { response } of warm) expect(response.statusCode).toBe(200);
    expect(store.pool.totalCount).toBe(2);

    proxy.blackhole();
    // Every route, more requests than connections: the pooled connections are silent, and the
    // new ones the pool opens in their place are accepted but never answered.
    const silent = await Promise.all([
      server.key("viewer-0", lease(0)),
      server.key("viewer-1", lease(1)),
      server.key("viewer-0", lease(0)),
      server.create("viewer-9"),
      server.renew("viewer-2", lease(2)),
      server.release("viewer-3", lease(3)),
    ]);
    expectUnavailableWithinBound(silent);
    // Still silent: the next requests are bounded just the same.
    expectUnavailableWithinBound(
      await Promise.all([server.key("viewer-1", lease(1)), server.create("viewer-8")]),
    );

    proxy.restore();
    const restored = performance.now();
    let recoveredAfterMs: number | undefined;
    const refusedMeanwhile: number[] = [];
    while (recoveredAfterMs === undefined && performance.now() - restored < 5 * QUERY_TIMEOUT_MS) {
      const { response, ms } = await server.key("viewer-0", lease(0));
      if (response.statusCode === 200) recoveredAfterMs = performance.now() - restored;
      else {
        expect(response.statusCode).toBe(503);
        expect(ms).toBeLessThan(QUERY_TIMEOUT_MS + SLACK_MS);
        refusedMeanwhile.push(ms);
      }
    }
    expect(recoveredAfterMs).toBeDefined();
    // Once one request succeeds, no silent connection is ever handed out again.
    const after = await Promise.all(viewers.map((viewer, i) => server.key(viewer, lease(i))));
    for (const { response } of after) {
      expect(response.statusCode).toBe(200);
      expect(bytesToHex(keyBytes(response))).toBe(vectorFor("movie-42", 7));
    }
    expect((await server.renew("viewer-2", lease(2))).response.statusCode).toBe(200);
    expect((await server.create("viewer-9")).response.statusCode).toBe(201);
    expect((await server.release("viewer-3", lease(3))).response.statusCode).toBe(204);
    // Every connection that went silent was destroyed by the client, none kept in the pool.
    await vi.waitFor(() => expect(proxy.openSilenced()).toBe(0), { timeout: 3 * QUERY_TIMEOUT_MS });
    console.info(
      `blackhole: 503s in ${summarize(silent.map((a) => a.ms))} ms; recovered ${Math.round(recoveredAfterMs ?? 0)} ms after connections worked again (${refusedMeanwhile.length} 503s meanwhile)`,
    );
  }, 30_000);

  it("closes within the bound while a call hangs on a silent connection", async () => {
    const store = await storeBehindProxy();
    const created = await store.create({ contentId: "c", viewerId: "v", ttlSeconds: 60 });
    if (!created.ok) throw new Error("create refused");
    proxy.blackhole();
    const inFlight = store.get(created.lease.leaseId);
    inFlight.catch(() => {});
    // Its connection checked out, its statement sent into the silence.
    await vi.waitFor(() => expect(store.pool.totalCount - store.pool.idleCount).toBe(1));
    const started = performance.now();
    await store.close();
    expect(performance.now() - started).toBeLessThan(QUERY_TIMEOUT_MS + SLACK_MS);
    await expect(inFlight).rejects.toThrow(/no answer from PostgreSQL within 1000 ms/);
  }, 30_000);

  it.each([
    // One statement, the routine's call: whatever is cut, the lock lives only as long as the call.
    ["its routine call", false, "_create_"],
    // The transaction has begun and holds the viewer's lock when its INSERT vanishes: the server
    // keeps that session open, idle in its transaction, as nothing told it the client left.
    ["the transaction of plain statements", true, "INSERT INTO"],
  ] as const)(
    "leaves no viewer locked out when a capped create is cut off half way: %s",
    async (_, withoutRoutines, marker) => {
      const store = await storeBehindProxy(withoutRoutines);
      const server = keyServer(store);
      proxy.blackholeOnClientBytes(marker);
      const cut = await server.create("viewer-cut");
      expectUnavailableWithinBound([cut]);
      const { rows } = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'",
      );
      expect(rows[0]?.n ?? 0).toBeLessThanOrEqual(1);
      // The same viewer's next create waits for that lock: it must be freed in time for it.
      const next = await server.create("viewer-cut");
      expect(next.response.statusCode).toBe(201);
      expect(next.ms).toBeLessThan(QUERY_TIMEOUT_MS + SLACK_MS);
      console.info(
        `cut transaction: 503 in ${Math.round(cut.ms)} ms; next create 201 in ${Math.round(next.ms)} ms`,
      );
    },
    30_000,
  );
});

function summarize(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `${Math.round(sorted[0] ?? 0)}–${Math.round(sorted[sorted.length - 1] ?? 0)}`;
}

describe("the Postgres lease store's time bounds", () => {
  it("bounds the server side too, and keeps TCP keepalive on every connection", async () => {
    const store = await createPostgresLeaseStore(databaseUrl(), {
      table: `bounds_${process.pid}`,
      pool: { max: 1 },
    });
    stores.push(store);
    await store.ensureSchema();
    const client = await store.pool.connect();
    try {
      const { rows } = await client.query<{ statement: string; idle: string }>(
        "SELECT current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle",
      );
      // Defaults follow queryTimeoutMillis (2000 ms): the server stops when the client has.
      expect(rows[0]).toEqual({ statement: "2s", idle: "2s" });
      // Linux lists a socket's pending keepalive timer as "02" in /proc/net/tcp.
      const port = (client as pg.PoolClient & { connection: { stream: { localPort?: number } } }).connection
        .stream.localPort;
      const local = `0100007F:${(port ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
      const line = readFileSync("/proc/net/tcp", "utf8")
        .split("\n")
        .find((l) => l.trim().split(/\s+/)[1] === local);
      expect(line?.trim().split(/\s+/)[5]?.split(":")[0]).toBe("02");
    } finally {
      client.release();
    }
  });

  it("refuses time bounds and sizes that make no sense, saying which", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ queryTimeoutMillis: 0 }, /queryTimeoutMillis must be a whole number from 1 to 2147483647, not 0/],
      [{ queryTimeoutMillis: -5 }, /queryTimeoutMillis must be/],
      [{ queryTimeoutMillis: 1.5 }, /queryTimeoutMillis must be/],
      [{ queryTimeoutMillis: Number.NaN }, /queryTimeoutMillis must be/],
      [{ queryTimeoutMillis: "2000" }, /queryTimeoutMillis must be .*not "2000"/],
      [{ queryTimeoutMillis: 2 ** 31 }, /queryTimeoutMillis must be/],
      [{ pool: { connectionTimeoutMillis: 0 } }, /pool\.connectionTimeoutMillis must be/],
      [
        { pool: { statementTimeoutMillis: Number.POSITIVE_INFINITY } },
        /pool\.statementTimeoutMillis must be/,
      ],
      [{ pool: { keepAliveInitialDelayMillis: -1 } }, /pool\.keepAliveInitialDelayMillis must be/],
      [{ pool: { idleTimeoutMillis: "60s" } }, /pool\.idleTimeoutMillis must be/],
      [{ pool: { max: 0 } }, /pool\.max must be/],
    ];
    for (const [options, message] of cases) {
      await expect(createPostgresLeaseStore(databaseUrl(), options)).rejects.toThrow(message);
    }
  });
});
