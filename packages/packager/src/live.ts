import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { bytesToHex, encryptSegment, hexToBytes, IV_BYTES } from "@blindcast/crypto";
import { PackagerError, shown } from "./errors.js";
import { checkMediaFile, readMediaFile, reason, removeFrom, sizeOf, writeAtomic } from "./files.js";
import type { InputSnapshot, MediaJob } from "./input.js";
import { type EpochRule, epochOf, type Keyring, keyUriOf, publishedKeyUri } from "./keys.js";
import {
  emptyState,
  hasState,
  type LiveState,
  loadState,
  type SegmentRecord,
  STATE_FILE,
  type StateSettings,
  serializeState,
  settingsMismatch,
  takeLock,
} from "./live-state.js";
import { checkOutput, type OutputCheck, refuseOverwritingInput } from "./output.js";
import { rewriteMediaPlaylist } from "./playlist.js";

/** What a live run reports as it goes. */
export type WatchEvent =
  /** An earlier run's state was found: its segments are kept as they are. */
  | { type: "resumed"; segments: number }
  /** A new segment was encrypted and written (not yet named by a published playlist). */
  | { type: "segment"; playlist: string; file: string; sequence: number; epoch: number | null }
  /**
   * A published segment missing from the output folder was written again, with its recorded key
   * and IV: byte for byte what was published.
   */
  | { type: "restored"; file: string }
  /**
   * A media playlist was replaced, atomically, after every segment it names was written (a
   * multivariant playlist is written after its media playlists, and reported by none).
   */
  | { type: "published"; playlist: string; mediaSequence: number; segments: number; ended: boolean }
  /**
   * Segments `first` to `last` of a media playlist left the input's window before the watch
   * packaged them (it was stopped, or held up, e.g. by the key server, for longer than the
   * window): the output goes from the last segment it published to the window's first.
   */
  | { type: "skipped"; playlist: string; first: number; last: number }
  /** The input is not usable yet (being written, a segment not there); polling goes on. */
  | { type: "waiting"; code: string; message: string }
  /** A segment out of every window for long enough was deleted from the output (prune). */
  | { type: "pruned"; file: string };

export interface LiveSettings {
  input: string;
  outputDir: string;
  contentId: string;
  rule: EpochRule;
  keyUriBase: string | undefined;
  keyring: Keyring;
  overwrite: boolean;
  prune: boolean;
  onEvent?: ((event: WatchEvent) => void) | undefined;
  onProgress?: ((done: number, total: number, file: string) => void) | undefined;
}

export interface StepOutcome {
  /** Segments encrypted by this step. */
  encrypted: number;
  /** Every media playlist has EXT-X-ENDLIST, and the final playlists are published. */
  ended: boolean;
  /** The smallest EXT-X-TARGETDURATION of the media playlists, seconds. */
  targetDuration: number | undefined;
  /** Distinct key URIs the published playlists name, in order. */
  keyUris: string[];
  /** prune: when the next segment out of the windows is due for deletion (ms since 1970). */
  nextPrune: number | undefined;
}

interface FreshSegment {
  path: string;
  record: Omit<SegmentRecord, "size">;
  /** A published segment written again with its recorded IV (its output file was gone). */
  restore: boolean;
}

const mismatch = (message: string) => new PackagerError("LIVE_STATE_MISMATCH", message);

/**
 * Packages a live input one window at a time into one output folder. Each step encrypts the
 * segments the input's playlists name that no earlier step (or earlier run, through the state
 * file) encrypted, writes them, records them, and only then publishes the playlists, atomically.
 * A published segment is never encrypted again: its key, IV and playlist lines stay as they were.
 */
export class LiveSession {
  private releaseLock: (() => Promise<void>) | undefined;
  private readonly published = new Map<string, string>();
  private savedState: string | undefined;
  /** Segments whose output file this run has seen or written. */
  private readonly verified = new Set<string>();

  private constructor(
    private readonly settings: LiveSettings,
    private readonly output: OutputCheck,
    private readonly state: LiveState,
  ) {}

