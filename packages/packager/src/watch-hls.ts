import { dirname, relative, resolve } from "node:path";
import { PackagerError, type PackagerErrorCode } from "./errors.js";
import { readInput } from "./input.js";
import { checkKeyUriBase } from "./key-uri-base.js";
import { createKeyring, type EpochRule } from "./keys.js";
import { LiveSession, type WatchEvent } from "./live.js";
import { checkOptions, type PackageKeyOptions, type PackageStreamOptions } from "./package-hls.js";

export type { WatchEvent };

/**
 * What `watchHls` takes: `packageHls`'s options (the keys from `masterKey` and `salt`, or from
 * `keys`, a `KeySource` such as `createKeyServerKeySource`), and how to follow the input.
 */
export type WatchOptions = WatchStreamOptions & PackageKeyOptions;

export interface WatchStreamOptions extends Omit<PackageStreamOptions, "onProgress"> {
  /**
   * How often the input playlist is read, in ms. Default: half the input's
   * EXT-X-TARGETDURATION, between 100 ms and 5 s (500 ms until the playlist is first read).
   */
  pollIntervalMs?: number;
  /**
   * How long the input may go without a new segment (or stay unusable: missing, half written,
   * naming a missing segment) before the watch fails, in ms. Default: ten target durations, at
   * least 30 s.
   */
  stallTimeoutMs?: number;
  /**
   * Delete segments from the output once they have left the window for their own duration plus
   * the window's (RFC 8216 §6.2.2). Default: they stay.
   */
  prune?: boolean;
  /** Stops the watch, as `stop()` does. */
  signal?: AbortSignal;
  /** Everything the watch does, as it does it. */
  onEvent?: (event: WatchEvent) => void;
}

export interface WatchResult {
  /** The top playlist, relative to the output folder (same name as the input). */
  playlist: string;
  /** The media playlists of the last window read. */
  mediaPlaylists: string[];
  /** Segments this run encrypted. */
  segments: number;
  /** true: the input ended (EXT-X-ENDLIST) and the final playlists are published; false: stopped. */
  ended: boolean;
}

export interface LiveWatch {
  /**
   * Resolves when the input ends or the watch is stopped; rejects with a PackagerError when it
   * fails (the input stalls, a refusal, a failed write). Await it: a failure shows only here.
   */
  done: Promise<WatchResult>;
  /**
   * Stops after the step in progress (a segment is never left half written, a playlist never
   * published before its segments) and resolves once stopped. The output stays valid and live;
   * a later watch on the same folder continues it.
   */
  stop(): Promise<void>;
}

const FIRST_POLL_MS = 500;
const MIN_POLL_MS = 100;
const MAX_POLL_MS = 5000;
const MIN_STALL_MS = 30_000;
/**
 * Epochs asked ahead when a new epoch's key is needed: one request to the key source per
 * 1 + KEYS_AHEAD epochs, not one per epoch (with one segment per epoch, one per segment).
 */
const KEYS_AHEAD = 4;
/** Keys held at once: the current epochs and those asked ahead; older ones are zeroed. */
const KEYS_HELD = 16;
/**
 * Problems that pass: an encoder's input for a moment (the next poll usually finds them gone),
 * or a key server down after its source's retries. A step that fails with one wrote nothing, so
 * the next poll tries again; the stall timeout bounds how long.
 */
const PASSING: ReadonlySet<PackagerErrorCode> = new Set([
  "INPUT_NOT_FOUND",
  "MALFORMED_PLAYLIST",
  "MISSING_SEGMENTS",
  "KEY_SERVER_UNAVAILABLE",
]);

/**
 * Follows a clear live HLS stream as an encoder (ffmpeg -f hls) writes it: polls the input
 * playlist, encrypts each new segment once the playlist names it (an encoder names a segment
 * once it is complete), writes it, and then publishes the output playlist atomically, mirroring
 * the input's window. Published segments keep their key and IV: they are recorded in a state
 * file in the output folder, so a watch stopped (or killed) and started again continues without
 * encrypting anything again. Ends when the input gains EXT-X-ENDLIST.
 */
