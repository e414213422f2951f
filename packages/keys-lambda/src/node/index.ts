import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { KeyServerConfigError } from "../core/options.js";
import type { LambdaKeyServerOptions } from "../lambda/index.js";
import { bufferedStdoutAudit } from "../node-runtime/stdout-audit.js";
import { guardConnections } from "./connections.js";
import { DEFAULT_HOSTNAME, DEFAULT_PORT } from "./env.js";
import { createHealthChecks, withHealthChecks } from "./health.js";
import { connectionsCheckingInterval, type NodeServerLimits, resolveServerLimits } from "./limits.js";
import { createKeyServerListener } from "./listener.js";
import { isLoopbackHost, isPublicMasterKey, PUBLIC_KEY_ADVICE } from "./public-keys.js";

export {
  type AuditDroppedRecord,
  DEFAULT_AUDIT_BUFFER_BYTES,
  MIN_AUDIT_BUFFER_BYTES,
} from "../node-runtime/stdout-audit.js";
export {
  DEFAULT_HOSTNAME,
  DEFAULT_PORT,
  EnvConfigError,
  type KeyServerEnv,
  keyServerOptionsFromEnv,
} from "./env.js";
export * from "./env-files.js";
export * from "./health.js";
export {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  MAX_DEFAULT_CONNECTIONS,
  type NodeServerLimits,
  SERVER_LIMIT_RANGES,
} from "./limits.js";
export { createKeyServerListener, type NodeRequestListener, toNodeListener } from "./listener.js";
export { isLoopbackHost, isPublicMasterKey } from "./public-keys.js";
export { toApiGatewayEvent } from "./to-event.js";

export interface NodeKeyServerOptions extends LambdaKeyServerOptions, NodeServerLimits {
  /** Port to listen on; 0 picks a free one. Default 8787. */
  port?: number;
  /**
   * Interface to bind. Default 127.0.0.1: exposing a key server is a decision, not a default.
   * With a public master key (the demo's), only a loopback address or `localhost` is accepted.
   */
  hostname?: string;
  /**
   * With the default audit sink (JSON lines on stdout): at most this many bytes of audit lines
   * wait for stdout; past it, while stdout's reader is stalled, lines are dropped and counted
   * (see README). At least 65536; default 4 MiB. Not for an `audit` of your own.
   */
  auditBufferBytes?: number;
  /** Answer `/healthz` and `/readyz` (see health.ts). Default true. */
  healthChecks?: boolean;
}

export interface RunningKeyServer {
  /** Base URL of the key routes, e.g. `http://127.0.0.1:8787/keys`: the player's `keyServerUrl`. */
  keysUrl: string;
  port: number;
  server: Server;
  /**
   * Stops accepting connections, lets requests being answered finish (up to
   * `shutdownTimeoutMs`), closes every connection and writes the audit lines held back.
   */
  close(): Promise<void>;
}

/** The key server on node:http, with the Lambda's options, core and answers. */
export async function startKeyServer(options: NodeKeyServerOptions): Promise<RunningKeyServer> {
  const {
    port = DEFAULT_PORT,
    hostname = DEFAULT_HOSTNAME,
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs,
    maxConnections,
    shutdownTimeoutMs,
    auditBufferBytes,
    healthChecks = true,
    ...serverOptions
  } = options;
  const limits = resolveServerLimits(options);
  const publicKey = isPublicMasterKey(serverOptions.masterKey);
  if (publicKey && !isLoopbackHost(hostname)) {
    throw new KeyServerConfigError(
      `the master key is the public demo key: it is served on loopback only, not on ${hostname}; ${PUBLIC_KEY_ADVICE}`,
    );
  }
  if (auditBufferBytes !== undefined && serverOptions.audit !== undefined) {
    throw new KeyServerConfigError(
      "auditBufferBytes is for the default stdout audit, not with your own audit",
    );
  }
  // The default sink holds lines back to write them in batches; they are written on close, and
  // when the process ends (normally or by process.exit) without closing.
  const audit = serverOptions.audit === undefined ? bufferedStdoutAudit(auditBufferBytes) : undefined;
  const keys = createKeyServerListener(serverOptions, audit ? { audit } : {});
  const health = healthChecks
    ? createHealthChecks({ leaseStore: serverOptions.leaseStore, logger: serverOptions.logger })
    : undefined;
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: connectionsCheckingInterval(limits),
    },
    health ? withHealthChecks(health, keys) : keys,
  );
  const connections = guardConnections(server, limits.maxConnections, serverOptions.logger ?? console);
  const flushAudit = () => audit?.flush();
  process.on("exit", flushAudit);
  const close = async () => {
    // Readiness answers 503 from now on, so a load balancer stops sending before connections go.
    health?.markStopping();
    try {
      await connections.shutdown(limits.shutdownTimeoutMs);
    } finally {
      process.off("exit", flushAudit);
      flushAudit();
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, hostname, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    process.off("exit", flushAudit);
    throw error;
  }
  const address = server.address() as AddressInfo;
  if (publicKey && !isLoopbackHost(address.address)) {
    // `localhost` resolved to something else: never leave the public key served there.
    await close();
    throw new KeyServerConfigError(
      `the master key is the public demo key: ${hostname} is ${address.address}, not loopback; ${PUBLIC_KEY_ADVICE}`,
    );
  }
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { keysUrl: `http://${host}:${address.port}/keys`, port: address.port, server, close };
}
