/** What `blindcast-keys --help` prints; the README's CLI table has every variable in full. */
export const CLI_USAGE = `usage: blindcast-keys [--help | --version]

Serves the Blindcast key server on node:http, configured by environment variables:
  MASTER_KEY, SALT          hex; without MASTER_KEY the public demo key, on loopback only
  CORS_ORIGINS              comma-separated origins of your player pages, or *
  HOST, PORT                where to listen (default 127.0.0.1:8787)
  JWT_SECRET                require bearer JWTs signed HS256 with this secret, or
  JWT_JWKS_URL              ... signed by an identity provider (with JWT_ISSUER, JWT_AUDIENCE)
  DATABASE_URL | SQLITE_PATH  where leases live (default: memory); LEASES=off turns them off
  LEASE_TTL_SECONDS, MAX_CONCURRENT_LEASES
  PUBLISH=on                keys for packagers, to tokens with scope blindcast:publish
  PUBLISH_BUCKET            + presigned uploads (S3_REGION, S3_ENDPOINT, AWS_ACCESS_KEY_ID...)
Every variable, with defaults: https://github.com/blindcast/blindcast#locally-blindcastkeysnode-and-blindcast-keys`;

/** `--help` / `--version` / nothing; anything else is a usage error (exit 2). */
export type CliRequest =
  | { kind: "serve" }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "usage"; problem: string };

export function parseCliArguments(args: readonly string[]): CliRequest {
  if (args.length === 0) return { kind: "serve" };
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) return { kind: "help" };
  if (args.length === 1 && args[0] === "--version") return { kind: "version" };
  return {
    kind: "usage",
    problem: `unknown argument ${JSON.stringify(args[0])}: configure with environment variables`,
  };
}
