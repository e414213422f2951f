import { randomBytes } from "node:crypto";
import type pg from "pg";

/** The cluster scripts/with-postgres.mjs started for this test run. */
export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      "DATABASE_URL is not set: run the tests through scripts/with-postgres.mjs (npm test does)",
    );
  }
  return url;
}

/**
 * The lease table as earlier versions created it, for tests that an existing table keeps working.
 * `first`: the first release (indexes on `expires_at`); `previous`: the release before the lease
 * routines (HOT-friendly indexes, fillfactor 70).
 */
export function earlierSchemaSql(table: string, version: "first" | "previous"): string {
  const columns = `(
    lease_id    text        PRIMARY KEY,
    content_id  text        NOT NULL,
    viewer_id   text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
  )`;
  return version === "first"
    ? `CREATE TABLE ${table} ${columns};
       CREATE INDEX ${table}_viewer_idx ON ${table} (viewer_id, expires_at);
       CREATE INDEX ${table}_expiry_idx ON ${table} (expires_at);`
    : `CREATE TABLE ${table} ${columns} WITH (fillfactor = 70);
       CREATE INDEX ${table}_viewer_idx ON ${table} (viewer_id);
       CREATE INDEX ${table}_created_idx ON ${table} (created_at);`;
}

/**
 * A login role that may read and write `tables` but create nothing (PostgreSQL 15 and later give
 * no one CREATE on `public` by default): a store connecting as it cannot create its routines.
 * Resolves to a connection string for it.
 */
export async function roleWithoutCreate(admin: pg.Pool, tables: string[]): Promise<string> {
  const role = `blindcast_dml_${randomBytes(4).toString("hex")}`;
  await admin.query(`CREATE ROLE ${role} LOGIN`);
  await admin.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
  for (const table of tables)
    await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO ${role}`);
  const url = new URL(databaseUrl());
  url.username = role;
  return url.href;
}
