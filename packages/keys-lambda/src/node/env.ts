import { BlindcastCryptoError, hexToBytes } from "@blindcast/crypto";
import { createMemoryLeaseStore } from "../lease-memory/index.js";
import type { LeaseStore } from "../lease-store.js";
import { MIN_AUDIT_BUFFER_BYTES } from "../node-runtime/stdout-audit.js";
import { authFromEnv } from "./env-auth.js";
import { withFileVariables } from "./env-files.js";
import { publishFromEnv } from "./env-publish.js";
import type { NodeKeyServerOptions } from "./index.js";
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type NodeServerLimits,
  SERVER_LIMIT_RANGES,
} from "./limits.js";
import { isLoopbackHost, isPublicMasterKey } from "./public-keys.js";

/** Where the local server listens unless told otherwise: exposing a key server is a decision. */
export const DEFAULT_PORT = 8787;
export const DEFAULT_HOSTNAME = "127.0.0.1";

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
  /** Closes what the configuration opened (a database pool or file). */
  close(): Promise<void>;
}

/** The variables that set the node:http limits, and the option each one sets. */
const LIMIT_VARIABLES = {
  HEADERS_TIMEOUT_MS: "headersTimeoutMs",
  REQUEST_TIMEOUT_MS: "requestTimeoutMs",
  KEEP_ALIVE_TIMEOUT_MS: "keepAliveTimeoutMs",
  MAX_CONNECTIONS: "maxConnections",
  SHUTDOWN_TIMEOUT_MS: "shutdownTimeoutMs",
} as const satisfies Record<string, keyof NodeServerLimits>;

/** Largest `AUDIT_BUFFER_BYTES`: 1 GiB. */
const MAX_AUDIT_BUFFER_BYTES = 1024 * 1024 * 1024;

/**
 * Reads the same variables as the Lambda (`MASTER_KEY`, `SALT`, `CORS_ORIGINS`) plus the local
 * ones (`PORT`, `HOST`, `LEASES`, `LEASE_TTL_SECONDS`, `MAX_CONCURRENT_LEASES`, `DATABASE_URL`,
 * `SQLITE_PATH`), the node:http limits (`HEADERS_TIMEOUT_MS`, `REQUEST_TIMEOUT_MS`,
 * `KEEP_ALIVE_TIMEOUT_MS`, `MAX_CONNECTIONS`, `SHUTDOWN_TIMEOUT_MS`), `AUDIT_BUFFER_BYTES` and,
 * for bearer JWT authentication, `JWT_SECRET` (with optional `JWT_ISSUER`, `JWT_AUDIENCE`) or
 * `JWT_JWKS_URL` with `JWT_ISSUER` and `JWT_AUDIENCE` (and optional `JWT_ALGORITHMS`); and
 * publishing (`PUBLISH`, `PUBLISH_BUCKET`…, see `publishFromEnv`).
 */
