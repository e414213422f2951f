#!/usr/bin/env node
import { KeyServerConfigError } from "../core/options.js";
import { CLI_USAGE, parseCliArguments } from "./cli-usage.js";
import { EnvConfigError, keyServerOptionsFromEnv } from "./env.js";
import { startKeyServer } from "./index.js";
import { DEFAULT_SHUTDOWN_TIMEOUT_MS } from "./limits.js";

/** `blindcast-keys`: the key server on node:http, configured like the Lambda, by environment. */
async function main(): Promise<void> {
  const asked = parseCliArguments(process.argv.slice(2));
  if (asked.kind === "help") return console.log(CLI_USAGE);
  if (asked.kind === "version") return console.log(await packageVersion());
  if (asked.kind === "usage") {
    console.error(`blindcast-keys: ${asked.problem}\n${CLI_USAGE}`);
    process.exitCode = 2;
    return;
  }
  let config: Awaited<ReturnType<typeof keyServerOptionsFromEnv>>;
  try {
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

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    // A second signal while stopping: stop now (the exit handler still writes held audit lines).
    if (stopping) {
      console.error(`blindcast-keys: ${signal} again: stopping now`);
      process.exit(1);
    }
    stopping = true;
    const grace = config.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    console.error(`blindcast-keys: ${signal}: stopping; requests in flight get up to ${grace} ms`);
    running
      .close()
      .then(() => config.close())
      .then(
        () => {
          console.error("blindcast-keys: stopped");
          exitAfterStdout(0);
        },
        () => exitAfterStdout(1),
      );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

/** How long, at most, exiting waits for audit lines already written to reach stdout's reader. */
const STDOUT_DRAIN_TIMEOUT_MS = 2_000;

/**
 * process.exit drops what a pipe has not taken yet: wait for stdout to drain first, but never
 * for a reader that has stopped reading.
 */
function exitAfterStdout(code: number): void {
  if (process.stdout.writableLength === 0) process.exit(code);
  setTimeout(() => process.exit(code), STDOUT_DRAIN_TIMEOUT_MS).unref();
  process.stdout.once("drain", () => process.exit(code));
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const manifest = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return manifest.version;
}

function fail(message: string): void {
  console.error(`blindcast-keys: ${message}`);
  process.exitCode = 2;
}

await main();