  static async open(settings: LiveSettings, topName: string, inputDir: string): Promise<LiveSession> {
    const output = await checkOutput(settings.outputDir, inputDir, [], settings.overwrite, true);
    const stateSettings: StateSettings = {
      contentId: settings.contentId,
      segmentsPerEpoch: settings.rule.segmentsPerEpoch ?? null,
      contentKey: settings.rule.contentKey,
      keyUriBase: settings.keyUriBase ?? null,
      input: topName,
    };
    let release: (() => Promise<void>) | undefined;
    // An existing folder is locked now, before its state is read; a new one when first written.
    if (output.exists) release = await takeLock(settings.outputDir);
    try {
      const recorded = output.continuing ? await loadState(settings.outputDir) : undefined;
      if (recorded) {
        const differences = settingsMismatch(recorded, stateSettings);
        if (differences) {
          throw mismatch(
            `${join(settings.outputDir, STATE_FILE)} records a stream packaged with ${differences}: continue it with the same settings, or package into a new folder`,
          );
        }
        settings.onEvent?.({ type: "resumed", segments: recorded.segments.size });
      }
      const session = new LiveSession(settings, output, recorded ?? emptyState(stateSettings));
      session.releaseLock = release;
      if (recorded) session.savedState = serializeState(recorded);
      return session;
    } catch (error) {
      await release?.();
      throw error;
    }
  }

  async close(): Promise<void> {
    const release = this.releaseLock;
    this.releaseLock = undefined;
    await release?.();
  }