export function watchHls(options: WatchOptions): LiveWatch {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  options?.signal?.addEventListener("abort", onAbort, { once: true });
  if (options?.signal?.aborted) controller.abort();
  const done = watch(options, controller.signal).finally(() =>
    options?.signal?.removeEventListener("abort", onAbort),
  );
  // A failure is reported through `done`; never as an unhandled rejection as well.
  done.catch(() => undefined);
  return {
    done,
    async stop() {
      controller.abort();
      await done.then(
        () => undefined,
        () => undefined,
      );
    },
  };
}

async function watch(options: WatchOptions, signal: AbortSignal): Promise<WatchResult> {
  const { input, output, contentId, source } = checkOptions(options);
  const pollIntervalMs = bounded(options.pollIntervalMs, "pollIntervalMs", 10, 60_000);
  const stallTimeoutMs = bounded(options.stallTimeoutMs, "stallTimeoutMs", 100, 86_400_000);
  if (options.prune !== undefined && typeof options.prune !== "boolean") {
    throw new PackagerError("INVALID_OPTIONS", "prune must be true or false");
  }
  const keyUriBase = options.keyUriBase === undefined ? undefined : checkKeyUriBase(options.keyUriBase);
  const rule: EpochRule = {
    segmentsPerEpoch: options.segmentsPerEpoch,
    contentKey: options.contentKey === true,
  };
  const inputPath = resolve(input);
  const topName = relative(dirname(inputPath), inputPath);
  // A live stream goes through epochs without end: keys are asked a few epochs ahead, and those
  // no longer in use dropped. Every segment in epoch 0 (or the content key) needs no asking ahead.
  const keyring = createKeyring(source, contentId, {
    lookahead: rule.segmentsPerEpoch === undefined || rule.contentKey ? 0 : KEYS_AHEAD,
    held: KEYS_HELD,
  });
  const result: WatchResult = { playlist: topName, mediaPlaylists: [], segments: 0, ended: false };
  let session: LiveSession | undefined;
  try {
    session = await LiveSession.open(
      {
        input,
        outputDir: resolve(output),
        contentId,
        rule,
        keyUriBase,
        keyring,
        overwrite: options.overwrite === true,
        prune: options.prune === true,
        onEvent: options.onEvent,
      },
      topName,
      dirname(inputPath),
    );
    let lastProgress = Date.now();
    let targetDuration: number | undefined;
    let problem: PackagerError | undefined;
    while (!signal.aborted) {
      try {
        const snapshot = await readInput(input);
        const outcome = await session.step(snapshot);
        result.mediaPlaylists = snapshot.jobs.map((job) => job.path);
        result.segments += outcome.encrypted;
        targetDuration = outcome.targetDuration ?? targetDuration;
        problem = undefined;
        if (outcome.encrypted > 0) lastProgress = Date.now();
        if (outcome.ended) {
          result.ended = true;
          // With prune, the segments the final window dropped are deleted once their time is up.
          if (outcome.nextPrune === undefined) return result;
          await sleep(Math.min(MAX_POLL_MS, Math.max(0, outcome.nextPrune - Date.now())), signal);
          continue;
        }
      } catch (error) {
        if (!(error instanceof PackagerError) || !PASSING.has(error.code)) throw error;
        if (problem?.message !== error.message) {
          options.onEvent?.({ type: "waiting", code: error.code, message: error.message });
        }
        problem = error;
      }
      const stallMs = stallTimeoutMs ?? Math.max(MIN_STALL_MS, 10_000 * (targetDuration ?? 0));
      const quiet = Date.now() - lastProgress;
      if (quiet > stallMs) {
        const seconds = `${Math.round(quiet / 100) / 10} s`;
        throw problem
          ? new PackagerError(problem.code, `${problem.message} (still so after ${seconds})`)
          : new PackagerError(
              "INPUT_STALLED",
              `${topName} has had no new segment for ${seconds} and no #EXT-X-ENDLIST: is the encoder still running? (the stall timeout is ${stallMs / 1000} s)`,
            );
      }
      const pollMs =
        pollIntervalMs ??
        (targetDuration === undefined
          ? FIRST_POLL_MS
          : Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, (targetDuration * 1000) / 2)));
      await sleep(pollMs, signal);
    }
    return result;
  } finally {
    await session?.close();
    keyring.wipe();
  }
}

function bounded(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new PackagerError("INVALID_OPTIONS", `${name} must be a number of ms from ${min} to ${max}`);
  }
  return value;
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolvePromise) => {
    if (signal.aborted) return resolvePromise();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolvePromise();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
