import type { Stats } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import {
  assertContentId,
  BlindcastCryptoError,
  bytesToHex,
  encryptSegment,
  IV_BYTES,
} from "@blindcast/crypto";
import { PackagerError, shown } from "./errors.js";
import { checkMediaFile, readMediaFile, readPlaylistBytes, reason, writeInto } from "./files.js";
import { checkSourceKeys, createMasterKeySource, type KeyId, type KeySource } from "./key-source.js";
import { checkKeyUriBase } from "./key-uri-base.js";
import { decodePlaylist, type ParsedPlaylist, parsePlaylist, rewriteMediaPlaylist } from "./playlist.js";

/** Where key URIs point by default: resolved by the player against its keyServerUrl. */
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
  /**
   * Write key URIs as `{keyUriBase}/{contentId}/{epoch}` (`{keyUriBase}/{contentId}` for the
   * content key) instead of `blindcast://keys/…`: the key server's GET routes, for clients that
   * fetch keys over HTTP themselves (ffmpeg, native players). An absolute http(s) URL such as
   * `https://keys.example.com/keys`. Default: blindcast:// URIs, which the Blindcast player
   * resolves against its keyServerUrl.
   */
  keyUriBase?: string;
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
  /** Segment files encrypted: each once, however many playlists name it. */
  segments: number;
  /** Distinct keys the stream uses, in order, as the playlists name them. */
  keyUris: string[];
}

interface MediaJob {
  /** Relative to the input's folder. */
  path: string;
  parsed: ParsedPlaylist;
  /** Each segment's file, relative to the input's folder. */
  segments: string[];
  /** Each init section's file, relative to the input's folder. */
  maps: string[];
}

/** How one segment file is encrypted; shared by every playlist that names the file. */
interface SegmentPlan {
  keyUri: string;
  iv: Uint8Array;
}

/**
 * Encrypts a clear HLS stream: every segment with AES-128-CBC (RFC 8216), keys named by
 * blindcast:// URIs and derived with the v1 contract, a fresh random IV written explicitly for
 * each segment. The input is validated completely before anything is written, and is never
 * overwritten.
 */
