import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leaseStoreConformance } from "@blindcast/keys/conformance";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { createPostgresLeaseStore, type PostgresLeaseStore } from "@blindcast/keys/lease-postgres";
import { createSqliteLeaseStore, type SqliteLeaseStore } from "@blindcast/keys/lease-sqlite";
import pg from "pg";
import { afterAll, describe, expect, it, vi } from "vitest";
import { databaseUrl } from "./support/postgres.js";

// Memory and SQLite take a JS clock; each store gets its own, moved by advanceTime.
const clocks = new WeakMap<object, { t: number }>();

leaseStoreConformance(
  "memory",
  {
    create() {
      const clock = { t: Date.parse("2026-11-28T12:00:00Z") };
      const store = createMemoryLeaseStore({ now: () => clock.t });
      clocks.set(store, clock);
      return store;
    },
    advanceTime(store, seconds) {
      const clock = clocks.get(store);
      if (clock) clock.t += seconds * 1000;
    },
  },
  { describe, it },
);

const sqliteDir = mkdtempSync(join(tmpdir(), "blindcast-sqlite-"));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));
let sqliteFiles = 0;

leaseStoreConformance<SqliteLeaseStore>(
  "sqlite",
  {
    create() {
      const clock = { t: Date.parse("2026-11-28T12:00:00Z") };
      const store = createSqliteLeaseStore(join(sqliteDir, `leases-${sqliteFiles++}.db`), {
        now: () => clock.t,
      });
      clocks.set(store, clock);
      return store;
    },
    advanceTime(store, seconds) {
      const clock = clocks.get(store);
      if (clock) clock.t += seconds * 1000;
    },
    dispose: (store) => store.close(),
  },
  { describe, it },
);

// Postgres: every test gets its own table, and a clock table its expiry is judged against, so
// time moves deterministically while expiry stays the database's judgement.
const admin = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
afterAll(() => admin.end());
let tables = 0;
const clockTables = new WeakMap<object, string>();

for (const preparedStatements of [false, true]) {
  leaseStoreConformance<PostgresLeaseStore>(
    preparedStatements ? "postgres, prepared statements" : "postgres",
    {
      async create() {
        const name = `conformance_${process.pid}_${tables++}`;
        await admin.query(
          `CREATE TABLE ${name}_clock (shift interval NOT NULL); INSERT INTO ${name}_clock VALUES ('0')`,
        );
        const store = await createPostgresLeaseStore(databaseUrl(), {
          table: name,
          pool: { max: 30 },
          clock: `(now() + (SELECT shift FROM ${name}_clock))`,
          preparedStatements,
        });
        clockTables.set(store, `${name}_clock`);
        return store;
      },
      async advanceTime(store, seconds) {
        await admin.query(`UPDATE ${clockTables.get(store)} SET shift = shift + make_interval(secs => $1)`, [
          seconds,
        ]);
      },
      dispose: (store) => store.close(),
    },
    { describe, it },
  );
}

