import { constants } from "node:fs";
import { access, mkdir, readdir, readFile, realpath, stat, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import {
  assertContentId,
  BlindcastCryptoError,
  bytesToHex,
  encryptSegment,
  IV_BYTES,
} from "@blindcast/crypto";
import { PackagerError } from "./errors.js";
import { checkSourceKeys, createMasterKeySource, type KeyId, type KeySource } from "./key-source.js";
import { type ParsedPlaylist, parsePlaylist, rewriteMediaPlaylist } from "./playlist.js";

/** Where key URIs point: resolved by the player against its keyServerUrl. */
export const KEY_URI_PREFIX = "blindcast://keys/";

/**
 * What `packageHls` takes: where the stream is and how to cut it into epochs, and where its keys
 * come from: the master key and salt (`masterKey`, `salt`), or a `KeySource` (`keys`), e.g.
 * `createKeyServerKeySource` for a publisher who has a token and no master key.
 */
export type PackageOptions = PackageStreamOptions & (PackageMasterKeyOptions | PackageKeySourceOptions);

/** Keys derived here from the key server's master key and salt. */
export interface PackageMasterKeyOptions {
  /** The key server's MASTER_KEY: at least 16 bytes (32 recommended). */
  masterKey: Uint8Array;
  /** The key server's SALT: at least 16 bytes. */
  salt: Uint8Array;
  keys?: undefined;
}

/** Keys from a source: `createKeyServerKeySource(…)`, or your own `KeySource`. */
export interface PackageKeySourceOptions {
  /** Asked once, before anything is written, for every key the stream needs. */
  keys: KeySource;
  masterKey?: undefined;
  salt?: undefined;
}

export interface PackageStreamOptions {
  /** The clear input: a media playlist, or a multivariant playlist with its media playlists. */
  input: string;
  /** Folder to write the encrypted stream to; created if missing. */
  output: string;
  /** The id the key server derives this content's keys from. */
  contentId: string;
  /**
   * Start a new key epoch every this many segments. Default: never (every segment in epoch 0).
   */
  segmentsPerEpoch?: number;
  /** Use the content key (`blindcast://keys/{contentId}`) instead of epoch keys. */
  contentKey?: boolean;
  /** Allow writing into a folder that is not empty (files of the same name are replaced). */
  overwrite?: boolean;
  /** Called after each segment is written. */
  onProgress?: (progress: PackageProgress) => void;
}

export interface PackageProgress {
  segmentsDone: number;
  segmentsTotal: number;
  /** The segment just written, relative to the output folder. */
  file: string;
}

export interface PackageResult {
  /** The top playlist written, relative to the output folder (same name as the input). */
  playlist: string;
  mediaPlaylists: string[];
  segments: number;
  /** Distinct keys the stream uses, as blindcast:// URIs, in order. */
  keyUris: string[];
}

interface MediaJob {
  /** Relative to the input's folder. */
  path: string;
  parsed: ParsedPlaylist;
}

/**
 * Encrypts a clear HLS stream: every segment with AES-128-CBC (RFC 8216), keys named by
 * blindcast:// URIs and derived with the v1 contract, a fresh random IV written explicitly for
 * each segment. The input is validated completely before anything is written, and is never
 * overwritten.
 */
export async function packageHls(options: PackageOptions): Promise<PackageResult> {
  const { input, output, contentId, source } = checkOptions(options);
  const perEpoch = options.segmentsPerEpoch ?? Number.POSITIVE_INFINITY;

  const inputPath = resolve(input);
  const inputDir = dirname(inputPath);
  const topName = relative(inputDir, inputPath);
  const top = parsePlaylist(await readText(inputPath, input), topName);

  const jobs: MediaJob[] = [];
  if (top.kind === "media") {
    jobs.push({ path: topName, parsed: top });
  } else {
    for (const uri of new Set(top.uris)) {
      const path = localPath(uri, topName);
      jobs.push({ path, parsed: parsePlaylist(await readText(join(inputDir, path), path), path) });
    }
  }

  // Validate every file before writing anything.
  const files = new Set<string>([topName]);
  const missing: string[] = [];
  for (const job of jobs) {
    files.add(job.path);
    for (const uri of [...job.parsed.uris, ...job.parsed.mapUris]) {
      const path = join(dirname(job.path), localPath(uri, job.path));
      files.add(path);
      if (!(await isFile(join(inputDir, path)))) missing.push(path);
    }
  }
  if (missing.length > 0) {
    const list =
      missing.slice(0, 5).join(", ") + (missing.length > 5 ? `, and ${missing.length - 5} more` : "");
    throw new PackagerError(
      "MISSING_SEGMENTS",
      `${missing.length} file(s) named by the playlist are missing: ${list}`,
    );
  }
  const outputDir = resolve(output);
  await checkOutput(outputDir, inputDir, files, options.overwrite === true);

  const total = jobs.reduce((n, job) => n + job.parsed.uris.length, 0);
  let done = 0;
  const keyUris: string[] = [];
  const keyUriOf = (index: number) => {
    const uri = options.contentKey
      ? `${KEY_URI_PREFIX}${contentId}`
      : `${KEY_URI_PREFIX}${contentId}/${Math.floor(index / perEpoch)}`;
    if (!keyUris.includes(uri)) keyUris.push(uri);
    return uri;
  };
  // Every key the stream needs, known before anything is encrypted: each media playlist counts
  // its segments from 0, so the longest one names every epoch.
  const longest = Math.max(...jobs.map((job) => job.parsed.uris.length));
  const epochs = perEpoch === Number.POSITIVE_INFINITY ? 1 : Math.ceil(longest / perEpoch);
  const ids: KeyId[] = options.contentKey ? ["content"] : Array.from({ length: epochs }, (_, e) => e);
  const keys = checkSourceKeys(source, ids, await source.getKeys(contentId, ids));
  try {
    const keyOf = (index: number) =>
      keys.get(options.contentKey ? "content" : Math.floor(index / perEpoch)) as Uint8Array;
    for (const job of jobs) {
      const jobDir = dirname(job.path);
      const ivs = job.parsed.uris.map(() => crypto.getRandomValues(new Uint8Array(IV_BYTES)));
      const playlist = rewriteMediaPlaylist(job.parsed, keyUriOf, (i) => bytesToHex(ivs[i] as Uint8Array));
      for (const map of job.parsed.mapUris) {
        const path = join(jobDir, localPath(map, job.path));
        await writeInto(outputDir, path, await readFile(join(inputDir, path)));
      }
      for (const [i, uri] of job.parsed.uris.entries()) {
        const path = join(jobDir, localPath(uri, job.path));
        const clear = await readFile(join(inputDir, path));
        const encrypted = await encryptSegment(keyOf(i), ivs[i] as Uint8Array, clear);
        await writeInto(outputDir, path, encrypted);
        done++;
        options.onProgress?.({ segmentsDone: done, segmentsTotal: total, file: path });
      }
      await writeInto(outputDir, job.path, playlist);
    }
    if (top.kind === "multivariant") await writeInto(outputDir, topName, top.lines.join("\n"));
  } finally {
    for (const key of keys.values()) key.fill(0);
  }

  return { playlist: topName, mediaPlaylists: jobs.map((j) => j.path), segments: total, keyUris };
}

function checkOptions(options: PackageOptions): PackageOptions & { source: KeySource } {
  if (typeof options !== "object" || options === null) throw invalid("options are required");
  if (typeof options.input !== "string" || options.input === "")
    throw invalid("input (the playlist path) is required");
  if (typeof options.output !== "string" || options.output === "")
    throw invalid("output (a folder) is required");
  try {
    assertContentId(options.contentId);
  } catch (error) {
    if (error instanceof BlindcastCryptoError) throw invalid(error.message);
    throw error;
  }
  let source: KeySource;
  if (options.keys !== undefined) {
    if (options.masterKey !== undefined || options.salt !== undefined) {
      throw invalid("give either keys or masterKey and salt, not both");
    }
    if (typeof options.keys?.getKeys !== "function") {
      throw invalid("keys must be a KeySource, e.g. createKeyServerKeySource({ url, token })");
    }
    source = options.keys;
  } else {
    source = createMasterKeySource({ masterKey: options.masterKey, salt: options.salt });
  }
  const n = options.segmentsPerEpoch;
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 1))
    throw invalid("segmentsPerEpoch must be a positive integer");
  if (n !== undefined && options.contentKey)
    throw invalid("segmentsPerEpoch and contentKey exclude each other");
  return { ...options, source };
}

