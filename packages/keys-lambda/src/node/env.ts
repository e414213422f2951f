import { BlindcastCryptoError, hexToBytes } from "@blindcast/crypto";
import { createJwtAuthenticator } from "../jwt/index.js";
import { createMemoryLeaseStore } from "../lease-memory/index.js";
import type { LeaseStore } from "../lease-store.js";
import type { NodeKeyServerOptions } from "./index.js";

/** The environment, as `process.env` provides it. */
export type KeyServerEnv = Readonly<Record<string, string | undefined>>;

/** A missing or malformed environment variable; the message names it and says what it expects. */
export class EnvConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvConfigError";
  }
}

export interface EnvConfig {
  options: NodeKeyServerOptions;
  /** One line each on what was chosen (port, lease store), to print at start-up. */
  summary: string[];
}

/**
 * Reads the same variables as the Lambda (`MASTER_KEY`, `SALT`, `CORS_ORIGINS`) plus the local
 * ones (`PORT`, `HOST`, `LEASES`, `LEASE_TTL_SECONDS`, `MAX_CONCURRENT_LEASES`) and, for bearer
 * JWT authentication, `JWT_SECRET` (with optional `JWT_ISSUER`, `JWT_AUDIENCE`).
 */
export function keyServerOptionsFromEnv(env: KeyServerEnv): EnvConfig {
  const masterKey = hexVariable(env, "MASTER_KEY");
  const salt = hexVariable(env, "SALT");
  const corsOrigins = required(
    env,
    "CORS_ORIGINS",
    "comma-separated origins such as http://localhost:5173, or *",
  );
  const port = integerVariable(env, "PORT", 0, 65535) ?? 8787;
  const hostname = env.HOST?.trim() || "127.0.0.1";
  const leaseTtlSeconds = integerVariable(env, "LEASE_TTL_SECONDS", 10, 86_400);
  const maxConcurrentLeases = integerVariable(env, "MAX_CONCURRENT_LEASES", 1, 1_000_000);

  const leasesSetting = (env.LEASES ?? "on").trim().toLowerCase();
  if (leasesSetting !== "on" && leasesSetting !== "off") {
    throw new EnvConfigError(`LEASES must be "on" or "off"`);
  }
  let leaseStore: LeaseStore | undefined;
  const summary = [`listening on http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/keys`];
  if (leasesSetting === "on") {
    leaseStore = createMemoryLeaseStore();
    summary.push("leases: in memory (lost when this process stops)");
  } else {
    if (maxConcurrentLeases !== undefined) {
      throw new EnvConfigError("MAX_CONCURRENT_LEASES needs leases: unset LEASES=off");
    }
    summary.push("leases: off (keys are served without a lease)");
  }

  const options: NodeKeyServerOptions = { masterKey, salt, corsOrigins, port, hostname };
  const jwtSecret = env.JWT_SECRET?.trim();
  if (jwtSecret) {
    if (new TextEncoder().encode(jwtSecret).length < 32) {
      throw new EnvConfigError("JWT_SECRET must be at least 32 bytes; generate with: openssl rand -hex 32");
    }
    options.authenticate = createJwtAuthenticator({
      secret: jwtSecret,
      ...(env.JWT_ISSUER ? { issuer: env.JWT_ISSUER } : {}),
      ...(env.JWT_AUDIENCE ? { audience: env.JWT_AUDIENCE } : {}),
    });
    summary.push("auth: bearer JWT (HS256, JWT_SECRET); the viewer is the token's sub");
  } else {
    summary.push("auth: none (set JWT_SECRET to require bearer JWTs)");
  }
  if (leaseStore) options.leaseStore = leaseStore;
  if (leaseTtlSeconds !== undefined) options.leaseTtlSeconds = leaseTtlSeconds;
  if (maxConcurrentLeases !== undefined) options.maxConcurrentLeases = maxConcurrentLeases;
  return { options, summary };
}

function required(env: KeyServerEnv, name: string, expected: string): string {
  const value = env[name]?.trim();
  if (!value) throw new EnvConfigError(`${name} is not set: expected ${expected}`);
  return value;
}

function hexVariable(env: KeyServerEnv, name: string): Uint8Array {
  const value = required(env, name, "at least 32 hex digits (16 bytes); generate with: openssl rand -hex 32");
  try {
    return hexToBytes(value);
  } catch (error) {
    if (error instanceof BlindcastCryptoError) throw new EnvConfigError(`${name}: ${error.message}`);
    throw error;
  }
}

function integerVariable(env: KeyServerEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new EnvConfigError(`${name} must be an integer from ${min} to ${max}`);
  }
  return Number(raw);
}
