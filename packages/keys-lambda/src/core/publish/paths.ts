/**
 * Which files a packaged HLS stream has, and the content type each is stored with: storage serves
 * objects with the type given at upload, and players and CDNs go by it.
 */
export const UPLOAD_CONTENT_TYPES: ReadonlyMap<string, string> = new Map([
  ["m3u8", "application/vnd.apple.mpegurl"],
  ["ts", "video/mp2t"],
  ["m4s", "video/iso.segment"],
  ["mp4", "video/mp4"],
  ["m4v", "video/mp4"],
  ["m4a", "audio/mp4"],
  ["aac", "audio/aac"],
  ["ac3", "audio/ac3"],
  ["ec3", "audio/eac3"],
  ["mp3", "audio/mpeg"],
  ["vtt", "text/vtt"],
  ["webvtt", "text/vtt"],
]);

export const MAX_UPLOAD_PATH_LENGTH = 256;
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/**
 * Why a path of a packaged stream may not be uploaded, or `undefined` when it may. Only plain
 * relative names are signed: no `..`, no absolute or empty segments, no hidden files, no
 * characters that storage or a URL would read differently, and only media and playlist types,
 * so a publisher token cannot place a web page or a script next to the stream (and no `.key`).
 */
export function uploadPathProblem(path: unknown): string | undefined {
  if (typeof path !== "string" || path === "") return "path must be a non-empty string";
  const shown = JSON.stringify(path.length > 80 ? `${path.slice(0, 80)}…` : path);
  if (path.length > MAX_UPLOAD_PATH_LENGTH) {
    return `path ${shown} is longer than ${MAX_UPLOAD_PATH_LENGTH} characters`;
  }
  if (path.startsWith("/")) return `path ${shown} must be relative (no leading /)`;
  for (const segment of path.split("/")) {
    if (segment === "." || segment === "..") return `path ${shown} must not contain . or .. segments`;
    if (segment === "") return `path ${shown} has an empty segment`;
    if (!SEGMENT.test(segment)) {
      return `path ${shown} may only use A-Z a-z 0-9 _ . - in names, not starting with .`;
    }
  }
  if (uploadContentType(path) === undefined) {
    return `path ${shown} is not a file type of a packaged stream (${[...UPLOAD_CONTENT_TYPES.keys()].join(", ")})`;
  }
  return undefined;
}

/** The content type a path is stored with, or `undefined` for a type a stream does not have. */
export function uploadContentType(path: string): string | undefined {
  const dot = path.lastIndexOf(".");
  if (dot < 0 || dot < path.lastIndexOf("/")) return undefined;
  return UPLOAD_CONTENT_TYPES.get(path.slice(dot + 1).toLowerCase());
}