  async step(snapshot: InputSnapshot): Promise<StepOutcome> {
    const { settings, state } = this;
    const { inputDir } = snapshot;
    const inputFiles = new Set([...snapshot.playlists, ...snapshot.segmentFiles, ...snapshot.mapFiles]);

    // Plan: check everything, write nothing.
    const plans = new Map<string, Omit<SegmentRecord, "size">>();
    const fresh: FreshSegment[] = [];
    const freshMaps: string[] = [];
    const missing: string[] = [];
    const skipped: Extract<WatchEvent, { type: "skipped" }>[] = [];
    for (const job of snapshot.jobs) {
      const before = state.playlists.get(job.path);
      if (before && job.parsed.mediaSequence < before.mediaSequence) {
        throw mismatch(
          `${shown(job.path)}: EXT-X-MEDIA-SEQUENCE went back from ${before.mediaSequence} to ${job.parsed.mediaSequence}, so the encoder started over; make it continue the numbering (ffmpeg: -hls_flags append_list, or -start_number), or package into a new folder`,
        );
      }
      const lastPublished = this.lastPublished(job.path);
      if (lastPublished !== undefined && job.parsed.mediaSequence > lastPublished + 1) {
        skipped.push({
          type: "skipped",
          playlist: job.path,
          first: lastPublished + 1,
          last: job.parsed.mediaSequence - 1,
        });
      }
      for (const [i, path] of job.segments.entries()) {
        if (plans.has(path)) continue; // named twice: encrypted once, by its first mention
        const sequence = job.parsed.mediaSequence + i;
        const known = state.segments.get(path);
        if (known) {
          await this.checkKnown(job, path, sequence, known, inputDir, fresh);
          plans.set(path, known);
          continue;
        }
        if ((await checkMediaFile(join(inputDir, path), path)) === "missing") {
          missing.push(path);
          continue;
        }
        refuseOverwritingInput(this.output, path, inputFiles);
        const record = {
          playlist: job.path,
          sequence,
          epoch: epochOf(sequence, settings.rule),
          iv: bytesToHex(crypto.getRandomValues(new Uint8Array(IV_BYTES))),
          duration: job.parsed.durations[i] ?? 0,
        };
        plans.set(path, record);
        fresh.push({ path, record, restore: false });
      }
      for (const path of job.maps) {
        const size = await sizeOf(join(inputDir, path), path);
        const known = state.maps.get(path);
        if (known !== undefined) {
          if (size !== undefined && size !== known) {
            throw mismatch(
              `${shown(path)} changed after it was published (${known} bytes, now ${size}): the encoder rewrote it; package into a new folder`,
            );
          }
          if (this.verified.has(path)) continue;
          if ((await sizeOf(join(settings.outputDir, path), path, "OUTPUT_UNUSABLE")) !== undefined) {
            this.verified.add(path);
          } else if (size === undefined) {
            throw mismatch(
              `${shown(path)} was published but is gone from both the output and the input folder; package into a new folder`,
            );
          } else if (!freshMaps.includes(path)) {
            freshMaps.push(path); // gone from the output: copied again, the same bytes
          }
        } else if (!freshMaps.includes(path)) {
          if ((await checkMediaFile(join(inputDir, path), path)) === "missing") missing.push(path);
          else {
            refuseOverwritingInput(this.output, path, inputFiles);
            freshMaps.push(path);
          }
        }
      }
    }
    if (missing.length > 0) throw missingFiles(missing);

    // The keys of this step's segments, before anything is written: a key server that refuses or
    // cannot be reached leaves this step undone and the output as it was.
    await settings.keyring.fetch(fresh.map(({ record }) => record.epoch));

    // Write: init sections, then segments, each complete before the state records it.
    await this.ensureLock();
    for (const path of freshMaps) {
      const clear = await readFresh(inputDir, path);
      await writeAtomic(settings.outputDir, path, clear);
      state.maps.set(path, clear.length);
      this.verified.add(path);
    }
    let done = 0;
    for (const { path, record, restore } of fresh) {
      const clear = await readFresh(inputDir, path);
      const key = await settings.keyring.keyFor(record.epoch);
      const encrypted = await encryptSegment(key, hexToBytes(record.iv), clear);
      await writeAtomic(settings.outputDir, path, encrypted);
      state.segments.set(path, { ...record, size: clear.length });
      this.verified.add(path);
      done++;
      if (restore) settings.onEvent?.({ type: "restored", file: path });
      else {
        settings.onEvent?.({
          type: "segment",
          playlist: record.playlist,
          file: path,
          sequence: record.sequence,
          epoch: record.epoch,
        });
      }
      settings.onProgress?.(done, fresh.length, path);
    }

    // Record: the windows' segments, and those that left them (deleted later with prune).
    const now = Date.now();
    const named = new Set(plans.keys());
    for (const [path, record] of state.segments) {
      if (named.has(path)) continue;
      state.segments.delete(path);
      if (settings.prune) {
        // Kept as long as a viewer holding the last playlist that named it may still ask for it
        // (RFC 8216 §6.2.2: its duration plus that playlist's).
        const window = state.playlists.get(record.playlist)?.duration ?? 0;
        state.prune.push({ file: path, after: now + Math.ceil((record.duration + window) * 1000) });
      }
    }
    for (const path of this.verified) {
      if (!named.has(path) && !snapshot.mapFiles.has(path)) this.verified.delete(path);
    }
    state.prune = state.prune.filter((entry) => !named.has(entry.file));
    const due = state.prune.filter((entry) => entry.after <= now);
    state.prune = state.prune.filter((entry) => entry.after > now);
    const names = new Set(snapshot.jobs.map((job) => job.path));
    for (const path of state.playlists.keys()) if (!names.has(path)) state.playlists.delete(path);
    for (const job of snapshot.jobs) {
      state.playlists.set(job.path, {
        mediaSequence: job.parsed.mediaSequence,
        duration: job.parsed.durations.reduce((sum, d) => sum + d, 0),
        ended: job.parsed.ended,
      });
    }
    for (const path of state.maps.keys()) if (!snapshot.mapFiles.has(path)) state.maps.delete(path);
    const stateText = serializeState(state);
    if (stateText !== this.savedState) {
      await writeAtomic(settings.outputDir, STATE_FILE, stateText);
      this.savedState = stateText;
    }

    // Publish: media playlists (every segment they name is written), then the multivariant one.
    const keyUris: string[] = [];
    const keyUriFor = (job: MediaJob, i: number) => {
      const plan = plans.get(job.segments[i] as string) as SegmentRecord;
      const uri = publishedKeyUri(keyUriOf(settings.contentId, plan.epoch), settings.keyUriBase);
      if (!keyUris.includes(uri)) keyUris.push(uri);
      return uri;
    };
    const ivFor = (job: MediaJob, i: number) => (plans.get(job.segments[i] as string) as SegmentRecord).iv;
    for (const event of skipped) settings.onEvent?.(event);
    for (const job of snapshot.jobs) {
      const text = rewriteMediaPlaylist(
        job.parsed,
        (i) => keyUriFor(job, i),
        (i) => ivFor(job, i),
      );
      if (await this.publish(job.path, text, inputFiles)) {
        settings.onEvent?.({
          type: "published",
          playlist: job.path,
          mediaSequence: job.parsed.mediaSequence,
          segments: job.segments.length,
          ended: job.parsed.ended,
        });
      }
    }
    if (snapshot.top.kind === "multivariant") {
      await this.publish(snapshot.topName, snapshot.top.lines.join("\n"), inputFiles);
    }
    for (const entry of due) {
      await removeFrom(settings.outputDir, entry.file);
      settings.onEvent?.({ type: "pruned", file: entry.file });
    }

    const durations = snapshot.jobs
      .map((job) => job.parsed.targetDuration)
      .filter((d): d is number => d !== undefined);
    return {
      encrypted: done,
      ended: snapshot.jobs.every((job) => job.parsed.ended),
      targetDuration: durations.length > 0 ? Math.min(...durations) : undefined,
      keyUris,
      nextPrune: state.prune.length > 0 ? Math.min(...state.prune.map((entry) => entry.after)) : undefined,
    };
  }

