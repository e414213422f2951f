import pg from "pg";
import {
  type CreateLeaseInput,
  type CreateLeaseResult,
  type Lease,
  type LeaseLookup,
  type LeaseStore,
  newLeaseId,
  type ReleaseLeaseInput,
  type ReleaseLeaseResult,
  type RenewLeaseInput,
  type RenewLeaseResult,
} from "../lease-store.js";
import {
  CAPPED_INSERT_SCRIPT,
  GET_SQL,
  INSERT_SQL,
  LEASE_STATE_SQL,
  RELEASE_SQL,
  RENEW_SQL,
  SCHEMA_SQL,
  SWEEP_SQL,
  TABLE_EXISTS_SQL,
} from "./sql.js";

export interface PostgresPoolOptions {
  /** Connections per process. Default 2: a Lambda environment serves one request at a time. */
  max?: number;
  /** Give up connecting after this long. Default 3000 ms (pg's own default waits forever). */
  connectionTimeoutMillis?: number;
  /** Close idle connections after this long. Default 60000 ms. */
  idleTimeoutMillis?: number;
  /** Server-side statement timeout. Default 5000 ms. */
  statementTimeoutMillis?: number;
}

export interface PostgresLeaseStoreOptions {
  /** Table name, optionally schema-qualified (`keys.leases`). Default `blindcast_leases`. */
  table?: string;
  /** Create the table and indexes on first use when missing. Default true. */
  createSchema?: boolean;
  /** Pool settings, when a connection string is given (ignored for a pool you pass in). */
  pool?: PostgresPoolOptions;
  /**
   * SQL expression for "now". Default `now()`, the database's clock. Tests replace it to move
   * time deterministically; production code should not.
   */
  clock?: string;
  /** Where connection problems of idle pooled clients are reported. Default `console`. */
  logger?: { error(message: string): void };
  /**
   * Name the store's statements, so each connection parses and plans them once instead of on
   * every call: lease lookups (one per key request) run about 1.5 times as fast on a busy
   * database (see BENCHMARKS.md). Default false: behind RDS Proxy a named statement pins the
   * connection (defeating the proxy), and PgBouncer in transaction mode needs
   * `max_prepared_statements` for them. Turn it on when connecting to PostgreSQL directly.
   */
  preparedStatements?: boolean;
}

export interface PostgresLeaseStore extends LeaseStore {
  readonly pool: pg.Pool;
  /** Creates the schema if missing (otherwise done lazily on first use). */
  ensureSchema(): Promise<void>;
  /** Ends the pool, if the store created it. */
  close(): Promise<void>;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,50}$/;
const SWEEP_EVERY_CREATES = 100;
const SWEEP_EVERY_MS = 5 * 60_000;
// Errors after which the same statement may succeed on a fresh connection (a restarted server).
const CONNECTION_ERRORS = new Set([
  "ECONNRESET",
  "EPIPE",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08003",
  "08006",
]);

/**
 * Leases in PostgreSQL, for key servers whose processes come and go (Lambda). Connects lazily:
 * creating the store needs no database, so a cold start while the database is down still
 * answers 503 and recovers on its own. Every expiry is judged by the database clock.
 */
