import { writeFileSync } from "node:fs";
import { createPostgresLeaseStore, type PostgresLeaseStore } from "@blindcast/keys/lease-postgres";
import { type RunningKeyServer, startKeyServer } from "@blindcast/keys/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, startCluster } from "../../../scripts/pg-cluster.mjs";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

// Many simulated viewers against the local server on Postgres leases, for a bounded time on
// loopback, while PostgreSQL is stopped and started again mid-run.
const VIEWERS = 40;
const CAP = 2;
// Phases end on counts, not clock time, so a busy machine slows the test without failing it;
// each phase still has a deadline, so a stuck server fails it instead of hanging.
const BEFORE_REQUESTS = 600;
const OUTAGE_REQUESTS = 100;
const OUTAGE_MIN_MS = 2_000;
const AFTER_REQUESTS = 600;
const PHASE_DEADLINE_MS = 30_000;

interface Outcome {
  route: string;
  status: number;
  started: number;
  ended: number;
}

let cluster: Cluster;
let store: PostgresLeaseStore;
let server: RunningKeyServer;

beforeAll(async () => {
  cluster = await startCluster();
  store = await createPostgresLeaseStore(cluster.url, {
    pool: { max: 10, connectionTimeoutMillis: 1000 },
    logger: recordingLogger(),
  });
  server = await startKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    port: 0,
    authenticate: (event) => {
      const viewer = event.headers?.["x-viewer"];
      return viewer ? { ok: true, viewerId: viewer } : { ok: false, status: 401, reason: "no viewer" };
    },
    leaseStore: store,
    maxConcurrentLeases: CAP,
    leaseTtlSeconds: 120,
    audit: false,
    logger: recordingLogger(),
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await store?.close();
  cluster?.destroy();
});

describe("load with a database restart", () => {
  it("answers only 503 during the outage, recovers fully, loses no lease, never exceeds a cap", async () => {
    const outcomes: Outcome[] = [];
    const held = new Map<string, Set<string>>();
    let overCap = 0;
    const start = Date.now();
    let running = true;

    const call = async (route: string, viewer: string, init: RequestInit & { path: string }) => {
      const started = Date.now();
      const response = await fetch(`${server.keysUrl}${init.path}`, {
        ...init,
        headers: {
          "x-viewer": viewer,
          "content-type": "application/json",
          ...(init.headers as Record<string, string>),
        },
      });
      const body = response.headers.get("content-type")?.includes("json")
        ? await response.json()
        : await response.arrayBuffer();
      outcomes.push({ route, status: response.status, started, ended: Date.now() });
      return { status: response.status, body: body as { leaseId?: string } };
    };

    const viewer = async (v: number) => {
      const id = `viewer-${v}`;
      const mine = new Set<string>();
      held.set(id, mine);
      for (let i = 0; running; i++) {
        if (mine.size < CAP + 1) {
          const created = await call("create", id, {
            path: "/leases",
            method: "POST",
            body: JSON.stringify({ contentId: `movie-${v % 5}` }),
          });
          if (created.status === 201 && created.body.leaseId) {
            if (mine.size >= CAP) overCap++;
            mine.add(created.body.leaseId);
          }
        }
        const [lease] = mine;
        if (!lease) continue;
        await call("key", id, { path: `/movie-${v % 5}/${i % 20}`, headers: { "x-blindcast-lease": lease } });
        if (i % 4 === 0)
          await call("renew", id, {
            path: "/leases/renew",
            method: "POST",
            body: JSON.stringify({ leaseId: lease }),
          });
        if (i % 9 === 8) {
          const released = await call("release", id, { path: `/leases/${lease}`, method: "DELETE" });
          if (released.status === 204) mine.delete(lease);
        }
      }
    };

    /** Resolves once `count` requests have ended after `since`; fails the test past the deadline. */
    const endedSince = async (since: number, count: number, phase: string) => {
      const limit = Date.now() + PHASE_DEADLINE_MS;
      while (outcomes.filter((o) => o.started >= since).length < count) {
        if (Date.now() > limit)
          throw new Error(`${phase}: fewer than ${count} requests in ${PHASE_DEADLINE_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const outage = (async () => {
      try {
        await endedSince(start, BEFORE_REQUESTS, "before the outage");
        const stopping = Date.now();
        cluster.stop();
        const down = Date.now();
        await Promise.all([
          endedSince(down, OUTAGE_REQUESTS, "during the outage"),
          new Promise((resolve) => setTimeout(resolve, OUTAGE_MIN_MS)),
        ]);
        const starting = Date.now();
        cluster.start();
        const up = Date.now();
        await endedSince(up + 1000, AFTER_REQUESTS, "after recovery");
        return { stopping, down, starting, up };
      } finally {
        running = false;
      }
    })();
    await Promise.all(Array.from({ length: VIEWERS }, (_, v) => viewer(v)));
    const window = await outage;

    const statuses = (list: Outcome[]) =>
      list.reduce<Record<number, number>>((acc, o) => {
        acc[o.status] = (acc[o.status] ?? 0) + 1;
        return acc;
      }, {});
    const during = outcomes.filter((o) => o.started >= window.down && o.ended <= window.starting);
    const after = outcomes.filter((o) => o.started >= window.up + 1000);
    const before = outcomes.filter((o) => o.ended <= window.stopping);

    // Committed leases that were never released must all still be there.
    let lost = 0;
    for (const leasesOfViewer of held.values()) {
      for (const leaseId of leasesOfViewer) if ((await store.get(leaseId)).status !== "live") lost++;
    }
    const perViewer = await store.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM blindcast_leases WHERE expires_at > now() GROUP BY viewer_id ORDER BY n DESC LIMIT 1",
    );

    const summary = {
      viewers: VIEWERS,
      seconds: (Date.now() - start) / 1000,
      requests: outcomes.length,
      requestsPerSecond: Math.round(outcomes.length / ((Date.now() - start) / 1000)),
      outageSeconds: (window.starting - window.down) / 1000,
      statuses: statuses(outcomes),
      duringOutage: statuses(during),
      afterRecovery: statuses(after),
      leasesHeldAtEnd: [...held.values()].reduce((n, s) => n + s.size, 0),
      leasesLost: lost,
      mostLiveLeasesOfOneViewer: Number(perViewer.rows[0]?.n ?? 0),
      createsAboveCap: overCap,
    };
    console.log(`load-fault summary: ${JSON.stringify(summary)}`);
    if (process.env.BLINDCAST_LOAD_REPORT)
      writeFileSync(process.env.BLINDCAST_LOAD_REPORT, JSON.stringify(summary, null, 2));

    expect(before.length).toBeGreaterThan(500);
    expect(during.length).toBeGreaterThan(50);
    expect(Object.keys(statuses(during))).toEqual(["503"]);
    expect(after.length).toBeGreaterThan(500);
    for (const status of Object.keys(statuses(after)).map(Number))
      expect([200, 201, 204, 429]).toContain(status);
    for (const status of Object.keys(statuses(outcomes)).map(Number))
      expect([200, 201, 204, 429, 503]).toContain(status);
    expect(lost).toBe(0);
    expect(overCap).toBe(0);
    expect(summary.mostLiveLeasesOfOneViewer).toBeLessThanOrEqual(CAP);
  }, 120_000);
});
