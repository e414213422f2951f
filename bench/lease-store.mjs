// 4. The Postgres lease store: creates and renews per second with N concurrent clients, against
// `SELECT 1` round trips on the same pool, the floor of any operation that asks the database.
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
      ...(await measure(delayed, "≈2 ms RTT", false)),
      ...(await measure(delayed, "≈2 ms RTT", true)),
    ];
  } finally {
    await proxy.close();
    cluster.destroy();
  }
}

async function measure(url, network, preparedStatements) {
  const label = preparedStatements ? `${network}, preparedStatements` : network;
  const pool = new pg.Pool({ connectionString: url, max: CLIENTS });
  const store = await createPostgresLeaseStore(pool, {
    table: `bench_${label.replace(/\W/g, "").toLowerCase()}`,
    preparedStatements,
  });
  try {
    await store.ensureSchema();
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
        target: "≥ 0.5",
        pass: m.candidate / m.baseline >= 0.5,
        raw: m,
      });
    }
    return results;
  } finally {
    await pool.end();
  }
}

export { median };
