import type { Stats } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PackagerError, shown } from "./errors.js";

/**
 * Largest playlist read. Far beyond any real VOD playlist (100 000 segments take a few MB), and
 * small enough that a wrong file given as input (a video, a disk image) cannot exhaust memory.
 */
export const MAX_PLAYLIST_BYTES = 32 * 1024 * 1024;
/**
 * Largest segment or init section. A VOD run streams each segment through the cipher a chunk at
 * a time; a live run still encrypts a segment in one piece, in memory.
 */
export const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024;

const READ_CHUNK = 64 * 1024;
const PLAYLIST_MAGIC = "#EXTM3U";

/** An operating-system error in plain words, for messages; never a stack trace. */
export function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "it does not exist";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a folder";
    case "ENOTDIR":
      return "a folder on its path is a file";
    case "EEXIST":
      return "a file of that name is in the way";
    case "ELOOP":
      return "too many levels of symbolic links (a loop?)";
    case "ENAMETOOLONG":
      return "the name is too long";
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "disk quota exceeded";
    case "EROFS":
      return "the file system is read-only";
    case "EMFILE":
    case "ENFILE":
      return "too many open files";
    case "EIO":
      return "input/output error";
    default: {
      const message = error instanceof Error ? error.message : String(error);
      return (code ?? message).replace(/\s+/g, " ");
    }
  }
}

const gone = (error: unknown) => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
};

function notARegularFile(stats: Stats): string {
  return stats.isDirectory() ? "it is a folder" : "it is not a regular file";
}

/**
 * A playlist's bytes. Only regular files are opened (a FIFO or a device could block or never
 * end), and at most MAX_PLAYLIST_BYTES are read.
 */
export async function readPlaylistBytes(path: string, fullName: string): Promise<Uint8Array> {
  const name = shown(fullName);
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (error) {
    throw new PackagerError(
      gone(error) ? "INPUT_NOT_FOUND" : "INPUT_UNREADABLE",
      `cannot read playlist ${name}: ${reason(error)}`,
    );
  }
  if (!stats.isFile()) {
    throw new PackagerError("INPUT_UNREADABLE", `cannot read playlist ${name}: ${notARegularFile(stats)}`);
  }
  const tooBig = () =>
    new PackagerError(
      "UNSUPPORTED_INPUT",
      `playlist ${name} is larger than ${MAX_PLAYLIST_BYTES / 1024 / 1024} MiB: not an HLS playlist the packager reads`,
    );
  if (stats.size > MAX_PLAYLIST_BYTES) throw tooBig();
  try {
    const handle = await open(path, "r");
    try {
      const chunks: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const chunk = new Uint8Array(READ_CHUNK);
        const { bytesRead } = await handle.read(chunk, 0, READ_CHUNK, null);
        if (bytesRead === 0) break;
        total += bytesRead;
        // The file may have grown since stat: the bound holds whatever it does.
        if (total > MAX_PLAYLIST_BYTES) throw tooBig();
        chunks.push(chunk.subarray(0, bytesRead));
      }
      return Buffer.concat(chunks, total);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof PackagerError) throw error;
    throw new PackagerError("INPUT_UNREADABLE", `cannot read playlist ${name}: ${reason(error)}`);
  }
}

/**
 * Checks a segment or init section before anything is written: `"missing"` when it does not
 * exist; a refusal when it exists but cannot be used (unreadable, a folder, too large, or a
 * playlist named as if it were media).
 */
export async function checkMediaFile(path: string, fullName: string): Promise<"ok" | "missing"> {
  const name = shown(fullName);
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (error) {
    if (gone(error)) return "missing";
    throw new PackagerError("INPUT_UNREADABLE", `cannot read ${name}: ${reason(error)}`);
  }
  if (!stats.isFile()) {
    throw new PackagerError("INPUT_UNREADABLE", `cannot read ${name}: ${notARegularFile(stats)}`);
  }
  if (stats.size > MAX_SEGMENT_BYTES) {
    throw new PackagerError(
      "UNSUPPORTED_INPUT",
      `${name} is larger than ${MAX_SEGMENT_BYTES / 1024 / 1024 / 1024} GiB; cut the stream into shorter segments`,
    );
  }
  let head: string;
  try {
    const handle = await open(path, "r");
    try {
      const bytes = new Uint8Array(PLAYLIST_MAGIC.length);
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
      head = Buffer.from(bytes.subarray(0, bytesRead)).toString("latin1");
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new PackagerError("INPUT_UNREADABLE", `cannot read ${name}: ${reason(error)}`);
  }
  // Encrypting a playlist as if it were media would publish an unplayable stream.
  if (head === PLAYLIST_MAGIC) {
    throw new PackagerError(
      "UNSUPPORTED_INPUT",
      `${name} is a playlist, but is named where a media segment belongs`,
    );
  }
  return "ok";
}

/** A segment or init section, checked before by checkMediaFile. */
export async function readMediaFile(path: string, fullName: string): Promise<Uint8Array> {
  const name = shown(fullName);
  try {
    return await readFile(path);
  } catch (error) {
    throw new PackagerError("INPUT_UNREADABLE", `cannot read ${name}: ${reason(error)}`);
  }
}

/** Writes `path` (relative) into the output folder, creating folders on the way. */
export async function writeInto(outputDir: string, path: string, data: Uint8Array | string): Promise<void> {
  const target = join(outputDir, path);
  try {
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, data);
  } catch (error) {
    throw new PackagerError("OUTPUT_UNUSABLE", `cannot write ${shown(target)}: ${reason(error)}`);
  }
}

/** The suffix of the file a write goes to before it is renamed into place. */
export const TEMP_SUFFIX = ".blindcast-tmp";

/**
 * Writes `path` (relative) into the output folder so that a reader sees the old file or the new
 * one, never a part: into a temporary file, flushed to disk, then renamed over the target (a
 * rename within a folder is atomic). A crash leaves at most the temporary file, which the next
 * write replaces.
 */
export async function writeAtomic(outputDir: string, path: string, data: Uint8Array | string): Promise<void> {
  const target = join(outputDir, path);
  const temp = `${target}${TEMP_SUFFIX}`;
  try {
    await mkdir(dirname(target), { recursive: true });
    const handle = await open(temp, "w");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw new PackagerError("OUTPUT_UNUSABLE", `cannot write ${shown(target)}: ${reason(error)}`);
  }
}

/** Deletes `path` (relative) from the output folder; a file already gone is not an error. */
export async function removeFrom(outputDir: string, path: string): Promise<void> {
  const target = join(outputDir, path);
  try {
    await unlink(target);
  } catch (error) {
    if (!gone(error)) {
      throw new PackagerError("OUTPUT_UNUSABLE", `cannot delete ${shown(target)}: ${reason(error)}`);
    }
  }
}

/** A file's size, or undefined when it does not exist. */
export async function sizeOf(
  path: string,
  fullName: string,
  code: "INPUT_UNREADABLE" | "OUTPUT_UNUSABLE" = "INPUT_UNREADABLE",
): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (gone(error)) return undefined;
    throw new PackagerError(code, `cannot read ${shown(fullName)}: ${reason(error)}`);
  }
}
