#!/usr/bin/env node
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BlindcastCryptoError, hexToBytes } from "@blindcast/crypto";
import { PackagerError } from "./errors.js";
import { createKeyServerKeySource } from "./key-server-source.js";
import type { KeySource } from "./key-source.js";
import { type PackageKeyOptions, type PackageOptions, packageHls } from "./package-hls.js";
import { type WatchEvent, watchHls } from "./watch-hls.js";

const USAGE = `usage: blindcast-pack <input.m3u8> <output-folder> --content-id <id> [--segments-per-epoch <n>] [--content-key] [--key-uri-base <url>] [--key-server <url>] [--force]
       blindcast-pack <input.m3u8> <output-folder> --content-id <id> --watch [--segments-per-epoch <n>] [--prune] [--poll-interval <s>] [--stall-timeout <s>] …

Encrypts a clear HLS stream (as ffmpeg writes it) for Blindcast. The keys come from one of:
  MASTER_KEY and SALT (hex) in the environment, as for the key server: derived here.
  --key-server <url> and a publisher's token in the environment variable BLINDCAST_TOKEN:
    fetched from the key server, so no master key is needed. <url> is the key server's URL: the
    player's keyServerUrl (https://keys.example.com/keys) or the base URL of its routes
    (https://keys.example.com; /keys is added). https:// only; http:// only to localhost.
Setting MASTER_KEY or SALT together with --key-server is refused: choose one.

Key URIs are blindcast://keys/{contentId}/{epoch} (for the Blindcast player), or with
--key-uri-base https://keys.example.com/keys the key server's own URLs, {url}/{contentId}/{epoch},
for clients that fetch keys themselves (ffmpeg, native players).
A segment's epoch is floor(media sequence number / segments per epoch).

--watch follows a live input (no #EXT-X-ENDLIST) as the encoder writes it: each new segment is
encrypted once, and the output playlist is replaced atomically after its segments are written,
until the input ends. Stopped (Ctrl-C) and started again, it continues where it was: published
segments keep their key and IV (recorded in .blindcast-live.json in the output folder). --prune
deletes segments from the output once they have left the window for long enough. With
--key-server, each new epoch's key is fetched as it appears (a few epochs ahead per request); a
key server that cannot be reached is tried again at each poll, until --stall-timeout.

Exit status: 0 written (or, with --watch, the input ended or the watch was stopped); 1 packaging
failed (the input, or the key server refused or could not be reached); 2 bad arguments or
environment.`;

