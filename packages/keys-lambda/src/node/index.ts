import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LambdaKeyServerOptions } from "../lambda/index.js";
import { bufferedStdoutAudit } from "../node-runtime/stdout-audit.js";
import { DEFAULT_HOSTNAME, DEFAULT_PORT } from "./env.js";
import { createKeyServerListener } from "./listener.js";

export {
  DEFAULT_HOSTNAME,
  DEFAULT_PORT,
  EnvConfigError,
  type KeyServerEnv,
  keyServerOptionsFromEnv,
} from "./env.js";
export { createKeyServerListener, type NodeRequestListener, toNodeListener } from "./listener.js";
export { toApiGatewayEvent } from "./to-event.js";

export interface NodeKeyServerOptions extends LambdaKeyServerOptions {
  /** Port to listen on; 0 picks a free one. Default 8787. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1: exposing a key server is a decision, not a default. */
  hostname?: string;
}

export interface RunningKeyServer {
  /** Base URL of the key routes, e.g. `http://127.0.0.1:8787/keys`: the player's `keyServerUrl`. */
  keysUrl: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** The key server on node:http, with the Lambda's options, core and answers. */
export async function startKeyServer(options: NodeKeyServerOptions): Promise<RunningKeyServer> {
  const { port = DEFAULT_PORT, hostname = DEFAULT_HOSTNAME, ...serverOptions } = options;
  // The default sink holds lines back to write them in batches; they are written on close, and
  // when the process ends (normally or by process.exit) without closing.
  const audit = serverOptions.audit === undefined ? bufferedStdoutAudit() : undefined;
  const server = createServer(createKeyServerListener(serverOptions, audit ? { audit } : {}));
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
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => {
          process.off("exit", flushAudit);
          flushAudit();
          if (error) reject(error);
          else resolve();
        });
        server.closeAllConnections();
      }),
  };
}
