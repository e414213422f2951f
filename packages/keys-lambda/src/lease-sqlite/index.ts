import Database from "better-sqlite3";
import {
  boundedInteger,
  type CreateLeaseInput,
  type CreateLeaseResult,
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

export interface SqliteLeaseStoreOptions {
  /** Clock in ms since the epoch; defaults to `Date.now` (one machine, one clock). */
  now?: () => number;
  /**
   * How long one call may wait, in all, while another connection (another process sharing the
   * file, a backup) holds the database's write lock; then it fails with `LeaseStoreTimeoutError`
   * (the key server answers 503). The waiting happens between attempts on timers, never inside
   * SQLite: better-sqlite3 is synchronous, so a wait inside SQLite would stop the whole process,
   * every other request included. Default 5000 ms.
   */
  busyTimeoutMillis?: number;
}

/** Defaults of the store's time bounds, in milliseconds. */
export const SQLITE_DEFAULTS = { busyTimeoutMillis: 5000 } as const;

export interface SqliteLeaseStore extends LeaseStore {
  close(): void;
}

/** Expired leases stay this long, so a late renewal hears 410 rather than 404. */
const GRACE_MS = 10 * 60_000;
/** Pauses between attempts while the lock is held elsewhere: 1, 2, 4 … ms, at most this. */
const MAX_PAUSE_MS = 25;

interface Row {
  lease_id: string;
  content_id: string;
  viewer_id: string;
  expires_at: number;
}

/**
 * Leases in a SQLite file, for the key server on one machine: they survive restarts of the
 * server. Writes are serialised by SQLite (`BEGIN IMMEDIATE`), which makes the per-viewer cap
 * exact; WAL mode keeps reads from waiting on writes.
 */
export function createSqliteLeaseStore(
  path: string,
  options: SqliteLeaseStoreOptions = {},
): SqliteLeaseStore {
  const now = options.now ?? Date.now;
  const busyTimeout = boundedInteger(
    "busyTimeoutMillis",
    options.busyTimeoutMillis,
    SQLITE_DEFAULTS.busyTimeoutMillis,
    0,
    MAX_TIMEOUT_MILLIS,
  );
  // Opening waits inside SQLite (bounded by the same budget): it happens once, before serving.
  const db = new Database(path, { timeout: busyTimeout });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(`
    CREATE TABLE IF NOT EXISTS blindcast_leases (
      lease_id   TEXT PRIMARY KEY,
      content_id TEXT NOT NULL,
      viewer_id  TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS blindcast_leases_viewer_idx ON blindcast_leases (viewer_id, expires_at);
    CREATE INDEX IF NOT EXISTS blindcast_leases_expiry_idx ON blindcast_leases (expires_at);`);
  // From now on SQLite never waits for a lock: a busy database answers SQLITE_BUSY at once, and
  // `attempt` below waits on timers, so the event loop keeps serving meanwhile.
  db.pragma("busy_timeout = 0");

  /** Runs `operation` until it gets past the lock, pausing without blocking, within the budget. */
  const attempt = async <T>(operation: () => T): Promise<T> => {
    let deadline: number | undefined;
    let pause = 1;
    for (;;) {
      try {
        return operation();
      } catch (error) {
        if (!isBusy(error)) throw error;
        deadline ??= performance.now() + busyTimeout;
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new LeaseStoreTimeoutError(
            `the SQLite database stayed locked by another connection for ${busyTimeout} ms (busyTimeoutMillis)`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
        pause = Math.min(pause * 2, MAX_PAUSE_MS);
      }
    }
  };

  const select = db.prepare<[string], Row>("SELECT * FROM blindcast_leases WHERE lease_id = ?");
  const count = db.prepare<[string, number], { n: number }>(
    "SELECT count(*) AS n FROM blindcast_leases WHERE viewer_id = ? AND expires_at > ?",
  );
  const insert = db.prepare("INSERT INTO blindcast_leases VALUES (?, ?, ?, ?)");
  const extend = db.prepare("UPDATE blindcast_leases SET expires_at = ? WHERE lease_id = ?");
  const remove = db.prepare("DELETE FROM blindcast_leases WHERE lease_id = ?");
  const sweep = db.prepare("DELETE FROM blindcast_leases WHERE expires_at < ?");
  const probe = db.prepare("SELECT 1 FROM blindcast_leases LIMIT 1");

  const create = db.transaction((input: CreateLeaseInput): CreateLeaseResult => {
    const t = now();
    sweep.run(t - GRACE_MS);
    if (input.maxConcurrentLeases !== undefined) {
      const active = count.get(input.viewerId, t)?.n ?? 0;
      if (active >= input.maxConcurrentLeases) return { ok: false, reason: "limit", activeLeases: active };
    }
    const lease = {
      leaseId: newLeaseId(),
      contentId: input.contentId,
      viewerId: input.viewerId,
      expiresAt: new Date(t + input.ttlSeconds * 1000),
    };
    insert.run(lease.leaseId, lease.contentId, lease.viewerId, lease.expiresAt.getTime());
    return { ok: true, lease };
  });

  const renew = db.transaction((input: RenewLeaseInput): RenewLeaseResult => {
    const row = select.get(input.leaseId);
    if (!row) return { status: "not_found" };
    if (row.viewer_id !== input.viewerId) return { status: "wrong_viewer" };
    const t = now();
    if (row.expires_at <= t) return { status: "expired" };
    const expiresAt = t + input.ttlSeconds * 1000;
    extend.run(expiresAt, input.leaseId);
    return {
      status: "renewed",
      lease: {
        leaseId: row.lease_id,
        contentId: row.content_id,
        viewerId: row.viewer_id,
        expiresAt: new Date(expiresAt),
      },
    };
  });

  const release = db.transaction((input: ReleaseLeaseInput): ReleaseLeaseResult => {
    const row = select.get(input.leaseId);
    if (!row) return { status: "not_found" };
    if (row.viewer_id !== input.viewerId) return { status: "wrong_viewer" };
    remove.run(input.leaseId);
    return { status: "released" };
  });

  return {
    // better-sqlite3 is synchronous; `immediate` takes the write lock up front, so two
    // processes sharing the file cannot both pass the cap check. A transaction refused for a busy
    // lock did nothing (better-sqlite3 rolls back), so it is simply run again.
    create: (input) => attempt(() => create.immediate(input)),
    async get(leaseId): Promise<LeaseLookup> {
      // Readers do not wait for writers in WAL mode, but may for a checkpoint or recovery.
      const row = await attempt(() => select.get(leaseId));
      if (!row) return { status: "not_found" };
      const lease = {
        leaseId: row.lease_id,
        contentId: row.content_id,
        viewerId: row.viewer_id,
        expiresAt: new Date(row.expires_at),
      };
      return { status: row.expires_at > now() ? "live" : "expired", lease };
    },
    renew: (input) => attempt(() => renew.immediate(input)),
    release: (input) => attempt(() => release.immediate(input)),
    // Reads the table (a closed database or a lost file throws), waiting for a lock as a get does.
    ping: async () => {
      await attempt(() => probe.get());
    },
    close: () => db.close(),
  };
}

/** SQLITE_BUSY and its extended codes (a snapshot gone stale, recovery in progress elsewhere). */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}
