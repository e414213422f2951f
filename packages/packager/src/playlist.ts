import { PackagerError } from "./errors.js";

/** A playlist's lines, and whether it is a multivariant (master) playlist. */
export interface ParsedPlaylist {
  kind: "multivariant" | "media";
  lines: string[];
  /** Multivariant: the media playlists it names, as written. Media: the segment URIs. */
  uris: string[];
  /** Media: `EXT-X-MAP` init section URIs. */
  mapUris: string[];
  mediaSequence: number;
}

const URI_ATTRIBUTE = /URI="([^"]*)"/;

const notAPlaylist = (name: string) =>
  new PackagerError("MALFORMED_PLAYLIST", `${name} is not an HLS playlist: its first line must be #EXTM3U`);

/**
 * A playlist's text. Playlists are UTF-8 (RFC 8216 §4.1); decoding anything else leniently would
 * turn a file name into one that does not exist, so other bytes are refused, naming the line.
 */
export function decodePlaylist(bytes: Uint8Array, name: string): string {
  const strict = new TextDecoder("utf-8", { fatal: true });
  try {
    return strict.decode(bytes);
  } catch {
    // Binary input is reported as what it is: not a playlist at all.
    const firstLine = new TextDecoder()
      .decode(bytes.subarray(0, 64))
      .replace(/^\uFEFF/, "")
      .split(/\r?\n/)[0];
    if (firstLine?.trim() !== "#EXTM3U") throw notAPlaylist(name);
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0x0a) continue;
      try {
        strict.decode(bytes.subarray(start, i));
      } catch {
        break;
      }
      line++;
      start = i + 1;
    }
    throw new PackagerError(
      "MALFORMED_PLAYLIST",
      `${name} line ${line} is not UTF-8: playlists are UTF-8 text (RFC 8216), so a file whose name is not UTF-8 cannot be named in one; rename it`,
    );
  }
}

export function parsePlaylist(text: string, name: string): ParsedPlaylist {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  if (lines[0]?.trim() !== "#EXTM3U") throw notAPlaylist(name);
  // Renditions (EXT-X-MEDIA) are named only by multivariant playlists: never media segments.
  const multivariant = lines.some((l) => l.startsWith("#EXT-X-STREAM-INF") || l.startsWith("#EXT-X-MEDIA:"));
  const media = lines.some((l) => l.startsWith("#EXTINF"));
  if (multivariant && media) {
    throw new PackagerError("MALFORMED_PLAYLIST", `${name} mixes variant streams and media segments`);
  }
  const uris: string[] = [];
  const mapUris: string[] = [];
  let mediaSequence = 0;
  let expectUri = false;
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    const where = `${name} line ${i + 1}`;
    if (line === "") continue;
    if (line.startsWith("#")) {
      if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) {
        mediaSequence = Number(line.slice("#EXT-X-MEDIA-SEQUENCE:".length));
        if (!Number.isSafeInteger(mediaSequence) || mediaSequence < 0) {
          throw new PackagerError(
            "MALFORMED_PLAYLIST",
            `${where}: EXT-X-MEDIA-SEQUENCE is not a whole number`,
          );
        }
      } else if (line.startsWith("#EXT-X-KEY:") || line.startsWith("#EXT-X-SESSION-KEY:")) {
        if (!/METHOD=NONE(,|$)/.test(line)) {
          throw new PackagerError(
            "ALREADY_ENCRYPTED",
            `${where}: the input is already encrypted; give the clear stream`,
          );
        }
      } else if (
        line.startsWith("#EXT-X-BYTERANGE") ||
        (line.startsWith("#EXT-X-MAP:") && line.includes("BYTERANGE"))
      ) {
        throw new PackagerError(
          "UNSUPPORTED_INPUT",
          `${where}: byte-range segments are not supported; let ffmpeg write one file per segment`,
        );
      } else if (line.startsWith("#EXT-X-I-FRAME-STREAM-INF")) {
        throw new PackagerError(
          "UNSUPPORTED_INPUT",
          `${where}: I-frame playlists are not supported; remove them from the input`,
        );
      } else if (line.startsWith("#EXT-X-MAP:")) {
        mapUris.push(uriAttribute(line, where));
      } else if (line.startsWith("#EXT-X-MEDIA:") && URI_ATTRIBUTE.test(line)) {
        uris.push(uriAttribute(line, where));
      } else if (line.startsWith("#EXT-X-STREAM-INF") || line.startsWith("#EXTINF")) {
        expectUri = true;
      }
      continue;
    }
    if (!expectUri)
      throw new PackagerError(
        "MALFORMED_PLAYLIST",
        `${where}: a URI with no #EXTINF or #EXT-X-STREAM-INF before it`,
      );
    expectUri = false;
    uris.push(line);
  }
  if (expectUri)
    throw new PackagerError("MALFORMED_PLAYLIST", `${name}: the last #EXTINF has no URI after it`);
  if (uris.length === 0) {
    throw new PackagerError("MALFORMED_PLAYLIST", `${name} has no segments and no variant streams`);
  }
  return { kind: multivariant ? "multivariant" : "media", lines, uris, mapUris, mediaSequence };
}

