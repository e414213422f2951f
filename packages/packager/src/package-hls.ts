import { join, resolve } from "node:path";
import { assertContentId, BlindcastCryptoError, bytesToHex, IV_BYTES } from "@blindcast/crypto";
import { encryptFileInto } from "./encrypt-file.js";
import { PackagerError, shown } from "./errors.js";
import { checkMediaFile, readMediaFile, writeInto } from "./files.js";
import { type InputSnapshot, isLive, readInput } from "./input.js";
import { createMasterKeySource, type KeySource } from "./key-source.js";
import { checkKeyUriBase } from "./key-uri-base.js";
import {
  createKeyring,
  type Epoch,
  type EpochRule,
  epochOf,
  KEY_URI_PREFIX,
  type Keyring,
  keyUriOf,
  publishedKeyUri,
} from "./keys.js";
import { LiveSession } from "./live.js";
import { hasState } from "./live-state.js";
import { checkOutput } from "./output.js";
import { rewriteMediaPlaylist } from "./playlist.js";

export { KEY_URI_PREFIX };

/**
 * What `packageHls` takes: where the stream is and how to cut it into epochs, and where its keys
 * come from: the master key and salt (`masterKey`, `salt`), or a `KeySource` (`keys`), e.g.
 * `createKeyServerKeySource` for a publisher who has a token and no master key.
 */
export type PackageOptions = PackageStreamOptions & PackageKeyOptions;

/** Where the keys come from: one of the two, for `packageHls` and `watchHls` alike. */
export type PackageKeyOptions = PackageMasterKeyOptions | PackageKeySourceOptions;

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
  /**
   * Asked for every key a VOD stream needs in one go, before anything is written; a live stream's
   * keys are asked as its epochs appear (`watchHls` asks a few epochs ahead, so not every epoch
   * costs a request), each step's before that step writes anything.
   */
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
   * Start a new key epoch every this many segments: a segment's epoch is
   * `floor(mediaSequenceNumber / segmentsPerEpoch)`, so it does not depend on where a live window
   * starts. Default: never (every segment in epoch 0).
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
  /**
   * The input is live (a media playlist without `EXT-X-ENDLIST`): its current window was packaged
   * and the output left live, without `EXT-X-ENDLIST`; `segments` counts the segments this run
   * encrypted (those an earlier run published are kept as they are).
   */
  live: boolean;
}

/** How one segment file is encrypted; shared by every playlist that names the file. */
interface SegmentPlan {
  epoch: Epoch;
  iv: Uint8Array;
}

/**
 * Encrypts a clear HLS stream: every segment with AES-128-CBC (RFC 8216), keys named by
 * blindcast:// URIs (derived from the master key with the v1 contract, or got from `keys`), a
 * fresh random IV written explicitly for each segment. A segment's epoch comes from its media
 * sequence number, `floor(sequence / segmentsPerEpoch)`. The input is validated completely, and
 * every key it needs got, before anything is written; the input is never overwritten.
 *
 * A live input (a media playlist without `EXT-X-ENDLIST`), or an output folder holding a live
 * run's state file, is packaged as one step of `watchHls`: the current window, left live, with
 * the state recorded so that the next run continues it (`result.live`).
 */
export async function packageHls(options: PackageOptions): Promise<PackageResult> {
  const { input, output, contentId, source } = checkOptions(options);
  const keyUriBase = options.keyUriBase === undefined ? undefined : checkKeyUriBase(options.keyUriBase);
  const rule: EpochRule = {
    segmentsPerEpoch: options.segmentsPerEpoch,
    contentKey: options.contentKey === true,
  };
  const snapshot = await readInput(input);
  const outputDir = resolve(output);
  // One run holds the keys its stream (or live window) needs; none is asked ahead.
  const keyring = createKeyring(source, contentId);
  try {
    if (isLive(snapshot) || (await hasState(outputDir))) {
      return await packageWindow(options, snapshot, outputDir, rule, keyUriBase, keyring);
    }
    return await packageVod(options, snapshot, outputDir, rule, keyUriBase, keyring);
  } finally {
    keyring.wipe();
  }
}

