import pg from "pg";
import {
  boundedInteger,
  type CreateLeaseInput,
  type CreateLeaseResult,
  type Lease,
  type LeaseLookup,
  type LeaseStore,
  LeaseStoreTimeoutError,
  MAX_TIMEOUT_MILLIS,
  newLeaseId,
  type ReleaseLeaseInput,
  type ReleaseLeaseResult,
  type RenewLeaseInput,
  type RenewLeaseResult,
} from "../lease-store.js";
import {
  CAPPED_INSERT_SQL,
  GET_SQL,
  INSERT_SQL,
  LEASE_STATE_SQL,
  RELEASE_SQL,
  RENEW_SQL,
  SCHEMA_SQL,
  SWEEP_SQL,
  TABLE_EXISTS_SQL,
  VIEWER_LOCK_SQL,
  viewerLockKey,
} from "./sql.js";

export interface PostgresPoolOptions {
  /** Connections per process. Default 2: a Lambda environment serves one request at a time. */
  max?: number;
  /**
   * Give up connecting after this long (pg's own default waits forever). Default:
   * `queryTimeoutMillis`, as no call waits longer for it.
   */
  connectionTimeoutMillis?: number;
  /** Close idle connections after this long. Default 60000 ms. */
  idleTimeoutMillis?: number;
  /**
   * Server side: PostgreSQL ends a statement that runs this long (`statement_timeout`), and a
   * session left idle inside a transaction this long (`idle_in_transaction_session_timeout`), such
   * as one whose client went silent half way through a capped create, so that it cannot keep the
   * viewer's lock. Default: `queryTimeoutMillis`, so the server stops when the client has.
   */
  statementTimeoutMillis?: number;
  /**
   * TCP keepalive is on for every connection; probes start after it has been idle this long, so
   * an idle pooled connection whose peer vanished is noticed and dropped. Default 10000 ms.
   */
  keepAliveInitialDelayMillis?: number;
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
  /**
   * The most one store call (`get`, `create`, `renew`, `release`) may take, waiting for a pooled
   * connection, its statements and a retry on a fresh connection included; then it fails with
   * `LeaseStoreTimeoutError` (the key server answers 503). A connection that was still busy with
   * the call is destroyed, never handed out again: a connection that went silent (a failover, a
   * firewall that dropped its state) would otherwise hang every query sent on it for as long as
   * the kernel keeps retransmitting, about 15 minutes. Applies to a `pg.Pool` you pass in too.
   * Default 2000 ms: a lease statement takes about a millisecond.
   */
  queryTimeoutMillis?: number;
}

/** Defaults of the store's time bounds, in milliseconds. */
export const POSTGRES_DEFAULTS = {
  queryTimeoutMillis: 2000,
  idleTimeoutMillis: 60_000,
  keepAliveInitialDelayMillis: 10_000,
  max: 2,
} as const;

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
 * answers 503 and recovers on its own. Every expiry is judged by the database clock, and every
 * call is bounded in time (`queryTimeoutMillis`).
 */