export async function keyServerOptionsFromEnv(given: KeyServerEnv): Promise<EnvConfig> {
  // MASTER_KEY_FILE, SALT_FILE, JWT_SECRET_FILE, DATABASE_URL_FILE: Docker and Kubernetes secrets.
  const env = withFileVariables(given);
  const masterKey = hexVariable(env, "MASTER_KEY");
  const salt = hexVariable(env, "SALT");
  const corsOrigins = required(
    env,
    "CORS_ORIGINS",
    "comma-separated origins such as http://localhost:5173, or *",
  );
  const port = integerVariable(env, "PORT", 0, 65535) ?? DEFAULT_PORT;
  const hostname = env.HOST?.trim() || DEFAULT_HOSTNAME;
  const leaseTtlSeconds = integerVariable(env, "LEASE_TTL_SECONDS", 10, 86_400);
  const maxConcurrentLeases = integerVariable(env, "MAX_CONCURRENT_LEASES", 1, 1_000_000);
  const limits: NodeServerLimits = {};
  for (const [name, option] of Object.entries(LIMIT_VARIABLES)) {
    const [min, max] = SERVER_LIMIT_RANGES[option];
    const value = integerVariable(env, name, min, max);
    if (value !== undefined) limits[option] = value;
  }
  const headersTimeoutMs = limits.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  if (headersTimeoutMs > (limits.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)) {
    throw new EnvConfigError(
      `HEADERS_TIMEOUT_MS must not be more than REQUEST_TIMEOUT_MS (default ${DEFAULT_REQUEST_TIMEOUT_MS})`,
    );
  }
  const auditBufferBytes = integerVariable(
    env,
    "AUDIT_BUFFER_BYTES",
    MIN_AUDIT_BUFFER_BYTES,
    MAX_AUDIT_BUFFER_BYTES,
  );
  // The demo key protects nothing: it never leaves this machine, and says so loudly.
  const publicKey = isPublicMasterKey(masterKey);
  if (publicKey && !isLoopbackHost(hostname)) {
    throw new EnvConfigError(
      "HOST must be a loopback address (127.0.0.1, ::1 or localhost) while MASTER_KEY is the public demo key; " +
        "set MASTER_KEY to a key of your own (openssl rand -hex 32) to serve on another interface",
    );
  }

  // Checked before a lease store is opened, so a bad variable leaves nothing open.
  const { publish, summary: publishSummary } = publishFromEnv(env);
  const { authenticate, summary: authSummary } = authFromEnv(env, publish !== undefined);
  if (publish && !authenticate) {
    throw new EnvConfigError("Publishing needs bearer tokens: set JWT_SECRET or JWT_JWKS_URL");
  }
  const leasesSetting = (env.LEASES ?? "on").trim().toLowerCase();
  if (leasesSetting !== "on" && leasesSetting !== "off") {
    throw new EnvConfigError(`LEASES must be "on" or "off"`);
  }
  const summary = [`listening on http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/keys`];
  let leaseStore: LeaseStore | undefined;
  let close = async () => {};
  if (leasesSetting === "on") {
    const chosen = await leaseStoreFromEnv(env);
    leaseStore = chosen.store;
    close = chosen.close;
    summary.push(`leases: ${chosen.description}`);
  } else {
    if (maxConcurrentLeases !== undefined) {
      throw new EnvConfigError("MAX_CONCURRENT_LEASES needs leases: unset LEASES=off");
    }
    summary.push("leases: off (keys are served without a lease)");
  }

  summary.push(authSummary, publishSummary);
  if (publicKey) summary.splice(1, 0, ...PUBLIC_KEY_WARNING);
  const options: NodeKeyServerOptions = { masterKey, salt, corsOrigins, port, hostname, ...limits };
  if (auditBufferBytes !== undefined) options.auditBufferBytes = auditBufferBytes;
  if (authenticate) options.authenticate = authenticate;
  if (publish) options.publish = publish;
  if (leaseStore) options.leaseStore = leaseStore;
  if (leaseTtlSeconds !== undefined) options.leaseTtlSeconds = leaseTtlSeconds;
  if (maxConcurrentLeases !== undefined) options.maxConcurrentLeases = maxConcurrentLeases;
  return { options, summary, close };
}

/** Printed right under "listening on" when MASTER_KEY is the public demo key. */
const PUBLIC_KEY_WARNING = [
  "WARNING: MASTER_KEY IS THE PUBLIC DEMO KEY. It is published with Blindcast: anyone can derive",
  "  every key this server hands out. Serving on loopback only; never encrypt real content with it.",
];

interface ChosenStore {
  store: LeaseStore;
  description: string;
  close(): Promise<void>;
}

/** DATABASE_URL: PostgreSQL; SQLITE_PATH: a SQLite file; neither: memory. */
async function leaseStoreFromEnv(env: KeyServerEnv): Promise<ChosenStore> {
  const databaseUrl = env.DATABASE_URL?.trim();
  const sqlitePath = env.SQLITE_PATH?.trim();
  if (databaseUrl && sqlitePath) throw new EnvConfigError("set DATABASE_URL or SQLITE_PATH, not both");
  if (databaseUrl) {
    let where: string;
    try {
      const url = new URL(databaseUrl);
      where = `${url.hostname}${url.port ? `:${url.port}` : ""}${url.pathname}`;
    } catch {
      throw new EnvConfigError("DATABASE_URL is not a URL such as postgres://user:password@host:5432/db");
    }
    const { createPostgresLeaseStore } = await optionalImport(
      () => import("../lease-postgres/index.js"),
      "DATABASE_URL is set but the pg package is not installed (npm install pg)",
    );
    const store = await createPostgresLeaseStore(databaseUrl);
    return { store, description: `PostgreSQL at ${where}`, close: () => store.close() };
  }
  if (sqlitePath) {
    const { createSqliteLeaseStore } = await optionalImport(
      () => import("../lease-sqlite/index.js"),
      "SQLITE_PATH is set but the better-sqlite3 package is not installed (npm install better-sqlite3@12)",
    );
    let store: ReturnType<typeof createSqliteLeaseStore>;
    try {
      store = createSqliteLeaseStore(sqlitePath);
    } catch (error) {
      throw new EnvConfigError(`SQLITE_PATH: cannot open ${sqlitePath} (${(error as Error).message})`);
    }
    return {
      store,
      description: `SQLite at ${sqlitePath} (kept across restarts)`,
      close: async () => store.close(),
    };
  }
  return {
    store: createMemoryLeaseStore(),
    description: "in memory (lost when this process stops; set SQLITE_PATH or DATABASE_URL to keep them)",
    close: async () => {},
  };
}

async function optionalImport<T>(load: () => Promise<T>, message: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND") throw new EnvConfigError(message);
    throw error;
  }
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