async function packageVod(
  options: PackageOptions,
  snapshot: InputSnapshot,
  outputDir: string,
  rule: EpochRule,
  keyUriBase: string | undefined,
  keyring: Keyring,
): Promise<PackageResult> {
  const { contentId } = options;
  const { inputDir, topName, top, jobs, playlists, segmentFiles, mapFiles } = snapshot;

  // Validate every file before writing anything.
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
  await checkOutput(
    outputDir,
    inputDir,
    new Set([...playlists, ...segmentFiles, ...mapFiles]),
    options.overwrite === true,
  );

  const total = segmentFiles.size;
  let done = 0;
  const keyUris: string[] = [];
  const keyUriFor = (epoch: Epoch) => {
    const uri = publishedKeyUri(keyUriOf(contentId, epoch), keyUriBase);
    if (!keyUris.includes(uri)) keyUris.push(uri);
    return uri;
  };

  // A file named by several playlists (or twice by one) is encrypted once, by its first mention;
  // every playlist then names that one key and IV, so none holds a stale IV.
  const plans = new Map<string, SegmentPlan>();
  for (const job of jobs) {
    for (const [i, path] of job.segments.entries()) {
      if (!plans.has(path)) {
        plans.set(path, {
          epoch: epochOf(job.parsed.mediaSequence + i, rule),
          iv: crypto.getRandomValues(new Uint8Array(IV_BYTES)),
        });
      }
    }
  }
  const planOf = (path: string) => plans.get(path) as SegmentPlan;

  // Every key the stream needs, in one go, before anything is written: a refusal (a key server
  // saying no) leaves no half-written output.
  await keyring.fetch(new Set([...plans.values()].map((plan) => plan.epoch)));

  const written = new Set<string>();
  for (const job of jobs) {
    const playlist = rewriteMediaPlaylist(
      job.parsed,
      (i) => keyUriFor(planOf(job.segments[i] as string).epoch),
      (i) => bytesToHex(planOf(job.segments[i] as string).iv),
    );
    for (const path of job.maps) {
      if (written.has(path)) continue;
      written.add(path);
      await writeInto(outputDir, path, await readMediaFile(join(inputDir, path), path));
    }
    for (const path of job.segments) {
      if (written.has(path)) continue;
      written.add(path);
      const plan = planOf(path);
      // Streamed a chunk at a time: memory stays flat however long the segment or the stream.
      const key = await keyring.keyFor(plan.epoch);
      await encryptFileInto(join(inputDir, path), path, outputDir, path, key, plan.iv);
      done++;
      options.onProgress?.({ segmentsDone: done, segmentsTotal: total, file: path });
    }
    await writeInto(outputDir, job.path, playlist);
  }
  if (top.kind === "multivariant") await writeInto(outputDir, topName, top.lines.join("\n"));

  return {
    playlist: topName,
    mediaPlaylists: jobs.map((j) => j.path),
    segments: total,
    keyUris,
    live: false,
  };
}

/** A live input's current window, as one step of watchHls: left live, its state recorded. */
async function packageWindow(
  options: PackageOptions,
  snapshot: InputSnapshot,
  outputDir: string,
  rule: EpochRule,
  keyUriBase: string | undefined,
  keyring: Keyring,
): Promise<PackageResult> {
  const session = await LiveSession.open(
    {
      input: options.input,
      outputDir,
      contentId: options.contentId,
      rule,
      keyUriBase,
      keyring,
      overwrite: options.overwrite === true,
      prune: false,
      onProgress: (segmentsDone, segmentsTotal, file) =>
        options.onProgress?.({ segmentsDone, segmentsTotal, file }),
    },
    snapshot.topName,
    snapshot.inputDir,
  );
  try {
    const outcome = await session.step(snapshot);
    return {
      playlist: snapshot.topName,
      mediaPlaylists: snapshot.jobs.map((j) => j.path),
      segments: outcome.encrypted,
      keyUris: outcome.keyUris,
      live: !outcome.ended,
    };
  } finally {
    await session.close();
  }
}

/**
 * Refuses options that cannot describe a packaging run (shared by packageHls and watchHls), and
 * gives the key source: `keys`, or the master key and salt as a source.
 */
export function checkOptions<T extends PackageStreamOptions & PackageKeyOptions>(
  options: T,
): T & { source: KeySource } {
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

function invalid(message: string): PackagerError {
  return new PackagerError("INVALID_OPTIONS", message);
}
