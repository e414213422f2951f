import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LambdaKeyServerOptions } from "../lambda/index.js";
import { bufferedStdoutAudit } from "../lambda/stdout-audit.js";
import { DEFAULT_HOSTNAME, DEFAULT_PORT } from "./env.js";
import { createHealthChecks, withHealthChecks } from "./health.js";
import { createKeyServerListener } from "./listener.js";
import { type CloseOptions, type CloseReport, createGracefulStop } from "./shutdown.js";

export {
  DEFAULT_HOSTNAME,
  DEFAULT_PORT,
  EnvConfigError,
  type KeyServerEnv,
  keyServerOptionsFromEnv,
} from "./env.js";
export * from "./env-files.js";
export * from "./health.js";
export { createKeyServerListener, type NodeRequestListener, toNodeListener } from "./listener.js";
export * from "./shutdown.js";
export { toApiGatewayEvent } from "./to-event.js";

export interface NodeKeyServerOptions extends LambdaKeyServerOptions {
  /** Port to listen on; 0 picks a free one. Default 8787. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1: exposing a key server is a decision, not a default. */
  hostname?: string;
  /** Answer `/healthz` and `/readyz` (see health.ts). Default true. */
  healthChecks?: boolean;
}

export interface RunningKeyServer {
  /** Base URL of the key routes, e.g. `http://127.0.0.1:8787/keys`: the player's `keyServerUrl`. */
  keysUrl: string;
  port: number;
  server: Server;
  /** Stops gracefully: see {@link CloseOptions} (default: requests in flight get 8 s). */
  close(options?: CloseOptions): Promise<CloseReport>;
}

/** The key server on node:http, with the Lambda's options, core and answers. */
export async function startKeyServer(options: NodeKeyServerOptions): Promise<RunningKeyServer> {
  const { port = DEFAULT_PORT, hostname = DEFAULT_HOSTNAME, healthChecks = true, ...serverOptions } = options;
  // The default sink holds lines back to write them in batches; they are written on close, and
  // when the process ends (normally or by process.exit) without closing.
  const audit = serverOptions.audit === undefined ? bufferedStdoutAudit() : undefined;
  const keys = createKeyServerListener(serverOptions, audit ? { audit } : {});
  const health = healthChecks
    ? createHealthChecks({ leaseStore: serverOptions.leaseStore, logger: serverOptions.logger })
    : undefined;
  const stop = createGracefulStop();
  const server = createServer(stop.track(health ? withHealthChecks(health, keys) : keys));
  const flushAudit = () => audit?.flush();
  process.on("exit", flushAudit);
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
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    keysUrl: `http://${host}:${address.port}/keys`,
    port: address.port,
    server,
    close: (closeOptions) => {
      health?.markStopping();
      return stop.close(server, closeOptions).finally(() => {
        process.off("exit", flushAudit);
        flushAudit();
      });
    },
  };
}
