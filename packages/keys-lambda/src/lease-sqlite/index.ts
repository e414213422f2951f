import Database from "better-sqlite3";
import {
  type CreateLeaseInput,
  type CreateLeaseResult,
  type LeaseLookup,
  type LeaseStore,
  newLeaseId,
  type ReleaseLeaseInput,
  type ReleaseLeaseResult,
  type RenewLeaseInput,
  type RenewLeaseResult,
} from "../lease-store.js";

export interface SqliteLeaseStoreOptions {
  /** Clock in ms since the epoch; defaults to `Date.now` (one machine, one clock). */
  now?: () => number;
}

export interface SqliteLeaseStore extends LeaseStore {
  close(): void;
}

/** Expired leases stay this long, so a late renewal hears 410 rather than 404. */
const GRACE_MS = 10 * 60_000;

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
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.exec(`
    CREATE TABLE IF NOT EXISTS blindcast_leases (
      lease_id   TEXT PRIMARY KEY,
      content_id TEXT NOT NULL,
      viewer_id  TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS blindcast_leases_viewer_idx ON blindcast_leases (viewer_id, expires_at);
    CREATE INDEX IF NOT EXISTS blindcast_leases_expiry_idx ON blindcast_leases (expires_at);`);

  const select = db.prepare<[string], Row>("SELECT * FROM blindcast_leases WHERE lease_id = ?");
  const count = db.prepare<[string, number], { n: number }>(
    "SELECT count(*) AS n FROM blindcast_leases WHERE viewer_id = ? AND expires_at > ?",
  );
  const insert = db.prepare("INSERT INTO blindcast_leases VALUES (?, ?, ?, ?)");
  const extend = db.prepare("UPDATE blindcast_leases SET expires_at = ? WHERE lease_id = ?");
  const remove = db.prepare("DELETE FROM blindcast_leases WHERE lease_id = ?");
  const sweep = db.prepare("DELETE FROM blindcast_leases WHERE expires_at < ?");

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
    // processes sharing the file cannot both pass the cap check.
    create: async (input) => create.immediate(input),
    async get(leaseId): Promise<LeaseLookup> {
      const row = select.get(leaseId);
      if (!row) return { status: "not_found" };
      const lease = {
        leaseId: row.lease_id,
        contentId: row.content_id,
        viewerId: row.viewer_id,
        expiresAt: new Date(row.expires_at),
      };
      return { status: row.expires_at > now() ? "live" : "expired", lease };
    },
    renew: async (input) => renew.immediate(input),
    release: async (input) => release.immediate(input),
    close: () => db.close(),
  };
}
