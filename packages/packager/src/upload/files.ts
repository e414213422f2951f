import type { Dirent, Stats } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { UploadError } from "./errors.js";

/**
 * The extensions the key server presigns uploads for (the publisher API's list). Other files are
 * not sent: the server would refuse the whole batch naming them.
 */
export const UPLOADABLE_EXTENSIONS: readonly string[] = [
  "m3u8",
  "ts",
  "m4s",
  "mp4",
  "m4a",
  "m4v",
  "aac",
  "ac3",
  "ec3",
  "mp3",
  "vtt",
  "webvtt",
];

/**
 * The largest file uploaded: each in-flight PUT holds its whole file in memory (so a retry can send
 * it again), and an HLS segment is megabytes, never this. Memory stays under
 * `concurrency × largest file`.
 */
export const MAX_UPLOAD_FILE_BYTES = 1024 * 1024 * 1024;

/** The key server's limit on a path (relative to the content id). */
const MAX_PATH_LENGTH = 256;
const PATH_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

export interface LocalFile {
  /** Relative to the folder, `/`-separated. */
  path: string;
  absolute: string;
  size: number;
  playlist: boolean;
}

/** A file in the folder that is not uploaded, and why. */
export interface IgnoredFile {
  path: string;
  reason: string;
}

export interface FolderListing {
  files: LocalFile[];
  ignored: IgnoredFile[];
}

export function extensionOf(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/** Why the key server would refuse this path, or undefined when it would accept it. */
export function pathProblem(path: string): string | undefined {
  if (path.length > MAX_PATH_LENGTH) return `longer than ${MAX_PATH_LENGTH} characters`;
  const bad = path.split("/").find((segment) => !PATH_SEGMENT.test(segment));
  if (bad !== undefined) {
    return `"${bad}" is not made of A-Z a-z 0-9 _ . - (not starting with a dot)`;
  }
  return undefined;
}

/**
 * Every file of `dir`, sorted by path, split into those the key server accepts and those left out:
 * hidden files and folders (a name starting with a dot) and files of other types. A file of an
 * accepted type whose name the server would refuse is an error, not left out: it is content.
 * Symbolic links to files are followed; links to folders are not (no loops).
 */
export async function listFolder(dir: string): Promise<FolderListing> {
  let top: Stats;
  try {
    top = await stat(dir);
  } catch {
    throw new UploadError("INVALID_FOLDER", `${dir} does not exist or cannot be read`);
  }
  if (!top.isDirectory()) throw new UploadError("INVALID_FOLDER", `${dir} is not a folder`);

  const files: LocalFile[] = [];
  const ignored: IgnoredFile[] = [];
  const badNames: string[] = [];
  const tooLarge: string[] = [];

  async function walk(relative: string): Promise<void> {
    const absoluteDir = join(dir, relative);
    let entries: Dirent[];
    try {
      entries = await readdir(absoluteDir, { withFileTypes: true });
    } catch {
      throw new UploadError("INVALID_FOLDER", `cannot read the folder ${absoluteDir}`);
    }
    for (const entry of entries) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      const absolute = join(absoluteDir, entry.name);
      if (entry.name.startsWith(".")) {
        ignored.push({ path, reason: "hidden" });
        continue;
      }
      if (entry.isDirectory()) {
        await walk(path);
        continue;
      }
      let info: Stats;
      try {
        info = await stat(absolute);
      } catch {
        ignored.push({ path, reason: "a link to nothing, or unreadable" });
        continue;
      }
      if (!info.isFile()) {
        ignored.push({ path, reason: info.isDirectory() ? "a link to a folder" : "not a regular file" });
        continue;
      }
      const extension = extensionOf(path);
      if (!UPLOADABLE_EXTENSIONS.includes(extension)) {
        ignored.push({
          path,
          reason: `not a type the key server accepts (${extension ? `.${extension}` : "no extension"})`,
        });
        continue;
      }
      const problem = pathProblem(path);
      if (problem) badNames.push(`${path}: ${problem}`);
      else if (info.size > MAX_UPLOAD_FILE_BYTES) tooLarge.push(path);
      else files.push({ path, absolute, size: info.size, playlist: extension === "m3u8" });
    }
  }

  await walk("");
  if (badNames.length > 0) {
    throw new UploadError(
      "INVALID_PATH",
      `the key server would refuse these names; rename them (and the playlists naming them): ${listSome(badNames)}`,
    );
  }
  if (tooLarge.length > 0) {
    throw new UploadError(
      "FILE_TOO_LARGE",
      `files over ${MAX_UPLOAD_FILE_BYTES} bytes are not uploaded (HLS segments are far smaller): ${listSome(tooLarge)}`,
    );
  }
  if (files.length === 0) {
    throw new UploadError("INVALID_FOLDER", `${dir} holds no HLS files to upload (playlists, segments)`);
  }
  const byPath = (a: { path: string }, b: { path: string }) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  files.sort(byPath);
  ignored.sort(byPath);
  return { files, ignored };
}

/** The first few items, and how many more: a message stays readable for a folder of thousands. */
export function listSome(items: readonly string[], shown = 5): string {
  const head = items.slice(0, shown).join("; ");
  return items.length > shown ? `${head}; and ${items.length - shown} more` : head;
}