/** A URI as a path inside the input folder; URLs and paths leaving the folder are refused. */
function localPath(uri: string, from: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || isAbsolute(uri) || uri.includes("?") || uri.includes("#")) {
    throw new PackagerError(
      "UNSUPPORTED_INPUT",
      `${from} names "${uri}": the packager needs relative paths to local files`,
    );
  }
  const path = decodeURIComponent(uri);
  if (path.split(/[\\/]/).includes("..")) {
    throw new PackagerError("UNSUPPORTED_INPUT", `${from} names "${uri}", outside the input's folder`);
  }
  return path;
}

async function checkOutput(outputDir: string, inputDir: string, inputFiles: Set<string>, overwrite: boolean) {
  const realInput = await realpath(inputDir);
  let realOutput = outputDir;
  try {
    realOutput = await realpath(outputDir);
    const entries = await readdir(outputDir);
    if (entries.length > 0 && !overwrite) {
      throw new PackagerError(
        "OUTPUT_NOT_EMPTY",
        `output folder ${outputDir} is not empty (pass overwrite / --force to write into it)`,
      );
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  // Written files keep their relative paths, so they collide with inputs exactly when the folders match.
  if (realOutput === realInput) {
    throw new PackagerError(
      "WOULD_OVERWRITE_INPUT",
      "output folder is the input's folder: the packager never overwrites its input",
    );
  }
  for (const file of inputFiles) {
    const target = join(realOutput, file);
    if (target.startsWith(realInput + sep) && inputFiles.has(relative(realInput, target))) {
      throw new PackagerError("WOULD_OVERWRITE_INPUT", `writing ${file} would overwrite an input file`);
    }
  }
}

async function writeInto(outputDir: string, path: string, data: Uint8Array | string) {
  const target = join(outputDir, path);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, data);
}

async function readText(path: string, name: string): Promise<string> {
  try {
    await access(path, constants.R_OK);
    return await readFile(path, "utf8");
  } catch {
    throw new PackagerError("INPUT_NOT_FOUND", `cannot read playlist ${name}`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function invalid(message: string): PackagerError {
  return new PackagerError("INVALID_OPTIONS", message);
}