export async function packageHls(options: PackageOptions): Promise<PackageResult> {
  const { input, output, contentId, source } = checkOptions(options);
  const keyUriBase = options.keyUriBase === undefined ? undefined : checkKeyUriBase(options.keyUriBase);
  const perEpoch = options.segmentsPerEpoch ?? Number.POSITIVE_INFINITY;

  const inputPath = resolve(input);
  const inputDir = dirname(inputPath);
  const topName = relative(inputDir, inputPath);
  const top = parsePlaylist(await readPlaylist(inputPath, input), topName);

  const jobs: MediaJob[] = [];
  const mediaJob = (path: string, parsed: ParsedPlaylist): MediaJob => ({
    path,
    parsed,
    segments: parsed.uris.map((uri) => join(dirname(path), localPath(uri, path))),
    maps: parsed.mapUris.map((uri) => join(dirname(path), localPath(uri, path))),
  });
  if (top.kind === "media") {
    jobs.push(mediaJob(topName, top));
  } else {
    const seen = new Set<string>();
    for (const uri of top.uris) {
      const path = normalize(localPath(uri, topName));
      if (seen.has(path)) continue;
      seen.add(path);
      const parsed = parsePlaylist(await readPlaylist(join(inputDir, path), path), path);
      if (parsed.kind !== "media") {
        // Its variant playlists would otherwise be encrypted as if they were segments.
        throw new PackagerError(
          "UNSUPPORTED_INPUT",
          `${topName} names ${shown(path)}, itself a multivariant playlist: a multivariant playlist may name only media playlists`,
        );
      }
      jobs.push(mediaJob(path, parsed));
    }
  }

  // Validate every file before writing anything.
  const playlists = new Set<string>([topName, ...jobs.map((job) => job.path)]);
  const segmentFiles = new Set(jobs.flatMap((job) => job.segments));
  const mapFiles = new Set(jobs.flatMap((job) => job.maps));
  for (const path of [...segmentFiles, ...mapFiles]) {
    if (playlists.has(path)) {
      throw new PackagerError("UNSUPPORTED_INPUT", `${shown(path)} is named both as a playlist and as media`);
    }
    if (segmentFiles.has(path) && mapFiles.has(path)) {
      // An init section stays clear and a segment is encrypted: one file cannot be both.
      throw new PackagerError(
        "UNSUPPORTED_INPUT",
        `${shown(path)} is named both as an init section (EXT-X-MAP) and as a media segment`,
      );
    }
  }
  const files = new Set<string>([...playlists, ...segmentFiles, ...mapFiles]);
  const missing: string[] = [];
  for (const path of [...segmentFiles, ...mapFiles]) {
    if ((await checkMediaFile(join(inputDir, path), path)) === "missing") missing.push(path);
  }
  if (missing.length > 0) {
    const list =
      missing
        .slice(0, 5)
        .map((path) => shown(path))
        .join(", ") + (missing.length > 5 ? `, and ${missing.length - 5} more` : "");
    throw new PackagerError(
      "MISSING_SEGMENTS",
      `${missing.length} file(s) named by the playlist are missing: ${list}`,
    );
  }
  const outputDir = resolve(output);
  await checkOutput(outputDir, inputDir, files, options.overwrite === true);

  const total = segmentFiles.size;
  let done = 0;
  const keyUris: string[] = [];
  const keyIds = new Map<string, KeyId>();
  const keyUriOf = (index: number) => {
    const id: KeyId = options.contentKey ? "content" : Math.floor(index / perEpoch);
    const uri = `${KEY_URI_PREFIX}${contentId}${id === "content" ? "" : `/${id}`}`;
    if (!keyIds.has(uri)) {
      keyIds.set(uri, id);
      keyUris.push(uri);
    }
    return uri;
  };

  // A file named by several playlists (or twice by one) is encrypted once, by its first mention;
  // every playlist then names that one key and IV, so none holds a stale IV.
  const plans = new Map<string, SegmentPlan>();
  for (const job of jobs) {
    for (const [i, path] of job.segments.entries()) {
      if (!plans.has(path)) {
        plans.set(path, { keyUri: keyUriOf(i), iv: crypto.getRandomValues(new Uint8Array(IV_BYTES)) });
      }
    }
  }
  const planOf = (job: MediaJob, i: number) => plans.get(job.segments[i] as string) as SegmentPlan;
  const published = (keyUri: string) =>
    keyUriBase === undefined ? keyUri : `${keyUriBase}/${keyUri.slice(KEY_URI_PREFIX.length)}`;

  // The plans name every key the stream needs: the source is asked for them all at once, before
  // anything is written, so a refusal (a key server saying no) leaves no half-written output.
  const ids = [...keyIds.values()];
  const keys = checkSourceKeys(source, ids, await source.getKeys(contentId, ids));
  const keyFor = (uri: string) => keys.get(keyIds.get(uri) as KeyId) as Uint8Array;
  try {
    const written = new Set<string>();
    for (const job of jobs) {
      const playlist = rewriteMediaPlaylist(
        job.parsed,
        (i) => published(planOf(job, i).keyUri),
        (i) => bytesToHex(planOf(job, i).iv),
      );
      for (const path of job.maps) {
        if (written.has(path)) continue;
        written.add(path);
        await writeInto(outputDir, path, await readMediaFile(join(inputDir, path), path));
      }
      for (const [i, path] of job.segments.entries()) {
        if (written.has(path)) continue;
        written.add(path);
        const plan = planOf(job, i);
        const clear = await readMediaFile(join(inputDir, path), path);
        const encrypted = await encryptSegment(keyFor(plan.keyUri), plan.iv, clear);
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

  return {
    playlist: topName,
    mediaPlaylists: jobs.map((j) => j.path),
    segments: total,
    keyUris: keyUris.map(published),
  };
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
      `${from} names "${shown(uri)}": the packager needs relative paths to local files`,
    );
  }
  let path: string;
  try {
    path = decodeURIComponent(uri);
  } catch {
    throw new PackagerError(
      "UNSUPPORTED_INPUT",
      `${from} names "${shown(uri)}", which is not a valid URI: a % must begin an escape of UTF-8 (%25 for a literal %)`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(path)) {
    throw new PackagerError(
      "UNSUPPORTED_INPUT",
      `${from} names "${shown(uri)}", a file name with control characters`,
    );
  }
  if (path.split(/[\\/]/).includes("..")) {
    throw new PackagerError("UNSUPPORTED_INPUT", `${from} names "${shown(uri)}", outside the input's folder`);
  }
  return path;
}

async function checkOutput(outputDir: string, inputDir: string, inputFiles: Set<string>, overwrite: boolean) {
  let realInput: string;
  try {
    realInput = await realpath(inputDir);
  } catch (error) {
    throw new PackagerError(
      "INPUT_UNREADABLE",
      `cannot read the input's folder ${inputDir}: ${reason(error)}`,
    );
  }
  const unusable = (why: string) => new PackagerError("OUTPUT_UNUSABLE", `output ${outputDir}: ${why}`);
  let stats: Stats | undefined;
  try {
    stats = await stat(outputDir);
  } catch (error) {
    // A missing folder is created; anything else in the way (a file on its path, a link loop) is not.
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw unusable(reason(error));
  }
  let realOutput = outputDir;
  if (stats) {
    if (!stats.isDirectory()) throw unusable("it exists and is not a folder");
    let entries: string[];
    try {
      realOutput = await realpath(outputDir);
      entries = await readdir(outputDir);
    } catch (error) {
      throw unusable(reason(error));
    }
    if (entries.length > 0 && !overwrite) {
      throw new PackagerError(
        "OUTPUT_NOT_EMPTY",
        `output folder ${outputDir} is not empty (pass overwrite / --force to write into it)`,
      );
    }
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

async function readPlaylist(path: string, name: string): Promise<string> {
  return decodePlaylist(await readPlaylistBytes(path, name), name);
}

function invalid(message: string): PackagerError {
  return new PackagerError("INVALID_OPTIONS", message);
}
