import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leaseStoreConformance } from "@blindcast/keys/conformance";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import {
  createPostgresLeaseStore,
  type PostgresLeaseStore,
  postgresLeaseSchemaSql,
} from "@blindcast/keys/lease-postgres";
import { createSqliteLeaseStore, type SqliteLeaseStore } from "@blindcast/keys/lease-sqlite";
import pg from "pg";
import { afterAll, describe, expect, it, vi } from "vitest";
import { recordingLogger } from "./support/fixtures.js";
import { databaseUrl, earlierSchemaSql, roleWithoutCreate } from "./support/postgres.js";

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

// The same suite on tables an earlier version created: as their owner, the store adds its
// routines; as a role that may not create functions, it keeps to plain statements.
for (const asOwner of [true, false]) {
  leaseStoreConformance<PostgresLeaseStore>(
    asOwner ? "postgres, a first-release table" : "postgres, a role that may not create the routines",
    {
      async create() {
        const name = `earlier_${process.pid}_${tables++}`;
        await admin.query(
          `${earlierSchemaSql(name, asOwner ? "first" : "previous")};
           CREATE TABLE ${name}_clock (shift interval NOT NULL); INSERT INTO ${name}_clock VALUES ('0')`,
        );
        const url = asOwner ? databaseUrl() : await roleWithoutCreate(admin, [name, `${name}_clock`]);
        const store = await createPostgresLeaseStore(url, {
          table: name,
          pool: { max: 30 },
          clock: `(now() + (SELECT shift FROM ${name}_clock))`,
          logger: recordingLogger(),
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

/** The routines the store created for `table`, by name. */
async function routinesOf(table: string): Promise<string[]> {
  const { rows } = await admin.query<{ proname: string }>(
    "SELECT proname FROM pg_proc WHERE proname ~ $1 ORDER BY proname",
    [`^${table}_(create|get|renew)_[0-9a-f]{8}$`],
  );
  return rows.map((r) => r.proname);
}

/** A pool that writes down the text of every statement its connections are sent. */
function recordingPool(url = databaseUrl()): { pool: pg.Pool; texts: string[] } {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const texts: string[] = [];
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (config: string | { text: string }, ...rest: unknown[]) => {
      texts.push(typeof config === "string" ? config : config.text);
      return query(config, ...rest);
    };
  });
  return { pool, texts };
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
    const raceLogger = recordingLogger();
    const stores = await Promise.all(
      Array.from({ length: 12 }, () =>
        createPostgresLeaseStore(databaseUrl(), { table, pool: { max: 1 }, logger: raceLogger }),
      ),
    );
    try {
      const results = await Promise.allSettled(stores.map((s) => s.ensureSchema()));
      expect(results.filter((r) => r.status === "rejected")).toEqual([]);
      expect(await routinesOf(table)).toHaveLength(3);
      const { rows } = await admin.query(
        "SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
        [table],
      );
      expect(rows.map((r) => r.indexname)).toEqual([
        `${table}_created_idx`,
        `${table}_pkey`,
        `${table}_viewer_idx`,
      ]);
      expect(raceLogger.errors).toEqual([]);
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
      const { pool, texts } = recordingPool();
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

  it("makes every lease operation one round trip, a call of its routines, capped creates included", async () => {
    const table = `routines_${process.pid}_${tables++}`;
    const { pool, texts } = recordingPool();
    const logger = recordingLogger();
    const store = await createPostgresLeaseStore(pool, { table, logger });
    try {
      await store.ensureSchema();
      expect(await routinesOf(table)).toEqual([
        expect.stringMatching(/_create_/),
        expect.stringMatching(/_get_/),
        expect.stringMatching(/_renew_/),
      ]);
      texts.length = 0;
      const capped = await store.create({
        contentId: "c",
        viewerId: "v",
        ttlSeconds: 60,
        maxConcurrentLeases: 1,
      });
      if (!capped.ok) throw new Error("create refused");
      const refused = await store.create({
        contentId: "c",
        viewerId: "v",
        ttlSeconds: 60,
        maxConcurrentLeases: 1,
      });
      expect(refused).toEqual({ ok: false, reason: "limit", activeLeases: 1 });
      await store.create({ contentId: "c", viewerId: "w", ttlSeconds: 60 });
      expect((await store.get(capped.lease.leaseId)).status).toBe("live");
      expect(
        (await store.renew({ leaseId: capped.lease.leaseId, viewerId: "v", ttlSeconds: 60 })).status,
      ).toBe("renewed");
      // A refused renewal says why in the same round trip.
      expect(await store.renew({ leaseId: capped.lease.leaseId, viewerId: "x", ttlSeconds: 60 })).toEqual({
        status: "wrong_viewer",
      });
      expect(texts).toHaveLength(6);
      for (const text of texts)
        expect(text).toMatch(new RegExp(`^SELECT "${table}_(create|get|renew)_[0-9a-f]{8}"\\(`));
      expect(logger.errors).toEqual([]);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it.each(["first", "previous"] as const)(
    "keeps a table of the %s release working: its leases stay valid, the routines are added",
    async (version) => {
      const table = `upgrade_${version}_${process.pid}_${tables++}`;
      await admin.query(earlierSchemaSql(table, version));
      // A lease written by that release, live, and one of the viewer's, long expired.
      await admin.query(
        `INSERT INTO ${table} (lease_id, content_id, viewer_id, expires_at) VALUES
           ('00000000000000000000000000000001', 'movie-42', 'v', now() + interval '1 hour'),
           ('00000000000000000000000000000002', 'movie-42', 'v', now() - interval '1 hour')`,
      );
      const logger = recordingLogger();
      const store = await createPostgresLeaseStore(databaseUrl(), { table, logger });
      try {
        const found = await store.get("00000000000000000000000000000001");
        expect(found).toMatchObject({ status: "live", lease: { contentId: "movie-42", viewerId: "v" } });
        expect(await routinesOf(table)).toHaveLength(3);
        const renewed = await store.renew({
          leaseId: "00000000000000000000000000000001",
          viewerId: "v",
          ttlSeconds: 60,
        });
        expect(renewed.status).toBe("renewed");
        // The old live lease counts against the cap; the long-expired one goes.
        expect(
          (await store.create({ contentId: "c", viewerId: "v", ttlSeconds: 60, maxConcurrentLeases: 1 })).ok,
        ).toBe(false);
        expect(
          (await store.create({ contentId: "c", viewerId: "v", ttlSeconds: 60, maxConcurrentLeases: 2 })).ok,
        ).toBe(true);
        const { rows } = await admin.query(
          `SELECT lease_id FROM ${table} WHERE viewer_id = 'v' ORDER BY created_at`,
        );
        expect(rows).toHaveLength(2);
        expect(rows[0].lease_id).toBe("00000000000000000000000000000001");
        // Its indexes are left as they were.
        const indexes = await admin.query(
          "SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1",
          [table],
        );
        expect(indexes.rows.map((r) => r.indexname)).toEqual(
          version === "first"
            ? [`${table}_expiry_idx`, `${table}_pkey`, `${table}_viewer_idx`]
            : [`${table}_created_idx`, `${table}_pkey`, `${table}_viewer_idx`],
        );
        expect(logger.errors).toEqual([]);
      } finally {
        await store.close();
      }
    },
  );

  it("excludes capped creates of earlier versions: the same viewer lock, and counts only after taking it", async () => {
    const table = `lock_${process.pid}_${tables++}`;
    const store = await createPostgresLeaseStore(databaseUrl(), { table });
    const other = await admin.connect();
    try {
      await store.ensureSchema();
      // What an earlier version's capped create does: lock the viewer, insert, commit later.
      await other.query("BEGIN");
      await other.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ["blindcast:viewer:v"]);
      await other.query(
        `INSERT INTO ${table} (lease_id, content_id, viewer_id, expires_at) VALUES ($1, 'c', 'v', now() + interval '1 hour')`,
        ["00000000000000000000000000000003"],
      );
      const racing = store.create({ contentId: "c", viewerId: "v", ttlSeconds: 60, maxConcurrentLeases: 1 });
      // It waits for that lock...
      await vi.waitFor(
        async () => {
          const { rows } = await admin.query(
            "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
          );
          expect(rows[0].n).toBe(1);
        },
        { timeout: 5000, interval: 20 },
      );
      await other.query("COMMIT");
      // ...and then sees the lease committed under it: the cap of 1 is full.
      expect(await racing).toEqual({ ok: false, reason: "limit", activeLeases: 1 });
    } finally {
      other.release();
      await store.close();
    }
  });

  it("keeps to plain statements, and to the cap, when its role may not create the routines", async () => {
    const table = `nocreate_${process.pid}_${tables++}`;
    await admin.query(earlierSchemaSql(table, "previous"));
    const url = await roleWithoutCreate(admin, [table]);
    const { pool, texts } = recordingPool(url);
    const logger = recordingLogger();
    const store = await createPostgresLeaseStore(pool, { table, logger, queryTimeoutMillis: 10_000 });
    try {
      const attempts = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          store.create({ contentId: `c${i}`, viewerId: "racer", ttlSeconds: 60, maxConcurrentLeases: 5 }),
        ),
      );
      expect(attempts.filter((a) => a.ok)).toHaveLength(5);
      expect(await routinesOf(table)).toEqual([]);
      expect(logger.errors).toEqual([
        expect.stringMatching(/routines of nocreate_\d+_\d+ are unavailable \(42501\)/),
      ]);
      expect(texts.filter((t) => t.startsWith("SELECT pg_advisory_xact_lock(hashtextextended"))).toHaveLength(
        24,
      );
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it("with createSchema: false, uses routines made from postgresLeaseSchemaSql(), else plain statements", async () => {
    const made = `managed_${process.pid}_${tables++}`;
    await admin.query(postgresLeaseSchemaSql({ table: made }));
    const bare = `managed_${process.pid}_${tables++}`;
    await admin.query(earlierSchemaSql(bare, "previous"));
    for (const [table, routines] of [
      [made, true],
      [bare, false],
    ] as const) {
      const { pool, texts } = recordingPool();
      const logger = recordingLogger();
      const store = await createPostgresLeaseStore(pool, { table, logger, createSchema: false });
      try {
        const created = await store.create({
          contentId: "c",
          viewerId: "v",
          ttlSeconds: 60,
          maxConcurrentLeases: 2,
        });
        if (!created.ok) throw new Error("create refused");
        expect((await store.get(created.lease.leaseId)).status).toBe("live");
        expect(texts.some((t) => /CREATE|to_regclass/.test(t))).toBe(false);
        expect(await routinesOf(table)).toHaveLength(routines ? 3 : 0);
        expect(logger.errors).toEqual(routines ? [] : [expect.stringMatching(/unavailable \(42883\)/)]);
      } finally {
        await store.close();
        await pool.end();
      }
    }
  });

  it("creates its routines again when they were dropped under it", async () => {
    const table = `dropped_${process.pid}_${tables++}`;
    const logger = recordingLogger();
    const store = await createPostgresLeaseStore(databaseUrl(), { table, logger });
    try {
      const created = await store.create({ contentId: "c", viewerId: "v", ttlSeconds: 60 });
      if (!created.ok) throw new Error("create refused");
      for (const name of await routinesOf(table)) await admin.query(`DROP FUNCTION ${name}`);
      expect((await store.get(created.lease.leaseId)).status).toBe("live");
      expect(await routinesOf(table)).toHaveLength(3);
      expect(logger.errors).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("refuses a table name that is not a plain identifier", async () => {
    await expect(createPostgresLeaseStore(databaseUrl(), { table: 'x"; DROP TABLE y; --' })).rejects.toThrow(
      /lowercase identifier/,
    );
  });
});
