// The Lambda entry point with leases in PostgreSQL, deployed by deploy/sam/template-postgres.yaml
// and bundled by scripts/build-lambda.mjs into deploy/dist/keys-postgres/index.mjs (handler
// `index.handler`). Every key request must present a live lease of the viewer named by a
// verified bearer JWT, so a viewer can hold at most MAX_CONCURRENT_LEASES streams at once.
import { hexToBytes } from "@blindcast/crypto";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createPostgresLeaseStore } from "@blindcast/keys/lease-postgres";
import { optionalIntegerEnv, requiredEnv } from "./env.js";
import { publishFromLambdaEnv } from "./publish-env.js";

// Read before the store exists, so a misconfigured function fails without touching the database.
const masterKey = hexToBytes(requiredEnv("MASTER_KEY"));
const salt = hexToBytes(requiredEnv("SALT"));
const corsOrigins = requiredEnv("CORS_ORIGINS");
// The viewer who owns a lease is the token's `sub`, verified (HS256, JWT_SECRET) on every request.
const authenticate = createJwtAuthenticator({
  secret: requiredEnv("JWT_SECRET"),
  publisherScope: process.env.JWT_PUBLISHER_SCOPE?.trim() || "blindcast:publish",
});
const maxConcurrentLeases = optionalIntegerEnv("MAX_CONCURRENT_LEASES");
const leaseTtlSeconds = optionalIntegerEnv("LEASE_TTL_SECONDS");

// Created at module load, so warm invocations reuse the pool's connections. It opens none yet:
// a cold start while the database is down still answers (503) and recovers by itself. Unnamed
// statements by default (`preparedStatements: false`), so it works behind RDS Proxy unpinned.
const leaseStore = await createPostgresLeaseStore(requiredEnv("DATABASE_URL"));

export const handler = createLambdaKeyServer({
  masterKey,
  salt,
  corsOrigins,
  authenticate,
  // Publisher routes only when PUBLISH_BUCKET is set (see keys.ts).
  publish: publishFromLambdaEnv(),
  leaseStore,
  maxConcurrentLeases, // unset: no cap
  leaseTtlSeconds, // unset: 60 s
});