  /**
   * A segment an earlier step published: it must be the same file at the same place in its
   * playlist; written again (same key and IV, so the same bytes) when its output file is gone.
   */
  private async checkKnown(
    job: MediaJob,
    path: string,
    sequence: number,
    known: SegmentRecord,
    inputDir: string,
    fresh: FreshSegment[],
  ): Promise<void> {
    if (known.playlist === job.path && known.sequence !== sequence) {
      throw mismatch(
        `${shown(path)} is now at media sequence ${sequence} of ${shown(job.path)}, but was published at ${known.sequence}: the encoder started over and reuses segment names; make it continue the numbering (ffmpeg: -hls_flags append_list), or package into a new folder`,
      );
    }
    const size = await sizeOf(join(inputDir, path), path);
    if (size !== undefined && size !== known.size) {
      throw mismatch(
        `${shown(path)} changed after it was published (${known.size} bytes, now ${size}): the encoder rewrote it; package into a new folder`,
      );
    }
    if (this.verified.has(path)) return;
    const written = await sizeOf(join(this.settings.outputDir, path), path, "OUTPUT_UNUSABLE");
    if (written === undefined) {
      if (size === undefined) {
        throw mismatch(
          `${shown(path)} was published but is gone from both the output and the input folder; package into a new folder`,
        );
      }
      fresh.push({ path, record: known, restore: true });
      return;
    }
    this.verified.add(path);
  }

  /** The largest media sequence number the output's `playlist` names, if it names any. */
  private lastPublished(playlist: string): number | undefined {
    let last: number | undefined;
    for (const record of this.state.segments.values()) {
      if (record.playlist === playlist && (last === undefined || record.sequence > last))
        last = record.sequence;
    }
    return last;
  }

  /** Replaces the playlist at `path` atomically, unless it is already `text`; true when written. */
  private async publish(path: string, text: string, inputFiles: ReadonlySet<string>): Promise<boolean> {
    if (this.published.get(path) === text) return false;
    refuseOverwritingInput(this.output, path, inputFiles);
    await writeAtomic(this.settings.outputDir, path, text);
    this.published.set(path, text);
    return true;
  }

  /** The output folder exists and this run holds its lock. */
  private async ensureLock(): Promise<void> {
    if (this.releaseLock) return;
    try {
      await mkdir(this.settings.outputDir, { recursive: true });
    } catch (error) {
      throw new PackagerError(
        "OUTPUT_UNUSABLE",
        `cannot create ${this.settings.outputDir}: ${reason(error)}`,
      );
    }
    this.releaseLock = await takeLock(this.settings.outputDir);
    if (this.savedState === undefined && (await hasState(this.settings.outputDir))) {
      throw new PackagerError(
        "OUTPUT_BUSY",
        `another run started writing into ${this.settings.outputDir} at the same time; give another output folder`,
      );
    }
  }
}

function missingFiles(missing: string[]): PackagerError {
  const list =
    missing
      .slice(0, 5)
      .map((path) => shown(path))
      .join(", ") + (missing.length > 5 ? `, and ${missing.length - 5} more` : "");
  return new PackagerError(
    "MISSING_SEGMENTS",
    `${missing.length} file(s) named by the playlist are missing: ${list}`,
  );
}

/** A media file checked by the plan; gone since (the encoder deleted it) is reported as missing. */
async function readFresh(inputDir: string, path: string): Promise<Uint8Array> {
  try {
    return await readMediaFile(join(inputDir, path), path);
  } catch (error) {
    if ((await sizeOf(join(inputDir, path), path).catch(() => 0)) === undefined) throw missingFiles([path]);
    throw error;
  }
}
