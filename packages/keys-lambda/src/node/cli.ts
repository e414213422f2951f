#!/usr/bin/env node
import { KeyServerConfigError } from "../core/options.js";
import { EnvConfigError, keyServerOptionsFromEnv } from "./env.js";
import { startKeyServer } from "./index.js";
import { shutdownGraceFromEnv, stopOnSignals } from "./shutdown.js";

/** `blindcast-keys`: the key server on node:http, configured like the Lambda, by environment. */
async function main(): Promise<void> {
  let config: Awaited<ReturnType<typeof keyServerOptionsFromEnv>>;
  let graceMillis: number;
  try {
    graceMillis = shutdownGraceFromEnv(process.env);
    config = await keyServerOptionsFromEnv(process.env);
  } catch (error) {
    if (error instanceof EnvConfigError) return fail(error.message);
    throw error;
  }
  let running: Awaited<ReturnType<typeof startKeyServer>>;
  try {
    running = await startKeyServer(config.options);
  } catch (error) {
    if (error instanceof KeyServerConfigError) return fail(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") return fail(`port ${config.options.port} is already in use (set PORT)`);
    if (code === "EACCES") return fail(`not allowed to listen on port ${config.options.port} (set PORT)`);
    throw error;
  }
  config.summary[0] = `listening on ${running.keysUrl}`;
  // One write, so anyone waiting for "listening on" also has the rest of the summary.
  console.error(config.summary.map((line) => `blindcast-keys: ${line}`).join("\n"));

  // SIGTERM/SIGINT: finish requests in flight (SHUTDOWN_GRACE_SECONDS), close the store, exit 0.
  stopOnSignals(running, { graceMillis, closeResources: () => config.close() });
}

function fail(message: string): void {
  console.error(`blindcast-keys: ${message}`);
  process.exitCode = 2;
}

await main();
