// 4. The Postgres lease store: creates and renews per second with N concurrent clients, against
// `SELECT 1` round trips on the same pool, the floor of any operation that asks the database.
// Measured with the defaults (the lease routines, unnamed statements), with named statements, and
// on loopback as a role that may not create the routines: the plain statements the store used
// before them, as "before" in the same run.
import { createPostgresLeaseStore } from "@blindcast/keys/lease-postgres";
import pg from "pg";
import { startCluster } from "../scripts/pg-cluster.mjs";
import { alternate, median, round } from "./lib/stats.mjs";
import { startTcpDelayProxy } from "./lib/tcp-delay-proxy.mjs";

const CLIENTS = 8;
const MS = 1500;
const RUNS = 3;

async function throughput(operation) {
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      while (performance.now() - start < MS) {
        await operation(client, done++);
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

export async function run() {
  const cluster = await startCluster();
  // Loopback, where the database's own work dominates; then through a proxy adding ~1 ms each
  // way, closer to a Lambda talking to RDS in the same region.
  const proxy = await startTcpDelayProxy(Number(new URL(cluster.url).port), 1);
  try {
    const delayed = cluster.url.replace(/:(\d+)\//, `:${proxy.port}/`);
    // The default (unnamed statements, safe behind RDS Proxy and PgBouncer), then with
    // `preparedStatements: true`, for direct connections.
    return [
      ...(await measure(cluster.url, "loopback", false)),
      ...(await measure(cluster.url, "loopback", true)),
      ...(await measure(await roleWithoutCreate(cluster.url), "loopback, plain statements", false)),
      ...(await measure(delayed, "≈2 ms RTT", false)),
      ...(await measure(delayed, "≈2 ms RTT", true)),
    ];
  } finally {
    await proxy.close();
    cluster.destroy();
  }
}

/**
 * A connection string for a role that may use a lease table made beforehand but not create
 * functions (PostgreSQL 15 and later give no one CREATE on `public` by default): the store then
 * runs without its routines, on plain statements, as before them.
 */
async function roleWithoutCreate(url) {
  const admin = new pg.Client(url);
  await admin.connect();
  try {
    await admin.query(`
      CREATE ROLE bench_dml LOGIN;
      REVOKE CREATE ON SCHEMA public FROM PUBLIC;
      CREATE TABLE bench_plain (
        lease_id text PRIMARY KEY, content_id text NOT NULL, viewer_id text NOT NULL,
        expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
      ) WITH (fillfactor = 70);
      CREATE INDEX bench_plain_viewer_idx ON bench_plain (viewer_id);
      CREATE INDEX bench_plain_created_idx ON bench_plain (created_at);
      GRANT SELECT, INSERT, UPDATE, DELETE ON bench_plain TO bench_dml;`);
  } finally {
    await admin.end();
  }
  const role = new URL(url);
  role.username = "bench_dml";
  return role.href;
}

async function measure(url, network, preparedStatements) {
  const label = preparedStatements ? `${network}, preparedStatements` : network;
  const pool = new pg.Pool({ connectionString: url, max: CLIENTS });
  const plain = network.includes("plain statements");
  const notes = [];
  const store = await createPostgresLeaseStore(pool, {
    table: plain ? "bench_plain" : `bench_${label.replace(/\W/g, "").toLowerCase()}`,
    preparedStatements,
    // Only the plain-statement run is told the routines are unavailable; anything else is a failure.
    logger: { error: (message) => notes.push(message) },
  });
  try {
    await store.ensureSchema();
    if (plain !== (notes.length === 1)) throw new Error(`unexpected store messages: ${notes.join("; ")}`);
    const leases = [];
    for (let i = 0; i < CLIENTS; i++) {
      const created = await store.create({
        contentId: "movie-42",
        viewerId: `viewer-${i}`,
        ttlSeconds: 3600,
      });
      leases.push(created.lease.leaseId);
    }
    const select1 = () => pool.query("SELECT 1");
    // The same round trip through the extended protocol (parse, bind, execute), as every
    // parameterised statement of the store goes: attributes the gap between protocol and work.
    const selectParam = (client) => pool.query("SELECT $1::int", [client]);
    const create = (client, n) =>
      store.create({ contentId: "movie-42", viewerId: `viewer-${client}-${n}`, ttlSeconds: 60 });
    const capped = (client, n) =>
      store.create({
        contentId: "movie-42",
        viewerId: `capped-${client}-${n % 50}`,
        ttlSeconds: 60,
        maxConcurrentLeases: 1_000_000,
      });
    const renew = (client) =>
      store.renew({ leaseId: leases[client], viewerId: `viewer-${client}`, ttlSeconds: 3600 });
    const get = (client) => store.get(leases[client]);
    await throughput(select1);
    const results = [];
    const param = await alternate(
      RUNS,
      () => throughput(selectParam),
      () => throughput(select1),
    );
    for (const [id, name, op] of [
      ["get", "get (every key request)", get],
      ["create", "create", create],
      ["create-capped", "create with maxConcurrentLeases", capped],
      ["renew", "renew", renew],
    ]) {
      const m = await alternate(
        RUNS,
        () => throughput(op),
        () => throughput(select1),
      );
      results.push({
        id: `lease-${id}-${label.replace(/\W/g, "").toLowerCase()}`,
        name: `Postgres lease ${name}, ${CLIENTS} clients, ${label}`,
        candidate: `${round(m.candidate)} ops/s`,
        baseline: `${round(m.baseline)} SELECT 1/s (SELECT $1 through the extended protocol: ${round(param.candidate / param.baseline)} of it)`,
        ratio: round(m.candidate / m.baseline),
        // Issue 17's targets: 0.5 of a round trip; 0.3 for the capped create, which also takes
        // the viewer's lock and counts the viewer's leases.
        target: `≥ ${id === "create-capped" ? 0.3 : 0.5}`,
        pass: m.candidate / m.baseline >= (id === "create-capped" ? 0.3 : 0.5),
        raw: m,
      });
    }
    return results;
  } finally {
    await pool.end();
  }
}

export { median };