export async function createPostgresLeaseStore(
  connectionStringOrPool: string | pg.Pool,
  options: PostgresLeaseStoreOptions = {},
): Promise<PostgresLeaseStore> {
  const table = tableName(options.table ?? "blindcast_leases");
  const clock = options.clock ?? "now()";
  const logger = options.logger ?? console;
  const queryTimeout = boundedInteger(
    "queryTimeoutMillis",
    options.queryTimeoutMillis,
    POSTGRES_DEFAULTS.queryTimeoutMillis,
    1,
    MAX_TIMEOUT_MILLIS,
  );
  const ownsPool = typeof connectionStringOrPool === "string";
  const pool = ownsPool
    ? createPool(connectionStringOrPool, options.pool ?? {}, queryTimeout)
    : connectionStringOrPool;
  if (!(pool instanceof pg.Pool) && typeof (pool as { connect?: unknown }).connect !== "function") {
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
    lock: statement(VIEWER_LOCK_SQL),
    cappedInsert: statement(CAPPED_INSERT_SQL),
    get: statement(GET_SQL),
    renew: statement(RENEW_SQL),
    state: statement(LEASE_STATE_SQL),
    release: statement(RELEASE_SQL),
    sweep: sql(SWEEP_SQL),
    ping: statement("SELECT 1"),
  };

  let schema: Promise<void> | undefined;
  const ensureSchema = (deadline = performance.now() + queryTimeout) => {
    if (options.createSchema === false) return Promise.resolve();
    // Shared by the calls that arrive meanwhile: they started later, so their bounds are later.
    schema ??= createSchema(pool, deadline, queryTimeout, table, sql(SCHEMA_SQL)).catch((error: unknown) => {
      schema = undefined;
      throw error;
    });
    return schema;
  };

  /**
   * Runs `work` on a pooled connection within the call's bound; once more on a fresh connection
   * (within the same bound) if the first failed for the connection's sake.
   */
  const run = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const deadline = performance.now() + queryTimeout;
    await ensureSchema(deadline);
    try {
      return await withClient(pool, deadline, queryTimeout, work);
    } catch (error) {
      if (!CONNECTION_ERRORS.has((error as { code?: string }).code ?? "") && !isTerminated(error))
        throw error;
      return withClient(pool, deadline, queryTimeout, work);
    }
  };

  let createsSinceSweep = 0;
  let lastSweep = Date.now();
  const maybeSweep = () => {
    createsSinceSweep++;
    if (createsSinceSweep < SWEEP_EVERY_CREATES && Date.now() - lastSweep < SWEEP_EVERY_MS) return;
    createsSinceSweep = 0;
    lastSweep = Date.now();
    // Off the request's path: its failure changes nothing for the caller. Bounded like any call,
    // so a silent connection cannot keep a pool slot.
    withClient(pool, performance.now() + queryTimeout, queryTimeout, (client) =>
      client.query(statements.sweep),
    ).catch(() => {});
  };

  let closed: Promise<void> | undefined;

  return {
    pool,
    ensureSchema: () => ensureSchema(),

    async create(input: CreateLeaseInput): Promise<CreateLeaseResult> {
      const leaseId = newLeaseId();
      const lease = (expiresAt: Date): Lease => ({
        leaseId,
        contentId: input.contentId,
        viewerId: input.viewerId,
        expiresAt,
      });
      const max = input.maxConcurrentLeases;
      const result = await run(async (client) => {
        if (max === undefined) {
          const { rows } = await client.query<{ expires_at: Date }>(statements.insert, [
            leaseId,
            input.contentId,
            input.viewerId,
            input.ttlSeconds,
          ]);
          return rows[0]?.expires_at;
        }
        // A failure anywhere here destroys the connection (withClient), which ends the
        // transaction and frees the lock; a ROLLBACK would only wait behind a silent statement.
        await client.query("BEGIN");
        await client.query(statements.lock, [viewerLockKey(input.viewerId)]);
        const { rows } = await client.query<{ expires_at: Date }>(statements.cappedInsert, [
          leaseId,
          input.contentId,
          input.viewerId,
          input.ttlSeconds,
          max,
        ]);
        await client.query("COMMIT");
        return rows[0]?.expires_at;
      });
      maybeSweep();
      if (result === undefined) {
        return { ok: false, reason: "limit", activeLeases: max ?? 0 };
      }
      return { ok: true, lease: lease(result) };
    },

    async get(leaseId: string): Promise<LeaseLookup> {
      const { rows } = await run((client) =>
        client.query<{ content_id: string; viewer_id: string; expires_at: Date; live: boolean }>(
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
      const { rows } = await run((client) =>
        client.query<{ content_id: string; expires_at: Date }>(statements.renew, [
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
      const state = await run((client) =>
        client.query<{ viewer_id: string; live: boolean }>(statements.state, [input.leaseId]),
      );
      const row = state.rows[0];
      if (!row) return { status: "not_found" };
      if (row.viewer_id !== input.viewerId) return { status: "wrong_viewer" };
      return row.live ? { status: "not_found" } : { status: "expired" };
    },

    async release(input: ReleaseLeaseInput): Promise<ReleaseLeaseResult> {
      const { rows } = await run((client) =>
        client.query<{ viewer_id: string; released: string }>(statements.release, [
          input.leaseId,
          input.viewerId,
        ]),
      );
      const row = rows[0];
      if (!row) return { status: "not_found" };
      if (row.viewer_id !== input.viewerId) return { status: "wrong_viewer" };
      return { status: "released" };
    },

    async ping(): Promise<void> {
      // Through the same path as a lease call (schema check, pooled connection, retry on a fresh
      // one), within queryTimeoutMillis: ready means a lease call would get an answer now.
      await run((client) => client.query(statements.ping));
    },

    close() {
      // Waits for calls in flight, each bounded; a second close waits for the first.
      closed ??= ownsPool ? pool.end() : Promise.resolve();
      return closed;
    },
  };
}

/**
 * Checks a connection out, runs `work` on it and returns it, all before `deadline` (from
 * `performance.now()`). Past the deadline the call fails with `LeaseStoreTimeoutError`: a
 * connection still busy with it is destroyed, and one that arrives too late goes back to the
 * pool for the next call. A connection whose work failed is destroyed too, as `pool.query` does:
 * its state (a transaction half done) is unknown.
 */
function withClient<T>(
  pool: pg.Pool,
  deadline: number,
  timeoutMillis: number,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let client: pg.PoolClient | undefined;
    const timer = setTimeout(
      () => {
        if (settled) return;
        settled = true;
        const error = new LeaseStoreTimeoutError(
          `no answer from PostgreSQL within ${timeoutMillis} ms (queryTimeoutMillis)`,
        );
        if (client) {
          destroy(client);
          client.release(error);
        }
        reject(error);
      },
      Math.max(0, deadline - performance.now()),
    );
    pool.connect((error, checkedOut, release) => {
      if (settled) {
        if (checkedOut) release();
        return;
      }
      if (error || !checkedOut) {
        settled = true;
        clearTimeout(timer);
        reject(error ?? new Error("the pool handed out no connection"));
        return;
      }
      client = checkedOut;
      work(checkedOut).then(
        (result) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          checkedOut.release();
          resolve(result);
        },
        (failure: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          checkedOut.release(failure instanceof Error ? failure : true);
          reject(failure);
        },
      );
    });
  });
}

/**
 * Closes a connection's socket at once. `release(error)` alone ends the client politely, which
 * on some pg 8 releases waits for the socket to drain: on a silent connection, for ever.
 */
function destroy(client: pg.PoolClient): void {
  const stream = (client as Partial<pg.Client>).connection?.stream;
  if (stream && typeof stream.destroy === "function") stream.destroy();
}

/** 32-bit FNV-1a, hex: short, stable statement names. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

function createPool(connectionString: string, options: PostgresPoolOptions, queryTimeout: number): pg.Pool {
  if (typeof options !== "object" || options === null) throw new TypeError("pool must be an object");
  const ms = (name: keyof PostgresPoolOptions, fallback: number, min = 1) =>
    boundedInteger(`pool.${name}`, options[name], fallback, min, MAX_TIMEOUT_MILLIS);
  const statementTimeout = ms("statementTimeoutMillis", queryTimeout);
  // A connection attempt that outlives the call that wanted it would hold a pool slot after the
  // database is back: bounded like a call.
  const connectionTimeout = ms("connectionTimeoutMillis", queryTimeout);
  return new pg.Pool({
    connectionString,
    max: boundedInteger("pool.max", options.max, POSTGRES_DEFAULTS.max, 1, 10_000),
    connectionTimeoutMillis: connectionTimeout,
    idleTimeoutMillis: ms("idleTimeoutMillis", POSTGRES_DEFAULTS.idleTimeoutMillis),
    statement_timeout: statementTimeout,
    idle_in_transaction_session_timeout: statementTimeout,
    keepAlive: true,
    keepAliveInitialDelayMillis: ms(
      "keepAliveInitialDelayMillis",
      POSTGRES_DEFAULTS.keepAliveInitialDelayMillis,
      0,
    ),
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
async function createSchema(
  pool: pg.Pool,
  deadline: number,
  timeout: number,
  table: TableName,
  schemaSql: string,
): Promise<void> {
  const present = await withClient(pool, deadline, timeout, async (client) => {
    const { rows } = await client.query<{ present: boolean }>(TABLE_EXISTS_SQL, [table.text]);
    return rows[0]?.present === true;
  });
  if (present) return;
  // Many cold starts may race here: the advisory lock makes them take turns, and IF NOT EXISTS
  // makes every turn after the first a no-op. A failure destroys the connection, ending the
  // transaction.
  await withClient(pool, deadline, timeout, (client) =>
    client.query(
      `BEGIN; SELECT pg_advisory_xact_lock(hashtext(${pg.escapeLiteral(`blindcast:schema:${table.text}`)}));${schemaSql} COMMIT;`,
    ),
  );
}

function isTerminated(error: unknown): boolean {
  return error instanceof Error && /Connection terminated|connection.*(closed|ended)/i.test(error.message);
}
