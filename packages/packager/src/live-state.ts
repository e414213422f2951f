import { open, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { isValidEpoch } from "@blindcast/crypto";
import { PackagerError, shown } from "./errors.js";
import { reason, writeAtomic } from "./files.js";
import type { Epoch } from "./keys.js";

/**
 * The file in the output folder that records what a live run has published, so that a later run
 * continues without encrypting anything again. Nothing in it is secret: the IVs are in the
 * playlists too.
 */
export const STATE_FILE = ".blindcast-live.json";
/** Held while a run writes into the output folder, so two runs never write into one folder. */
export const LOCK_FILE = ".blindcast-live.lock";
const STATE_FORMAT = "blindcast-live/1";
/** A state file holds the segments of the current windows: far below this. */
const MAX_STATE_BYTES = 16 * 1024 * 1024;

/** A published segment: what its playlist lines are made of, and how to tell it was rewritten. */
export interface SegmentRecord {
  /** The media playlist that first named it, relative to the input's folder. */
  playlist: string;
  sequence: number;
  epoch: Epoch;
  /** 32 hex digits. */
  iv: string;
  /** The clear file's size when it was encrypted. */
  size: number;
  /** EXTINF, seconds. */
  duration: number;
}

export interface PlaylistRecord {
  /** EXT-X-MEDIA-SEQUENCE last published: it never goes back. */
  mediaSequence: number;
  /** The published window's duration, seconds (how long a removed segment stays on disk). */
  duration: number;
  ended: boolean;
}

export interface LiveState {
  contentId: string;
  segmentsPerEpoch: number | null;
  contentKey: boolean;
  keyUriBase: string | null;
  /** The top playlist, relative to the input's folder. */
  input: string;
  playlists: Map<string, PlaylistRecord>;
  /** Segments the current windows name, by file (relative). */
  segments: Map<string, SegmentRecord>;
  /** Init sections copied, with their size. */
  maps: Map<string, number>;
  /** Segments out of every window, deleted from the output after `after` (ms since 1970). */
  prune: { file: string; after: number }[];
}

/** The settings a state is bound to: a later run with other settings would publish another stream. */
export type StateSettings = Pick<
  LiveState,
  "contentId" | "segmentsPerEpoch" | "contentKey" | "keyUriBase" | "input"
>;

export function emptyState(settings: StateSettings): LiveState {
  return { ...settings, playlists: new Map(), segments: new Map(), maps: new Map(), prune: [] };
}

export async function hasState(outputDir: string): Promise<boolean> {
  try {
    await stat(join(outputDir, STATE_FILE));
    return true;
  } catch {
    return false;
  }
}

const invalid = (path: string, why: string) =>
  new PackagerError(
    "LIVE_STATE_INVALID",
    `${shown(path)} ${why}: it records what was published; restore it, or package into a new folder (published segments would get new IVs)`,
  );

/** The state recorded in `outputDir`, or undefined when there is none. */
export async function loadState(outputDir: string): Promise<LiveState | undefined> {
  const path = join(outputDir, STATE_FILE);
  let text: string;
  try {
    const stats = await stat(path);
    if (!stats.isFile()) throw invalid(path, "is not a file");
    if (stats.size > MAX_STATE_BYTES) throw invalid(path, "is too large to be a state file");
    text = await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof PackagerError) throw error;
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw invalid(path, `cannot be read (${reason(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid(path, "is not JSON");
  }
  const state = parseState(json);
  if (!state) throw invalid(path, `is not a ${STATE_FORMAT} state file`);
  return state;
}

export async function saveState(outputDir: string, state: LiveState): Promise<string> {
  const text = serializeState(state);
  await writeAtomic(outputDir, STATE_FILE, text);
  return text;
}

export function serializeState(state: LiveState): string {
  return `${JSON.stringify(
    {
      format: STATE_FORMAT,
      contentId: state.contentId,
      segmentsPerEpoch: state.segmentsPerEpoch,
      contentKey: state.contentKey,
      keyUriBase: state.keyUriBase,
      input: state.input,
      // Arrays, not objects keyed by file name: a name such as __proto__ stays a name.
      playlists: [...state.playlists].map(([file, record]) => ({ file, ...record })),
      segments: [...state.segments].map(([file, record]) => ({ file, ...record })),
      maps: [...state.maps].map(([file, size]) => ({ file, size })),
      prune: state.prune,
    },
    null,
    1,
  )}\n`;
}

/** The differences between a recorded state's settings and this run's, in words. */
export function settingsMismatch(state: LiveState, settings: StateSettings): string | undefined {
  const differences: string[] = [];
  const say = (what: string, was: unknown, now: unknown) => {
    if (was !== now) differences.push(`${what} ${JSON.stringify(was)} (now ${JSON.stringify(now)})`);
  };
  say("input", state.input, settings.input);
  say("contentId", state.contentId, settings.contentId);
  say("segmentsPerEpoch", state.segmentsPerEpoch, settings.segmentsPerEpoch);
  say("contentKey", state.contentKey, settings.contentKey);
  say("keyUriBase", state.keyUriBase, settings.keyUriBase);
  return differences.length === 0 ? undefined : differences.join(", ");
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const isSeconds = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value) && value >= 0;
const isName = (value: unknown): value is string => typeof value === "string" && value !== "";

function parseState(json: unknown): LiveState | undefined {
  if (!isObject(json) || json.format !== STATE_FORMAT) return undefined;
  const { contentId, segmentsPerEpoch, contentKey, keyUriBase, input } = json;
  if (!isName(contentId) || !isName(input) || typeof contentKey !== "boolean") return undefined;
  if (segmentsPerEpoch !== null && !(isCount(segmentsPerEpoch) && segmentsPerEpoch > 0)) return undefined;
  if (keyUriBase !== null && !isName(keyUriBase)) return undefined;
  if (![json.playlists, json.segments, json.maps, json.prune].every(Array.isArray)) return undefined;
  const state = emptyState({ contentId, segmentsPerEpoch, contentKey, keyUriBase, input });
  for (const item of json.playlists as unknown[]) {
    if (!isObject(item) || !isName(item.file) || !isCount(item.mediaSequence)) return undefined;
    if (!isSeconds(item.duration) || typeof item.ended !== "boolean") return undefined;
    state.playlists.set(item.file, {
      mediaSequence: item.mediaSequence,
      duration: item.duration,
      ended: item.ended,
    });
  }
  for (const item of json.segments as unknown[]) {
    if (!isObject(item) || !isName(item.file) || !isName(item.playlist) || !isCount(item.sequence)) {
      return undefined;
    }
    if (!(item.epoch === null || isValidEpoch(item.epoch))) return undefined;
    if (typeof item.iv !== "string" || !/^[0-9a-f]{32}$/.test(item.iv)) return undefined;
    if (!isCount(item.size) || !isSeconds(item.duration)) return undefined;
    state.segments.set(item.file, {
      playlist: item.playlist,
      sequence: item.sequence,
      epoch: item.epoch as Epoch,
      iv: item.iv,
      size: item.size,
      duration: item.duration,
    });
  }
  for (const item of json.maps as unknown[]) {
    if (!isObject(item) || !isName(item.file) || !isCount(item.size)) return undefined;
    state.maps.set(item.file, item.size);
  }
  for (const item of json.prune as unknown[]) {
    if (!isObject(item) || !isName(item.file) || !isCount(item.after)) return undefined;
    state.prune.push({ file: item.file, after: item.after });
  }
  return state;
}

/**
 * Takes the output folder's lock, or refuses when another run holds it. A lock left by a run that
 * died (its process is gone) is taken over.
 */
export async function takeLock(outputDir: string): Promise<() => Promise<void>> {
  const path = join(outputDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx");
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return () => unlink(path).catch(() => undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new PackagerError("OUTPUT_UNUSABLE", `cannot write ${shown(path)}: ${reason(error)}`);
      }
    }
    const holder = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    // No pid yet: another run may have just created it; only an old one is stale.
    const fresh = Number.isNaN(holder) && Date.now() - (await modified(path)) < 10_000;
    if (fresh || (holder > 0 && holder !== process.pid && isRunning(holder))) {
      throw new PackagerError(
        "OUTPUT_BUSY",
        `another blindcast-pack (${fresh ? "starting" : `process ${holder}`}) is writing into ${shown(outputDir)}; stop it first, or give another output folder`,
      );
    }
    if (holder === process.pid) {
      throw new PackagerError("OUTPUT_BUSY", `this process is already writing into ${shown(outputDir)}`);
    }
    // Stale: its process is gone. Replaced by the next attempt's exclusive create.
    await unlink(path).catch(() => undefined);
  }
  throw new PackagerError("OUTPUT_BUSY", `cannot take the lock ${shown(path)}`);
}

async function modified(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
