#!/usr/bin/env node
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BlindcastCryptoError, hexToBytes } from "@blindcast/crypto";
import { PackagerError } from "./errors.js";
import { createKeyServerKeySource } from "./key-server-source.js";
import type { KeySource } from "./key-source.js";
import { type PackageKeySourceOptions, type PackageMasterKeyOptions, packageHls } from "./package-hls.js";

const USAGE = `usage: blindcast-pack <input.m3u8> <output-folder> --content-id <id> [--segments-per-epoch <n>] [--content-key] [--key-uri-base <url>] [--key-server <url>] [--force]

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

Exit status: 0 written; 1 packaging failed (the input, or the key server refused or could not be
reached); 2 bad arguments or environment.`;

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
  let keys: PackageMasterKeyOptions | PackageKeySourceOptions;
  try {
    keys = keysFromEnvironment(args.values["key-server"]);
  } catch (error) {
    console.error(`blindcast-pack: ${(error as Error).message}`);
    return 2;
  }

  const started = Date.now();
  let lastReport = 0;
  try {
    const result = await packageHls({
      input,
      output,
      contentId,
      ...keys,
      ...(perEpochText ? { segmentsPerEpoch: Number(perEpochText) } : {}),
      contentKey: args.values["content-key"] === true,
      ...(args.values["key-uri-base"] !== undefined ? { keyUriBase: args.values["key-uri-base"] } : {}),
      overwrite: args.values.force === true,
      onProgress: ({ segmentsDone, segmentsTotal }) => {
        const now = Date.now();
        if (now - lastReport >= 1000 || segmentsDone === segmentsTotal) {
          lastReport = now;
          console.error(`blindcast-pack: ${segmentsDone}/${segmentsTotal} segments`);
        }
      },
    });
    const from = keys.keys ? ` from ${keys.keys.description}` : "";
    console.error(
      `blindcast-pack: wrote ${join(output, result.playlist)}: ${result.segments} segments, ${result.keyUris.length} key(s)${from}, in ${Date.now() - started} ms`,
    );
    return 0;
  } catch (error) {
    if (error instanceof PackagerError) {
      console.error(`blindcast-pack: ${error.message}`);
      return 1;
    }
    throw error;
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
      help: { type: "boolean", short: "h" },
    },
  });
}

function usage(message: string): number {
  console.error(`blindcast-pack: ${message}\n${USAGE}`);
  return 2;
}

/**
 * Where the keys come from: the key server when --key-server is given (the token from the
 * environment), MASTER_KEY and SALT otherwise. Both at once is refused rather than one silently
 * winning: a leftover MASTER_KEY from another project would encrypt with keys the key server
 * does not serve.
 */
function keysFromEnvironment(
  keyServer: string | undefined,
): PackageMasterKeyOptions | PackageKeySourceOptions {
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