/** The publisher's token: from the environment only, never a flag (flags show in ps and shell history). */
const TOKEN_VARIABLE = "BLINDCAST_TOKEN";

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (error) {
    console.error(`blindcast-pack: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    console.log(USAGE);
    return 0;
  }
  const [input, output, extra] = args.positionals;
  if (!input || !output || extra) return usage("give exactly an input playlist and an output folder");
  const contentId = args.values["content-id"];
  if (!contentId) return usage("--content-id is required");
  const perEpochText = args.values["segments-per-epoch"];
  if (perEpochText !== undefined && !/^[1-9][0-9]*$/.test(perEpochText)) {
    return usage("--segments-per-epoch must be a positive integer");
  }
  const pollInterval = seconds(args.values["poll-interval"], "--poll-interval", 0.01, 60);
  const stallTimeout = seconds(args.values["stall-timeout"], "--stall-timeout", 0.1, 86400);
  for (const value of [pollInterval, stallTimeout]) if (value instanceof Error) return usage(value.message);
  const watching = args.values.watch === true;
  if (!watching) {
    for (const flag of ["prune", "poll-interval", "stall-timeout"] as const) {
      if (args.values[flag] !== undefined) return usage(`--${flag} goes with --watch`);
    }
  }
  let keys: PackageKeyOptions;
  try {
    keys = keysFromEnvironment(args.values["key-server"]);
  } catch (error) {
    console.error(`blindcast-pack: ${(error as Error).message}`);
    return 2;
  }

  const options: PackageOptions = {
    input,
    output,
    contentId,
    ...keys,
    ...(perEpochText ? { segmentsPerEpoch: Number(perEpochText) } : {}),
    contentKey: args.values["content-key"] === true,
    ...(args.values["key-uri-base"] !== undefined ? { keyUriBase: args.values["key-uri-base"] } : {}),
    overwrite: args.values.force === true,
  };
  try {
    if (watching) {
      return await watch(options, {
        prune: args.values.prune === true,
        ...(typeof pollInterval === "number" ? { pollIntervalMs: Math.round(pollInterval * 1000) } : {}),
        ...(typeof stallTimeout === "number" ? { stallTimeoutMs: Math.round(stallTimeout * 1000) } : {}),
      });
    }
    return await packageOnce(options);
  } catch (error) {
    if (error instanceof PackagerError) {
      console.error(`blindcast-pack: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

async function packageOnce(options: PackageOptions): Promise<number> {
  const started = Date.now();
  let lastReport = 0;
  const result = await packageHls({
    ...options,
    onProgress: ({ segmentsDone, segmentsTotal }) => {
      const now = Date.now();
      if (now - lastReport >= 1000 || segmentsDone === segmentsTotal) {
        lastReport = now;
        console.error(`blindcast-pack: ${segmentsDone}/${segmentsTotal} segments`);
      }
    },
  });
  const written = join(options.output, result.playlist);
  if (result.live) {
    console.error(
      `blindcast-pack: ${result.playlist} is live (no #EXT-X-ENDLIST): packaged its current window into ${written}, ${result.segments} new segment(s), ${result.keyUris.length} key(s)${keysFrom(options)}, in ${Date.now() - started} ms; the output stays live (no #EXT-X-ENDLIST added). Run again to add the segments written since, or use --watch to follow the stream.`,
    );
  } else {
    console.error(
      `blindcast-pack: wrote ${written}: ${result.segments} segments, ${result.keyUris.length} key(s)${keysFrom(options)}, in ${Date.now() - started} ms`,
    );
  }
  return 0;
}

/** --watch: follows the input until it ends, or until SIGINT / SIGTERM stops it cleanly. */
async function watch(
  options: PackageOptions,
  extra: { prune: boolean; pollIntervalMs?: number; stallTimeoutMs?: number },
): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  console.error(
    `blindcast-pack: watching ${options.input}, keys${keysFrom(options) || " from the master key"} (Ctrl-C stops; running again continues)`,
  );
  try {
    const result = await watchHls({ ...options, ...extra, signal: controller.signal, onEvent: report }).done;
    const written = join(options.output, result.playlist);
    console.error(
      result.ended
        ? `blindcast-pack: the input ended (#EXT-X-ENDLIST): wrote the final ${written}; ${result.segments} segment(s) encrypted by this run`
        : `blindcast-pack: stopped; ${written} stays live, ${result.segments} segment(s) encrypted by this run; run the same command to continue`,
    );
    return 0;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

/** One line per thing done; never a key. */
function report(event: WatchEvent): void {
  switch (event.type) {
    case "resumed":
      console.error(`blindcast-pack: continuing: ${event.segments} published segment(s) kept as they are`);
      break;
    case "segment":
      console.error(
        `blindcast-pack: ${event.file} (sequence ${event.sequence}, ${event.epoch === null ? "content key" : `epoch ${event.epoch}`})`,
      );
      break;
    case "restored":
      console.error(`blindcast-pack: ${event.file} was missing from the output: written again, unchanged`);
      break;
    case "skipped":
      console.error(
        `blindcast-pack: fell behind: ${event.first === event.last ? `sequence ${event.first}` : `sequences ${event.first} to ${event.last}`} of ${event.playlist} left the input's window before they could be packaged, and are not in the output; give the encoder a longer window (ffmpeg: -hls_list_size)`,
      );
      break;
    case "waiting":
      console.error(`blindcast-pack: waiting: ${event.message}`);
      break;
    case "pruned":
      console.error(`blindcast-pack: pruned ${event.file}`);
      break;
    case "published":
      break;
  }
}

/**
 * Anything that is not a refusal is a bug in the packager: reported in one line (a stack trace
 * says nothing to someone packaging a stream) and still a failure.
 */
function unexpected(error: unknown): number {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  console.error(`blindcast-pack: unexpected error (please report it): ${message.replace(/\s+/g, " ")}`);
  return 1;
}

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      "content-id": { type: "string" },
      "segments-per-epoch": { type: "string" },
      "content-key": { type: "boolean" },
      "key-uri-base": { type: "string" },
      "key-server": { type: "string" },
      force: { type: "boolean" },
      watch: { type: "boolean" },
      prune: { type: "boolean" },
      "poll-interval": { type: "string" },
      "stall-timeout": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/** A number of seconds given as `flag`, or the usage error it is. */
function seconds(
  text: string | undefined,
  flag: string,
  min: number,
  max: number,
): number | Error | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || value < min || value > max) {
    return new Error(`${flag} must be a number of seconds from ${min} to ${max}`);
  }
  return value;
}

function usage(message: string): number {
  console.error(`blindcast-pack: ${message}\n${USAGE}`);
  return 2;
}

/** " from key server …" when the keys come from a source; the description is never a secret. */
function keysFrom(options: PackageOptions): string {
  return options.keys ? ` from ${options.keys.description}` : "";
}

/**
 * Where the keys come from: the key server when --key-server is given (the token from the
 * environment), MASTER_KEY and SALT otherwise. Both at once is refused rather than one silently
 * winning: a leftover MASTER_KEY from another project would encrypt with keys the key server
 * does not serve.
 */
function keysFromEnvironment(keyServer: string | undefined): PackageKeyOptions {
  if (keyServer === undefined) {
    return { masterKey: hexVariable("MASTER_KEY"), salt: hexVariable("SALT") };
  }
  const set = ["MASTER_KEY", "SALT"].filter((name) => process.env[name]?.trim());
  if (set.length > 0) {
    throw new Error(
      `${set.join(" and ")} ${set.length > 1 ? "are" : "is"} set and --key-server is given: choose one (unset ${set.join(" and ")} to use the key server's keys)`,
    );
  }
  const token = process.env[TOKEN_VARIABLE]?.trim();
  if (!token) {
    throw new Error(
      `--key-server needs a publisher's token in the environment variable ${TOKEN_VARIABLE} (never a flag)`,
    );
  }
  let source: KeySource;
  try {
    source = createKeyServerKeySource({ url: keyServer, token });
  } catch (error) {
    if (error instanceof PackagerError) throw new Error(`--key-server: ${error.message}`);
    throw error;
  }
  return { keys: source };
}

function hexVariable(name: string): Uint8Array {
  const value = process.env[name]?.trim();
  if (!value) {
    throw new Error(
      `${name} is not set (hex; generate with: openssl rand -hex 32), or give --key-server <url> with ${TOKEN_VARIABLE} to use a key server's keys`,
    );
  }
  try {
    return hexToBytes(value);
  } catch (error) {
    if (error instanceof BlindcastCryptoError) throw new Error(`${name}: ${error.message}`);
    throw error;
  }
}

// Also for errors thrown outside main's promise chain (an event handler, a stray rejection).
for (const event of ["uncaughtException", "unhandledRejection"] as const) {
  process.on(event, (error: unknown) => process.exit(unexpected(error)));
}
process.exitCode = await main().catch(unexpected);
