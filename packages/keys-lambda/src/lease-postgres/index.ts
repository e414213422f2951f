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
  CREATE_CALL_SQL,
  GET_CALL_SQL,
  GET_SQL,
  INSERT_SQL,
  LEASE_STATE_SQL,
  RELEASE_SQL,
  RENEW_CALL_SQL,
  RENEW_SQL,
  ROUTINE_ARGUMENTS,
  ROUTINES_SQL,
  SCHEMA_PRESENT_SQL,
  SCHEMA_SQL,
  SWEEP_SQL,
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
  /**
   * Create the table, its indexes and the lease routines (PL/pgSQL functions that make every
   * operation one round trip) on first use when missing. Default true. With `false` the store
   * runs no DDL: create them beforehand with `postgresLeaseSchemaSql()`. Without the routines
   * the store still works, with plain statements (slower; a capped create takes 4 round trips).
   */
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
   * Name the store's statements, so each connection parses them once instead of on every call.
   * The lease routines already keep their plans, so this saves less than it did without them
   * (see BENCHMARKS.md). Default false: behind RDS Proxy a named statement can pin the
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
// A routine's name is `<table>_<operation>_<hash>`: the table part is cut to keep it within
// PostgreSQL's 63 bytes.
const ROUTINE_PREFIX_LENGTH = 48;
const SWEEP_EVERY_CREATES = 100;
const SWEEP_EVERY_MS = 5 * 60_000;
// Errors of a routine call after which plain statements may still work: the routine is missing
// (dropped, or never created with `createSchema: false`), or this role may not execute it.
const UNDEFINED_FUNCTION = "42883";
const ROUTINE_ERRORS = new Set([UNDEFINED_FUNCTION, "42501"]);
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

  const { sql, signatures } = schemaText(table, clock);
  const statement = (text: string): pg.QueryConfig => {
    const resolved = sql(text);
    // The name follows the text (table, clock), so two stores never claim one name differently.
    return options.preparedStatements
      ? { name: `blindcast_${fnv1a(resolved)}`, text: resolved }
      : { text: resolved };
  };
  const statements = {
    createCall: statement(CREATE_CALL_SQL),
    getCall: statement(GET_CALL_SQL),
    renewCall: statement(RENEW_CALL_SQL),
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

  // Set for the life of the store once the routines turn out unusable (this role may not create
  // or execute them, or `createSchema: false` and nobody created them): plain statements then.
  let statementsOnly = false;
  const useStatements = (code: string) => {
    if (statementsOnly) return;
    statementsOnly = true;
    logger.error(
      `blindcast lease-postgres: the lease routines of ${table.text} are unavailable (${code}); using plain statements, slower (a capped create takes 4 round trips). Create them with postgresLeaseSchemaSql(), or let this role create functions.`,
    );
  };

  let schema: Promise<void> | undefined;
  const ensureSchema = (deadline = performance.now() + queryTimeout) => {
    if (options.createSchema === false) return Promise.resolve();
    // Shared by the calls that arrive meanwhile: they started later, so their bounds are later.
    schema ??= createSchema(pool, deadline, queryTimeout, table, sql, signatures).then(
      (routines) => {
        if (!routines.ok) useStatements(routines.code);
      },
      (error: unknown) => {
        schema = undefined;
        throw error;
      },
    );
    return schema;
  };

  /**
   * Runs `work` on a pooled connection within the call's bound, with the routines unless they
   * are unusable; once more (within the same bound) on a fresh connection if the first failed
   * for the connection's sake, or without the routines if they turned out missing (with
   * `createSchema`, after creating them again) or not ours to execute.
   */
  const run = async <T>(work: (client: pg.PoolClient, routines: boolean) => Promise<T>): Promise<T> => {
    const deadline = performance.now() + queryTimeout;
    await ensureSchema(deadline);
    const routines = !statementsOnly;
    try {
      return await withClient(pool, deadline, queryTimeout, (client) => work(client, routines));
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (routines && ROUTINE_ERRORS.has(code)) {
        if (code === UNDEFINED_FUNCTION && options.createSchema !== false) {
          schema = undefined;
          await ensureSchema(deadline);
        } else {
          useStatements(code);
        }
      } else if (!CONNECTION_ERRORS.has(code) && !isTerminated(error)) {
        throw error;
      }
      const retryRoutines = !statementsOnly;
      return withClient(pool, deadline, queryTimeout, (client) => work(client, retryRoutines));
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
      const result = await run(async (client, routines) => {
        if (routines) {
          // One round trip, capped or not: see ROUTINES_SQL. NULL when the cap refused.
          const { rows } = await client.query<{ expires_at: Date | null }>(statements.createCall, [
            leaseId,
            input.contentId,
            input.viewerId,
            input.ttlSeconds,
            max ?? null,
          ]);
          return rows[0]?.expires_at ?? undefined;
        }
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
      const found = await run(async (client, routines): Promise<FoundLease | undefined> => {
        if (routines) {
          const { rows } = await client.query<{ lease: unknown }>(statements.getCall, [leaseId]);
          const lease = json(rows[0]?.lease);
          if (lease === null || lease === undefined) return undefined;
          const [contentId, viewerId, expiresAt, live] = lease as [string, string, string, boolean];
          return { contentId, viewerId, expiresAt: new Date(expiresAt), live };
        }
        const { rows } = await client.query<{
          content_id: string;
          viewer_id: string;
          expires_at: Date;
          live: boolean;
        }>(statements.get, [leaseId]);
        const row = rows[0];
        return (
          row && {
            contentId: row.content_id,
            viewerId: row.viewer_id,
            expiresAt: row.expires_at,
            live: row.live,
          }
        );
      });
      if (!found) return { status: "not_found" };
      const lease = {
        leaseId,
        contentId: found.contentId,
        viewerId: found.viewerId,
        expiresAt: found.expiresAt,
      };
      return { status: found.live ? "live" : "expired", lease };
    },

    async renew(input: RenewLeaseInput): Promise<RenewLeaseResult> {
      const outcome = await run(async (client, routines): Promise<Renewal> => {
        if (routines) {
          // Renewed, or refused with the reason, in one round trip: see ROUTINES_SQL.
          const { rows } = await client.query<{ outcome: unknown }>(statements.renewCall, [
            input.leaseId,
            input.viewerId,
            input.ttlSeconds,
          ]);
          const [status, contentId, expiresAt] = json(rows[0]?.outcome) as [string, string?, string?];
          if (status === "renewed" && contentId !== undefined && expiresAt !== undefined) {
            return { contentId, expiresAt: new Date(expiresAt) };
          }
          if (status === "not_found" || status === "wrong_viewer" || status === "expired") return { status };
          throw new Error(`unexpected renewal outcome from PostgreSQL: ${String(status)}`);
        }
        const { rows } = await client.query<{ content_id: string; expires_at: Date }>(statements.renew, [
          input.leaseId,
          input.viewerId,
          input.ttlSeconds,
        ]);
        const renewed = rows[0];
        return renewed ? { contentId: renewed.content_id, expiresAt: renewed.expires_at } : "ask";
      });
      if (typeof outcome === "object" && "status" in outcome) return outcome;
      if (typeof outcome === "object") {
        const lease = {
          leaseId: input.leaseId,
          contentId: outcome.contentId,
          viewerId: input.viewerId,
          expiresAt: outcome.expiresAt,
        };
        return { status: "renewed", lease };
      }
      // Refused, on the plain-statement path: one more round trip, on this rare path only, to say why.
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
  schema: string | undefined;
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
    schema: parts.length === 2 ? parts[0] : undefined,
    text: name,
  };
}

function ignore(): void {}

/** A lease as either path reads it. */
interface FoundLease {
  contentId: string;
  viewerId: string;
  expiresAt: Date;
  live: boolean;
}

/** A renewal: done, refused with its reason, or (plain statements) refused, reason to be asked. */
type Renewal =
  | { contentId: string; expiresAt: Date }
  | { status: "not_found" | "wrong_viewer" | "expired" }
  | "ask";

/** A `json` column: parsed by pg's default type parser, or text if the pool's parser keeps it so. */
function json(value: unknown): unknown {
  return typeof value === "string" ? JSON.parse(value) : value;
}

/**
 * Every SQL text of one store (table and clock resolved), and the routines' signatures. The
 * routines' names end in a hash of their resolved text: see ROUTINES_SQL.
 */
function schemaText(
  table: TableName,
  clock: string,
): { sql: (text: string) => string; signatures: string[] } {
  const common = (text: string) =>
    text
      .replaceAll("{table}", table.sql)
      .replaceAll("{table_text}", table.text)
      .replaceAll("{index_viewer}", pg.escapeIdentifier(`${table.base}_viewer_idx`))
      .replaceAll("{index_created}", pg.escapeIdentifier(`${table.base}_created_idx`))
      .replaceAll("{now}", clock);
  const hash = fnv1a(common(ROUTINES_SQL));
  const operations = ["create", "get", "renew"] as const;
  const name = (operation: (typeof operations)[number]) =>
    `${table.base.slice(0, ROUTINE_PREFIX_LENGTH)}_${operation}_${hash}`;
  const schemaPrefix = (quote: (part: string) => string) => (table.schema ? `${quote(table.schema)}.` : "");
  const sql = (text: string) =>
    operations.reduce(
      (resolved, operation) =>
        resolved.replaceAll(
          `{${operation}}`,
          `${schemaPrefix(pg.escapeIdentifier)}${pg.escapeIdentifier(name(operation))}`,
        ),
      common(text),
    );
  // Names are lowercase identifiers: to_regprocedure reads them unquoted.
  const signatures = operations.map(
    (operation) => `${schemaPrefix((part) => part)}${name(operation)}${ROUTINE_ARGUMENTS[operation]}`,
  );
  return { sql, signatures };
}

/**
 * The DDL the store runs when its schema is missing (`createSchema`, the default): the table,
 * its indexes and the lease routines, idempotent. For `createSchema: false`, run it once per
 * table as a role that may create them, and again after upgrading `@blindcast/keys` (a version
 * that changes the routines gives them new names, so processes of both versions keep working).
 */
export function postgresLeaseSchemaSql(options: { table?: string } = {}): string {
  const { sql } = schemaText(tableName(options.table ?? "blindcast_leases"), "now()");
  return `${sql(SCHEMA_SQL).trim()}\n${sql(ROUTINES_SQL).trim()}\n`;
}

/**
 * Checks for the table and the routines without locking anything; only a database without them
 * takes the lock and creates what is missing. Resolves `{ ok: false }` when the routines could
 * not be created (this role may not create functions, or PL/pgSQL is not installed): the table is
 * then created anyway, and the store uses plain statements.
 */
async function createSchema(
  pool: pg.Pool,
  deadline: number,
  timeout: number,
  table: TableName,
  sql: (text: string) => string,
  signatures: string[],
): Promise<{ ok: true } | { ok: false; code: string }> {
  const parameters = [table.text, ...signatures];
  type Present = { table_present: boolean; routines_present: boolean };
  const check = async (client: pg.PoolClient) =>
    (await client.query<Present>(SCHEMA_PRESENT_SQL, parameters)).rows[0];
  const present = await withClient(pool, deadline, timeout, check);
  if (present?.table_present && present.routines_present) return { ok: true };
  // Many cold starts may race here: the advisory lock makes them take turns, and the check under
  // it makes every turn after the first a no-op. A failure destroys the connection, ending the
  // transaction.
  return withClient(pool, deadline, timeout, async (client) => {
    await client.query(
      `BEGIN; SELECT pg_advisory_xact_lock(hashtext(${pg.escapeLiteral(`blindcast:schema:${table.text}`)}))`,
    );
    const missing = await check(client);
    let outcome: { ok: true } | { ok: false; code: string } = { ok: true };
    if (!missing?.table_present) await client.query(sql(SCHEMA_SQL));
    if (!missing?.routines_present) {
      await client.query("SAVEPOINT blindcast_routines");
      try {
        await client.query(sql(ROUTINES_SQL));
      } catch (error) {
        const code = (error as { code?: string }).code ?? "";
        // Not allowed (42…: no CREATE on the schema, no plpgsql) or not supported (0A…): keep the
        // table, go without the routines. Anything else (a lost connection) fails the call.
        if (!/^(42|0A)/.test(code)) throw error;
        await client.query("ROLLBACK TO SAVEPOINT blindcast_routines");
        outcome = { ok: false, code };
      }
    }
    await client.query("COMMIT");
    return outcome;
  });
}

function isTerminated(error: unknown): boolean {
  return error instanceof Error && /Connection terminated|connection.*(closed|ended)/i.test(error.message);
}