export async function createPostgresLeaseStore(
  connectionStringOrPool: string | pg.Pool,
  options: PostgresLeaseStoreOptions = {},
): Promise<PostgresLeaseStore> {
  const table = tableName(options.table ?? "blindcast_leases");
  const clock = options.clock ?? "now()";
  const logger = options.logger ?? console;
  const ownsPool = typeof connectionStringOrPool === "string";
  const pool = ownsPool ? createPool(connectionStringOrPool, options.pool ?? {}) : connectionStringOrPool;
  if (!(pool instanceof pg.Pool) && typeof (pool as { query?: unknown }).query !== "function") {
    throw new TypeError("createPostgresLeaseStore needs a connection string or a pg.Pool");
  }
  // A connection can fail at any time (a database restart). node-postgres reports it as an
  // "error" event on the client, sometimes twice, sometimes while the client is checked out and
  // no pool listener is attached: unheard, that event would crash the process. Every client
  // gets a listener for its whole life; the failure itself reaches us through the query.
  pool.on("connect", (client) => client.on("error", ignore));
  pool.on("error", (error: Error & { code?: string }) => {
    logger.error(`blindcast lease-postgres: idle connection failed (${error.code ?? error.name})`);
  });

  const sql = (text: string) =>
    text
      .replaceAll("{table}", table.sql)
      .replaceAll("{index_viewer}", pg.escapeIdentifier(`${table.base}_viewer_idx`))
      .replaceAll("{index_created}", pg.escapeIdentifier(`${table.base}_created_idx`))
      .replaceAll("{now}", clock);
  const statement = (text: string): pg.QueryConfig => {
    const resolved = sql(text);
    // The name follows the text (table, clock), so two stores never claim one name differently.
    return options.preparedStatements
      ? { name: `blindcast_${fnv1a(resolved)}`, text: resolved }
      : { text: resolved };
  };
  const statements = {
    insert: statement(INSERT_SQL),
    get: statement(GET_SQL),
    renew: statement(RENEW_SQL),
    state: statement(LEASE_STATE_SQL),
    release: statement(RELEASE_SQL),
    sweep: sql(SWEEP_SQL),
  };

  let schema: Promise<void> | undefined;
  const ensureSchema = () => {
    if (options.createSchema === false) return Promise.resolve();
    schema ??= createSchema(pool, table, sql(SCHEMA_SQL)).catch((error: unknown) => {
      schema = undefined;
      throw error;
    });
    return schema;
  };

  /** Runs `operation`, once more on a fresh connection if the first failed for the connection's sake. */
  const run = async <T>(operation: () => Promise<T>): Promise<T> => {
    await ensureSchema();
    try {
      return await operation();
    } catch (error) {
      if (!CONNECTION_ERRORS.has((error as { code?: string }).code ?? "") && !isTerminated(error))
        throw error;
      return operation();
    }
  };

  let createsSinceSweep = 0;
  let lastSweep = Date.now();
  const maybeSweep = () => {
    createsSinceSweep++;
    if (createsSinceSweep < SWEEP_EVERY_CREATES && Date.now() - lastSweep < SWEEP_EVERY_MS) return;
    createsSinceSweep = 0;
    lastSweep = Date.now();
    // Off the request's path: its failure changes nothing for the caller.
    pool.query(statements.sweep).catch(() => {});
  };

  return {
    pool,
    ensureSchema,

    async create(input: CreateLeaseInput): Promise<CreateLeaseResult> {
      const leaseId = newLeaseId();
      const lease = (expiresAt: Date): Lease => ({
        leaseId,
        contentId: input.contentId,
        viewerId: input.viewerId,
        expiresAt,
      });
      const result = await run(async () => {
        if (input.maxConcurrentLeases === undefined) {
          const { rows } = await pool.query<{ expires_at: Date }>(statements.insert, [
            leaseId,
            input.contentId,
            input.viewerId,
            input.ttlSeconds,
          ]);
          return rows[0]?.expires_at;
        }
        return cappedInsert(pool, sql, { ...input, leaseId, maxConcurrentLeases: input.maxConcurrentLeases });
      });
      maybeSweep();
      if (result === undefined) {
        return { ok: false, reason: "limit", activeLeases: input.maxConcurrentLeases ?? 0 };
      }
      return { ok: true, lease: lease(result) };
    },

    async get(leaseId: string): Promise<LeaseLookup> {
      const { rows } = await run(() =>
        pool.query<{ content_id: string; viewer_id: string; expires_at: Date; live: boolean }>(
          statements.get,
          [leaseId],
        ),
      );
      const row = rows[0];
      if (!row) return { status: "not_found" };
      const lease = {
        leaseId,
        contentId: row.content_id,
        viewerId: row.viewer_id,
        expiresAt: row.expires_at,
      };
      return { status: row.live ? "live" : "expired", lease };
    },

    async renew(input: RenewLeaseInput): Promise<RenewLeaseResult> {
      const { rows } = await run(() =>
        pool.query<{ content_id: string; expires_at: Date }>(statements.renew, [
          input.leaseId,
          input.viewerId,
          input.ttlSeconds,
        ]),
      );
      const renewed = rows[0];
      if (renewed) {
        const lease = {
          leaseId: input.leaseId,
          contentId: renewed.content_id,
          viewerId: input.viewerId,
          expiresAt: renewed.expires_at,
        };
        return { status: "renewed", lease };
      }
      // Refused: one more round trip, on this rare path only, to say why.
      const state = await run(() =>
        pool.query<{ viewer_id: string; live: boolean }>(statements.state, [input.leaseId]),
      );
      const row = state.rows[0];
      if (!row) return { status: "not_found" };
      if (row.viewer_id !== input.viewerId) return { status: "wrong_viewer" };
      return row.live ? { status: "not_found" } : { status: "expired" };
    },

    async release(input: ReleaseLeaseInput): Promise<ReleaseLeaseResult> {
      const { rows } = await run(() =>
        pool.query<{ viewer_id: string; released: string }>(statements.release, [
          input.leaseId,
          input.viewerId,
        ]),
      );
      const row = rows[0];
      if (!row) return { status: "not_found" };
      if (row.viewer_id !== input.viewerId) return { status: "wrong_viewer" };
      return { status: "released" };
    },

    async close() {
      if (ownsPool) await pool.end();
    },
  };
}

