import { buildKeyServer, type KeyServerHandler, type KeyServerRuntime } from "../core/key-server.js";
import type { KeyServerOptions } from "../core/options.js";
import { createNodeKeyDeriver } from "./deriver.js";
import { stdoutAudit } from "./stdout-audit.js";

/**
 * The core on Node (Lambda, node:http and Express alike): node:crypto's synchronous HKDF and
 * audit lines straight to stdout, unless the adapter's caller supplies its own.
 */
export function createNodeKeyServer<TEvent>(
  options: KeyServerOptions<TEvent>,
  runtime: KeyServerRuntime = {},
): KeyServerHandler<TEvent> {
  return buildKeyServer(options, {
    audit: stdoutAudit,
    ...runtime,
    createDeriver: runtime.createDeriver ?? createNodeKeyDeriver,
  });
}
