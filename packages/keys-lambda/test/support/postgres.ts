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
