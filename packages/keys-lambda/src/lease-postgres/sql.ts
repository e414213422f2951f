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

/**
 * Whether the table and this version's routines exist, without locking anything: `$1` is the
 * table, `$2` to `$4` the routines' signatures (`to_regprocedure` form).
 */
export const SCHEMA_PRESENT_SQL = `
SELECT to_regclass($1) IS NOT NULL AS table_present,
       (to_regprocedure($2) IS NOT NULL AND to_regprocedure($3) IS NOT NULL
        AND to_regprocedure($4) IS NOT NULL) AS routines_present`;

/** Expired leases stay this long, so a late renewal hears 410 (expired) rather than 404. */
export const GRACE_INTERVAL = "interval '10 minutes'";

export const INSERT_SQL = `
INSERT INTO {table} (lease_id, content_id, viewer_id, expires_at)
VALUES ($1, $2, $3, {now} + make_interval(secs => $4))
RETURNING expires_at`;

/**
 * The lease routines: PL/pgSQL functions, one per operation, so that each operation is one
 * round trip of one unnamed statement (`SELECT routine($1, …)`), values as parameters. PL/pgSQL
 * keeps the plans of its statements for the life of the connection, so a call parses and plans
 * only the small `SELECT routine(…)` rather than the lease statement: what named prepared
 * statements would save, without their per-connection state (which RDS Proxy and PgBouncer in
 * transaction mode cannot carry between connections). Each returns one scalar (a timestamp, or
 * JSON): a composite result would make PostgreSQL build a row type and a table-function scan per
 * call, which cost more than the JSON (measured; see BENCHMARKS.md).
 *
 * `{create}`, `{get}`, `{renew}` are the routines' names: they end in a hash of this text (table
 * and clock resolved), so a version that changes a routine creates new ones beside the old,
 * and processes of both versions work side by side during an upgrade. SECURITY INVOKER (the
 * default): a call has exactly the caller's rights on the table. No `SET search_path` on the
 * routines: it would cost a configuration save and restore per call, and the table is found as
 * the store's plain statements find it.
 *
 * `{create}`: with `p_max` NULL, an insert. With a cap: a transaction-level advisory lock on the
 * viewer (the key the plain-statement path and earlier versions take, so they exclude each other
 * too), then, in later statements (each takes a new snapshot, so it sees every lease committed
 * before the lock was granted), one scan of the viewer's leases counting live and long-expired
 * ones, a delete only when there are long-expired ones, and the insert when under the cap. The
 * lock is held to the end of the call's transaction, which is the call. Returns the expiry, or
 * NULL when the cap refused.
 */
export const ROUTINES_SQL = `
CREATE OR REPLACE FUNCTION {create}(p_lease text, p_content text, p_viewer text, p_ttl double precision, p_max bigint)
RETURNS timestamptz LANGUAGE plpgsql AS $blindcast$
DECLARE
  live bigint;
  stale bigint;
  expires timestamptz;
BEGIN
  IF p_max IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('blindcast:viewer:' || p_viewer, 0));
    SELECT count(*) FILTER (WHERE l.expires_at > {now}),
           count(*) FILTER (WHERE l.expires_at < {now} - ${GRACE_INTERVAL})
      INTO live, stale
      FROM {table} l WHERE l.viewer_id = p_viewer;
    IF stale > 0 THEN
      DELETE FROM {table} l WHERE l.viewer_id = p_viewer AND l.expires_at < {now} - ${GRACE_INTERVAL};
    END IF;
    IF live >= p_max THEN
      RETURN NULL;
    END IF;
  END IF;
  INSERT INTO {table} AS l (lease_id, content_id, viewer_id, expires_at)
  VALUES (p_lease, p_content, p_viewer, {now} + make_interval(secs => p_ttl))
  RETURNING l.expires_at INTO expires;
  RETURN expires;
END
$blindcast$;
CREATE OR REPLACE FUNCTION {get}(p_lease text)
RETURNS json LANGUAGE plpgsql STABLE AS $blindcast$
DECLARE
  found_lease json;
BEGIN
  SELECT json_build_array(l.content_id, l.viewer_id, l.expires_at, l.expires_at > {now})
    INTO found_lease
    FROM {table} l WHERE l.lease_id = p_lease;
  RETURN found_lease;
END
$blindcast$;
CREATE OR REPLACE FUNCTION {renew}(p_lease text, p_viewer text, p_ttl double precision)
RETURNS json LANGUAGE plpgsql AS $blindcast$
DECLARE
  outcome json;
BEGIN
  UPDATE {table} l SET expires_at = {now} + make_interval(secs => p_ttl)
   WHERE l.lease_id = p_lease AND l.viewer_id = p_viewer AND l.expires_at > {now}
   RETURNING json_build_array('renewed', l.content_id, l.expires_at) INTO outcome;
  IF outcome IS NULL THEN
    -- Refused: say why in the same call (unknown, another viewer's, expired).
    SELECT json_build_array(CASE WHEN l.viewer_id <> p_viewer THEN 'wrong_viewer'
                                 WHEN l.expires_at > {now} THEN 'not_found'
                                 ELSE 'expired' END)
      INTO outcome
      FROM {table} l WHERE l.lease_id = p_lease;
  END IF;
  RETURN coalesce(outcome, json_build_array('not_found'));
END
$blindcast$;
COMMENT ON FUNCTION {create}(text, text, text, double precision, bigint) IS 'Blindcast lease store: create a lease in {table_text} (@blindcast/keys)';
COMMENT ON FUNCTION {get}(text) IS 'Blindcast lease store: look a lease up in {table_text} (@blindcast/keys)';
COMMENT ON FUNCTION {renew}(text, text, double precision) IS 'Blindcast lease store: renew a lease in {table_text} (@blindcast/keys)';`;

/** Argument lists of the routines, as `to_regprocedure` and `COMMENT ON FUNCTION` name them. */
export const ROUTINE_ARGUMENTS = {
  create: "(text,text,text,double precision,bigint)",
  get: "(text)",
  renew: "(text,text,double precision)",
} as const;

export const CREATE_CALL_SQL = "SELECT {create}($1, $2, $3, $4, $5) AS expires_at";
export const GET_CALL_SQL = "SELECT {get}($1) AS lease";
export const RENEW_CALL_SQL = "SELECT {renew}($1, $2, $3) AS outcome";

/**
 * Without the routines (a role that may not create functions, or `createSchema: false` without
 * them), the plain statements below do the same work.
 *
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