describe("postgres lease store specifics", () => {
  it.each([false, true])(
    "names its statements only when asked (preparedStatements: %s)",
    async (prepared) => {
      const table = `prepared_${process.pid}_${tables++}`;
      const store = await createPostgresLeaseStore(databaseUrl(), {
        table,
        pool: { max: 1 },
        preparedStatements: prepared,
      });
      try {
        const created = await store.create({ contentId: "demo", viewerId: "v", ttlSeconds: 60 });
        if (!created.ok) throw new Error("create refused");
        expect((await store.get(created.lease.leaseId)).status).toBe("live");
        expect((await store.get(created.lease.leaseId)).status).toBe("live");
        expect(
          (await store.renew({ leaseId: created.lease.leaseId, viewerId: "v", ttlSeconds: 60 })).status,
        ).toBe("renewed");
        // One connection in the pool: this is the session that ran the store's statements.
        const { rows } = await store.pool.query<{ name: string }>(
          "SELECT name FROM pg_prepared_statements ORDER BY name",
        );
        if (prepared) {
          expect(rows).toHaveLength(3);
          for (const row of rows) expect(row.name).toMatch(/^blindcast_[0-9a-f]{8}$/);
        } else {
          expect(rows).toEqual([]);
        }
      } finally {
        await store.close();
      }
    },
  );

  it("creates its schema once when many cold starts race to do it", async () => {
    const table = `race_${process.pid}`;
    const stores = await Promise.all(
      Array.from({ length: 12 }, () => createPostgresLeaseStore(databaseUrl(), { table, pool: { max: 1 } })),
    );
    try {
      const results = await Promise.allSettled(stores.map((s) => s.ensureSchema()));
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
      const { rows } = await admin.query(
        "SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
        [table],
      );
      expect(rows.map((r) => r.indexname)).toEqual([
        `${table}_created_idx`,
        `${table}_pkey`,
        `${table}_viewer_idx`,
      ]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("connects lazily: creating the store needs no database", async () => {
    const store = await createPostgresLeaseStore("postgres://nobody@127.0.0.1:1/none", {
      pool: { connectionTimeoutMillis: 500 },
    });
    await expect(store.get("0123456789abcdef0123456789abcdef")).rejects.toThrow();
    await store.close();
  });

  it("judges expiry by the database clock, not the caller's", async () => {
    const table = `clock_${process.pid}`;
    const store = await createPostgresLeaseStore(databaseUrl(), { table });
    try {
      const result = await store.create({ contentId: "c", viewerId: "v", ttlSeconds: 30 });
      if (!result.ok) throw new Error("create failed");
      const { rows } = await admin.query(
        `SELECT extract(epoch FROM expires_at - now()) AS left FROM ${table}`,
      );
      expect(Number(rows[0].left)).toBeGreaterThan(28);
      expect(Number(rows[0].left)).toBeLessThanOrEqual(30);
      // Move the lease's expiry into the past in the database: it is expired, whatever the caller's clock says.
      await admin.query(`UPDATE ${table} SET expires_at = now() - interval '1 second'`);
      expect((await store.get(result.lease.leaseId)).status).toBe("expired");
    } finally {
      await store.close();
    }
  });

  it("deletes long-expired leases without a cron: in capped creates and in the periodic sweep", async () => {
    const table = `sweep_${process.pid}`;
    await admin.query(
      `CREATE TABLE ${table}_clock (shift interval NOT NULL); INSERT INTO ${table}_clock VALUES ('0')`,
    );
    const store = await createPostgresLeaseStore(databaseUrl(), {
      table,
      clock: `(now() + (SELECT shift FROM ${table}_clock))`,
    });
    const rows = async () => Number((await admin.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    try {
      await store.create({ contentId: "c", viewerId: "capped", ttlSeconds: 10, maxConcurrentLeases: 3 });
      for (let i = 0; i < 5; i++)
        await store.create({ contentId: "c", viewerId: `other-${i}`, ttlSeconds: 10 });
      expect(await rows()).toBe(6);
      // Past expiry plus the 10-minute grace in which a late renewal still hears "expired".
      await admin.query(`UPDATE ${table}_clock SET shift = interval '11 minutes'`);
      await store.create({ contentId: "c", viewerId: "capped", ttlSeconds: 10, maxConcurrentLeases: 3 });
      expect(await rows()).toBe(6); // the capped viewer's old lease went, its new one came
      for (let i = 0; i < 100; i++)
        await store.create({ contentId: "c", viewerId: `later-${i}`, ttlSeconds: 10 });
      await vi.waitFor(async () => expect(await rows()).toBe(101), { timeout: 5000 });
    } finally {
      await store.close();
    }
  });

  it("renews as heap-only (HOT) updates: no index entry written per renewal", async () => {
    const table = `hot_${process.pid}`;
    const store = await createPostgresLeaseStore(databaseUrl(), { table, pool: { max: 1 } });
    let open = true;
    try {
      const created = await store.create({ contentId: "demo", viewerId: "v", ttlSeconds: 60 });
      if (!created.ok) throw new Error("create refused");
      for (let i = 0; i < 20; i++) {
        const renewed = await store.renew({ leaseId: created.lease.leaseId, viewerId: "v", ttlSeconds: 60 });
        expect(renewed.status).toBe("renewed");
      }
      // A session hands its statistics to the shared counters when it ends, at the latest.
      await store.close();
      open = false;
      await vi.waitFor(
        async () => {
          const { rows } = await admin.query(
            "SELECT n_tup_upd::int AS updates, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relname = $1",
            [table],
          );
          expect(rows[0]).toEqual({ updates: 20, hot: 20 });
        },
        { timeout: 10_000, interval: 200 },
      );
    } finally {
      if (open) await store.close();
    }
  });

  it.each([false, true])(
    "sends lease ids, viewers and content ids only as parameters, never in SQL text (preparedStatements: %s)",
    async (preparedStatements) => {
      // The real pool, with every statement text its connections are sent written down: SQL
      // text is what pg_stat_activity shows and what PostgreSQL logs with a failed statement.
      const pool = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
      const texts: string[] = [];
      pool.on("connect", (client) => {
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as { query: unknown }).query = (config: string | { text: string }, ...rest: unknown[]) => {
          texts.push(typeof config === "string" ? config : config.text);
          return query(config, ...rest);
        };
      });
      const store = await createPostgresLeaseStore(pool, {
        table: `params_${process.pid}_${tables++}`,
        preparedStatements,
      });
      try {
        const viewerId = "viewer-that-must-not-show";
        const contentId = "content-that-must-not-show";
        const capped = await store.create({ contentId, viewerId, ttlSeconds: 60, maxConcurrentLeases: 2 });
        const plain = await store.create({ contentId, viewerId: `${viewerId}-2`, ttlSeconds: 60 });
        if (!capped.ok || !plain.ok) throw new Error("create refused");
        const ids = [capped.lease.leaseId, plain.lease.leaseId];
        for (const leaseId of ids) {
          expect((await store.get(leaseId)).status).toBe("live");
          expect((await store.renew({ leaseId, viewerId: "someone-else", ttlSeconds: 60 })).status).toBe(
            "wrong_viewer",
          );
        }
        expect((await store.release({ leaseId: capped.lease.leaseId, viewerId })).status).toBe("released");
        expect(texts.length).toBeGreaterThan(8);
        for (const text of texts) {
          for (const value of [...ids, viewerId, contentId]) expect(text).not.toContain(value);
        }
      } finally {
        await store.close();
        await pool.end();
      }
    },
  );

  it("refuses a table name that is not a plain identifier", async () => {
    await expect(createPostgresLeaseStore(databaseUrl(), { table: 'x"; DROP TABLE y; --' })).rejects.toThrow(
      /lowercase identifier/,
    );
  });
});