/** 32-bit FNV-1a, hex: short, stable statement names. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

function createPool(connectionString: string, options: PostgresPoolOptions): pg.Pool {
  return new pg.Pool({
    connectionString,
    max: options.max ?? 2,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 3000,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 60_000,
    statement_timeout: options.statementTimeoutMillis ?? 5000,
    // Lets a frozen Lambda environment exit cleanly; the pool reconnects on the next request.
    allowExitOnIdle: true,
  });
}

interface TableName {
  sql: string;
  base: string;
  text: string;
}

function tableName(name: string): TableName {
  const parts = name.split(".");
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new TypeError(`table "${name}" must be a lowercase identifier, optionally schema-qualified`);
  }
  return {
    sql: parts.map((p) => pg.escapeIdentifier(p)).join("."),
    base: parts[parts.length - 1] ?? name,
    text: name,
  };
}

function ignore(): void {}

/** Checks for the table without locking anything; only a database without it takes the lock. */
async function createSchema(pool: pg.Pool, table: TableName, schemaSql: string): Promise<void> {
  const { rows } = await pool.query<{ present: boolean }>(TABLE_EXISTS_SQL, [table.text]);
  if (rows[0]?.present) return;
  const client = await pool.connect();
  try {
    // Many cold starts may race here: the advisory lock makes them take turns, and IF NOT EXISTS
    // makes every turn after the first a no-op.
    await client.query(
      `BEGIN; SELECT pg_advisory_xact_lock(hashtext(${pg.escapeLiteral(`blindcast:schema:${table.text}`)}));${schemaSql} COMMIT;`,
    );
    client.release();
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    client.release(true);
    throw error;
  }
}

async function cappedInsert(
  pool: pg.Pool,
  sql: (text: string) => string,
  input: CreateLeaseInput & { leaseId: string; maxConcurrentLeases: number },
): Promise<Date | undefined> {
  if (!Number.isInteger(input.ttlSeconds) || !Number.isInteger(input.maxConcurrentLeases)) {
    throw new TypeError("ttlSeconds and maxConcurrentLeases must be integers");
  }
  const viewer = pg.escapeLiteral(input.viewerId);
  const script = sql(CAPPED_INSERT_SCRIPT)
    .replaceAll(
      "{lock_key}",
      `hashtextextended(${pg.escapeLiteral(`blindcast:viewer:${input.viewerId}`)}, 0)`,
    )
    .replaceAll("{viewer}", viewer)
    .replaceAll("{lease}", pg.escapeLiteral(input.leaseId))
    .replaceAll("{content}", pg.escapeLiteral(input.contentId))
    .replaceAll("{ttl}", String(input.ttlSeconds))
    .replaceAll("{max}", String(input.maxConcurrentLeases));
  const client = await pool.connect();
  try {
    const results = (await client.query(script)) as unknown as pg.QueryResult<{ expires_at: Date }>[];
    client.release();
    // BEGIN, lock, cleanup, insert, COMMIT: the insert's result is the fourth.
    return results[3]?.rows[0]?.expires_at;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    client.release(true);
    throw error;
  }
}

function isTerminated(error: unknown): boolean {
  return error instanceof Error && /Connection terminated|connection.*(closed|ended)/i.test(error.message);
}
