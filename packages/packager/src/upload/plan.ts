import { open } from "node:fs/promises";
import { posix } from "node:path";
import { UploadError } from "./errors.js";
import { type FolderListing, type LocalFile, listSome } from "./files.js";

/** Playlists are read whole to find what they name; a real one is kilobytes to a few megabytes. */
export const MAX_PLAYLIST_BYTES = 16 * 1024 * 1024;

export interface PlannedFile extends LocalFile {
  /** The files (paths in the folder) this playlist names; empty for anything else. */
  dependsOn: string[];
}

export interface UploadPlan {
  /**
   * Files in the order they may be uploaded: level 0 holds everything that is not a playlist,
   * level n the playlists naming only files of levels below n (media playlists at 1, multivariant
   * playlists at 2). A level starts when the one before it has finished.
   */
  levels: PlannedFile[][];
  /** Playlists no other playlist names: where a player starts. */
  entryPlaylists: string[];
}

const URI_ATTRIBUTES = /URI="([^"]*)"/g;

/** The URIs a playlist names: every non-tag line, and every `URI="…"` attribute of a tag. */
export function playlistUris(text: string): string[] {
  const uris: string[] = [];
  for (const raw of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      if (line.startsWith("#EXT"))
        for (const match of line.matchAll(URI_ATTRIBUTES)) uris.push(match[1] ?? "");
      continue;
    }
    uris.push(line);
  }
  return uris;
}

type Resolved = { kind: "local"; path: string } | { kind: "external" } | { kind: "outside" };

/**
 * Where a URI written in the playlist at `playlistPath` points: a file of the folder, somewhere
 * else entirely (another scheme such as the blindcast:// key URIs, or a host-absolute path), or
 * above the folder.
 */
export function resolveUri(playlistPath: string, uri: string): Resolved {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri) || uri.startsWith("/")) return { kind: "external" };
  const bare = uri.replace(/[?#].*$/, "");
  let decoded = bare;
  try {
    decoded = decodeURIComponent(bare);
  } catch {
    // Not percent-encoded as a URI should be; it is looked up as written.
  }
  const path = posix.normalize(posix.join(posix.dirname(playlistPath), decoded));
  if (path === ".." || path.startsWith("../")) return { kind: "outside" };
  return { kind: "local", path };
}

/**
 * Reads every playlist and orders the upload so that no playlist reaches storage before the
 * files it names. A playlist naming a file that is not in the folder (or not uploadable) is
 * refused before anything is sent: it would publish a stream that breaks while playing.
 */
export async function planUpload(listing: FolderListing): Promise<UploadPlan> {
  const byPath = new Map(listing.files.map((f) => [f.path, f]));
  const ignored = new Map(listing.ignored.map((f) => [f.path, f.reason]));
  const dependsOn = new Map<string, string[]>();
  const problems: string[] = [];
  const named = new Set<string>();

  for (const file of listing.files) {
    if (!file.playlist) continue;
    const deps = new Set<string>();
    for (const uri of playlistUris(await readPlaylist(file))) {
      const resolved = resolveUri(file.path, uri);
      if (resolved.kind === "external") continue;
      if (resolved.kind === "outside") {
        problems.push(`${file.path} names ${uri}, outside the folder`);
        continue;
      }
      const target = resolved.path;
      if (byPath.has(target)) {
        deps.add(target);
        continue;
      }
      const why = ignored.get(target);
      problems.push(
        why
          ? `${file.path} names ${uri}, which is not uploaded (${why})`
          : `${file.path} names ${uri}, which is not in the folder`,
      );
    }
    dependsOn.set(file.path, [...deps]);
    for (const dep of deps) named.add(dep);
  }
  if (problems.length > 0) {
    throw new UploadError(
      "MISSING_REFERENCE",
      `playlists name files that cannot be uploaded: ${listSome(problems)}`,
    );
  }

  // A playlist's level is one above the highest level it names; found depth first, with the
  // path being walked kept to report a cycle.
  const level = new Map<string, number>();
  const walking = new Set<string>();
  const levelOf = (path: string, trail: string[]): number => {
    const known = level.get(path);
    if (known !== undefined) return known;
    const deps = dependsOn.get(path);
    if (!deps) {
      level.set(path, 0);
      return 0;
    }
    if (walking.has(path)) {
      const cycle = [...trail.slice(trail.indexOf(path)), path].join(" → ");
      throw new UploadError("PLAYLIST_CYCLE", `playlists name each other in a circle: ${cycle}`);
    }
    walking.add(path);
    let highest = 0;
    for (const dep of deps) highest = Math.max(highest, levelOf(dep, [...trail, path]));
    walking.delete(path);
    level.set(path, highest + 1);
    return highest + 1;
  };

  const levels: PlannedFile[][] = [];
  for (const file of listing.files) {
    const n = file.playlist ? levelOf(file.path, []) : 0;
    while (levels.length <= n) levels.push([]);
    levels[n]?.push({ ...file, dependsOn: dependsOn.get(file.path) ?? [] });
  }
  const entryPlaylists = listing.files.filter((f) => f.playlist && !named.has(f.path)).map((f) => f.path);
  return { levels: levels.filter((l) => l.length > 0), entryPlaylists };
}

async function readPlaylist(file: LocalFile): Promise<string> {
  if (file.size > MAX_PLAYLIST_BYTES) {
    throw new UploadError(
      "FILE_TOO_LARGE",
      `${file.path} is over ${MAX_PLAYLIST_BYTES} bytes: too large for a playlist`,
    );
  }
  try {
    const handle = await open(file.absolute, "r");
    try {
      // Read at most the bound even if the file grew since it was listed.
      const buffer = Buffer.alloc(Math.min(file.size + 1, MAX_PLAYLIST_BYTES));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      return buffer.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
  } catch {
    throw new UploadError("INVALID_FOLDER", `cannot read ${file.path}`);
  }
}
