import { dirname, isAbsolute, join, normalize, relative, resolve } from "node:path";
import { PackagerError, shown } from "./errors.js";
import { readPlaylistBytes } from "./files.js";
import { decodePlaylist, type ParsedPlaylist, parsePlaylist } from "./playlist.js";

/** One media playlist of the input. */
export interface MediaJob {
  /** Relative to the input's folder. */
  path: string;
  parsed: ParsedPlaylist;
  /** Each segment's file, relative to the input's folder. */
  segments: string[];
  /** Each init section's file, relative to the input's folder. */
  maps: string[];
}

/** The input as read at one moment: its top playlist and every media playlist under it. */
export interface InputSnapshot {
  /** The input's folder, absolute. */
  inputDir: string;
  /** The top playlist, relative to the input's folder. */
  topName: string;
  top: ParsedPlaylist;
  jobs: MediaJob[];
  /** Playlists, segments and init sections: every file the input names, relative to its folder. */
  playlists: Set<string>;
  segmentFiles: Set<string>;
  mapFiles: Set<string>;
}

/**
 * Reads and checks the input's playlists (not yet its media files): a media playlist, or a
 * multivariant playlist naming media playlists, every URI a local relative path, no file named
 * in two roles.
 */
export async function readInput(input: string): Promise<InputSnapshot> {
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
  return { inputDir, topName, top, jobs, playlists, segmentFiles, mapFiles };
}

/** Live: some media playlist has no `EXT-X-ENDLIST` yet, so the encoder is still adding to it. */
export function isLive(snapshot: InputSnapshot): boolean {
  return snapshot.jobs.some((job) => !job.parsed.ended);
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

async function readPlaylist(path: string, name: string): Promise<string> {
  return decodePlaylist(await readPlaylistBytes(path, name), name);
}
