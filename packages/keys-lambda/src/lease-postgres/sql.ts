/**
 * The statements of the Postgres lease store. `{table}` is the (quoted, possibly
 * schema-qualified) table name and `{now}` the clock expression, `now()` unless a test replaces
 * it: expiry is always judged by the database's clock, never the caller's.
 */

/**
 * One table, two indexes; created once per database, under a transaction-level advisory lock.
 * No index holds `expires_at`, the one column a renewal changes, and pages keep free room
 * (fillfactor): renewals are then heap-only (HOT) updates that write no index entries.
 */
export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS {table} (
  lease_id    text        PRIMARY KEY,
  content_id  text        NOT NULL,
  viewer_id   text        NOT NULL,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);
CREATE INDEX IF NOT EXISTS {index_viewer} ON {table} (viewer_id);
CREATE INDEX IF NOT EXISTS {index_created} ON {table} (created_at);`;

export const TABLE_EXISTS_SQL = "SELECT to_regclass($1) IS NOT NULL AS present";

/** Expired leases stay this long, so a late renewal hears 410 (expired) rather than 404. */
export const GRACE_INTERVAL = "interval '10 minutes'";

export const INSERT_SQL = `
INSERT INTO {table} (lease_id, content_id, viewer_id, expires_at)
VALUES ($1, $2, $3, {now} + make_interval(secs => $4))
RETURNING expires_at`;

/**
 * Create under a per-viewer cap: inside one transaction, `VIEWER_LOCK_SQL` takes a
 * transaction-level advisory lock on the viewer, then `CAPPED_INSERT_SQL` (a later statement,
 * whose snapshot therefore sees every lease committed before the lock) clears the viewer's
 * long-expired leases, counts the live ones and inserts. Every value travels as a parameter: no
 * lease id, viewer or content id is ever part of the SQL text, which PostgreSQL shows in
 * `pg_stat_activity` and writes to its log with any statement that fails.
 */
export const VIEWER_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

/** The key `VIEWER_LOCK_SQL` locks for a viewer (unchanged since the first release). */
export const viewerLockKey = (viewerId: string) => `blindcast:viewer:${viewerId}`;

export const CAPPED_INSERT_SQL = `
WITH cleanup AS (
  DELETE FROM {table} WHERE viewer_id = $3 AND expires_at < {now} - ${GRACE_INTERVAL}
)
INSERT INTO {table} (lease_id, content_id, viewer_id, expires_at)
SELECT $1, $2, $3, {now} + make_interval(secs => $4)
WHERE (SELECT count(*) FROM {table} WHERE viewer_id = $3 AND expires_at > {now}) < $5
RETURNING expires_at`;

export const GET_SQL = `
SELECT content_id, viewer_id, expires_at, expires_at > {now} AS live
FROM {table} WHERE lease_id = $1`;

/** Renew: the whole job when the lease is live and the viewer's (the usual case). */
export const RENEW_SQL = `
UPDATE {table} SET expires_at = {now} + make_interval(secs => $3)
WHERE lease_id = $1 AND viewer_id = $2 AND expires_at > {now}
RETURNING content_id, expires_at`;

/** Only after a refused renewal: why (unknown, another viewer's, expired). */
export const LEASE_STATE_SQL = `
SELECT viewer_id, expires_at > {now} AS live FROM {table} WHERE lease_id = $1`;

export const RELEASE_SQL = `
WITH target AS (
  SELECT viewer_id FROM {table} WHERE lease_id = $1
), released AS (
  DELETE FROM {table} l USING target t WHERE l.lease_id = $1 AND l.viewer_id = $2 RETURNING 1
)
SELECT t.viewer_id, (SELECT count(*) FROM released) AS released FROM target t`;

/**
 * Bounded cleanup of long-expired leases, piggybacked on creates: no cron needed. A lease expires
 * after it was created, so the `created_at` bound (implied by the expiry one) lets the index on
 * `created_at` find the oldest candidates.
 */
export const SWEEP_SQL = `
DELETE FROM {table} WHERE lease_id IN (
  SELECT lease_id FROM {table}
  WHERE created_at < {now} - ${GRACE_INTERVAL} AND expires_at < {now} - ${GRACE_INTERVAL}
  ORDER BY created_at LIMIT 500
)`;