function uriAttribute(line: string, where: string): string {
  const uri = URI_ATTRIBUTE.exec(line)?.[1];
  if (!uri) throw new PackagerError("MALFORMED_PLAYLIST", `${where}: the tag has no URI attribute`);
  return uri;
}

/**
 * The rewritten media playlist: an `EXT-X-KEY` with an explicit IV before every segment, naming
 * the epoch's key by its blindcast:// URI; init sections (`EXT-X-MAP`) stay clear.
 */
export function rewriteMediaPlaylist(
  parsed: ParsedPlaylist,
  keyUriOf: (segmentIndex: number) => string,
  ivOf: (segmentIndex: number) => string,
): string {
  const out: string[] = [];
  let segment = 0;
  let keyActive = false;
  const declaresVersion = parsed.lines.some((l) => l.trim().startsWith("#EXT-X-VERSION:"));
  for (const [i, raw] of parsed.lines.entries()) {
    const line = raw.trim();
    if (i === 1 && !declaresVersion) {
      // Without the tag a client assumes version 1, which has no IV attribute (RFC 8216 §7).
      out.push(`#EXT-X-VERSION:${minimumVersion(parsed.lines)}`);
    }
    if (line.startsWith("#EXT-X-KEY:")) continue; // METHOD=NONE only, checked by parsePlaylist
    if (line.startsWith("#EXT-X-VERSION:")) {
      // IV attributes need protocol version 2; a higher version is kept as it is.
      out.push(`#EXT-X-VERSION:${Math.max(2, Number(line.slice(15)) || 0)}`);
      continue;
    }
    if (line.startsWith("#EXT-X-MAP:") && keyActive) {
      // A key tag applies to later EXT-X-MAPs too; this keeps init sections clear.
      out.push("#EXT-X-KEY:METHOD=NONE");
      keyActive = false;
    }
    if (line.startsWith("#EXTINF")) {
      out.push(`#EXT-X-KEY:METHOD=AES-128,URI="${keyUriOf(segment)}",IV=0x${ivOf(segment)}`);
      keyActive = true;
      segment++;
    }
    out.push(raw);
  }
  return out.join("\n");
}

/**
 * The lowest version (RFC 8216 §7) the rewritten playlist can declare, for an input that declares
 * none: 2 for the IV attribute, 3 for decimal EXTINF durations, 6 for EXT-X-MAP in a media
 * playlist. Tags the packager refuses (byte ranges, I-frame playlists) are not looked for.
 */
function minimumVersion(lines: readonly string[]): number {
  let version = 2;
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith("#EXT-X-MAP:")) version = Math.max(version, 6);
    else if (/^#EXTINF:\s*[0-9]*\.[0-9]/.test(line)) version = Math.max(version, 3);
  }
  return version;
}
