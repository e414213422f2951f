// A stand-in for a live encoder (ffmpeg -f hls): writes a clear live HLS stream segment by
// segment, from a committed clear VOD stream (by default the demo sample), the way ffmpeg's hls
// muxer does it: each segment written in place (the next one is already half written while the
// playlist names only complete ones), then the playlist replaced atomically (temporary file and
// rename), a sliding window, EXT-X-MEDIA-SEQUENCE and EXT-X-DISCONTINUITY-SEQUENCE kept up, and
// EXT-X-ENDLIST at the end. The source's segments are used in a loop, with EXT-X-DISCONTINUITY
// where the loop starts again (timestamps jump back there). No encoder needed.
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const DEMO_SAMPLE_PLAYLIST = fileURLToPath(new URL("../../demo/sample/index.m3u8", import.meta.url));

/** The init section (EXT-X-MAP) of a clear VOD media playlist, as an absolute path, if it has one. */
export function readSourceMap(playlist) {
  const uri = /^#EXT-X-MAP:URI="([^"]+)"/m.exec(readFileSync(playlist, "utf8"))?.[1];
  return uri === undefined ? undefined : join(dirname(playlist), decodeURIComponent(uri));
}

/** The segments of a clear VOD media playlist: absolute paths and EXTINF durations. */
export function readSourceSegments(playlist) {
  const lines = readFileSync(playlist, "utf8").split(/\r?\n/);
  const segments = [];
  let duration;
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith("#EXTINF:")) duration = Number.parseFloat(line.slice(8));
    else if (line !== "" && !line.startsWith("#")) {
      if (duration === undefined) throw new Error(`${playlist}: ${line} has no EXTINF`);
      segments.push({ path: join(dirname(playlist), decodeURIComponent(line)), duration });
      duration = undefined;
    }
  }
  if (segments.length === 0) throw new Error(`${playlist} names no segments`);
  return segments;
}

/**
 * @param {import("./live-encoder.d.mts").LiveEncoderOptions} options
 * @returns {import("./live-encoder.d.mts").LiveEncoder}
 */
export function createLiveEncoder(options) {
  const dir = options.dir;
  const source = readSourceSegments(options.source ?? DEMO_SAMPLE_PLAYLIST);
  const map = readSourceMap(options.source ?? DEMO_SAMPLE_PLAYLIST);
  const mapName = map === undefined ? undefined : `init${extname(map)}`;
  const count = options.count ?? source.length;
  const window = options.window ?? 5;
  const start = options.startSequence ?? 0;
  const variants = options.variants ?? 0;
  const partial = options.partial ?? true;
  const ext = extname(source[0].path) || ".ts";
  const segmentName = options.segmentName ?? ((sequence) => `live${sequence}${ext}`);
  const mediaName = variants > 0 ? "index.m3u8" : (options.playlist ?? "index.m3u8");
  const folders = variants > 0 ? Array.from({ length: variants }, (_, v) => `v${v}`) : [""];
  const playlistPath = join(dir, variants > 0 ? (options.playlist ?? "master.m3u8") : mediaName);
  const pdtStart = options.programDateTime ? Date.parse(options.programDateTime) : undefined;
  const loopMs = source.reduce((sum, s) => sum + s.duration, 0) * 1000;
  const targetDuration = Math.max(1, Math.ceil(Math.max(...source.map((s) => s.duration))));

  /** Every segment written, in order (for variants: once per sequence, the first variant's file). */
  const written = [];
  let ended = false;
  mkdirSync(dir, { recursive: true });
  for (const folder of folders) {
    mkdirSync(join(dir, folder), { recursive: true });
    // fMP4: the init section is written once, before any playlist names it.
    if (map !== undefined) copyFileSync(map, join(dir, folder, mapName));
  }

  const segmentAt = (index) => {
    const sequence = start + index;
    const from = source[index % source.length];
    const file = segmentName(sequence);
    let offsetMs = Math.floor(index / source.length) * loopMs;
    for (let i = 0; i < index % source.length; i++) offsetMs += source[i].duration * 1000;
    return {
      sequence,
      file,
      files: folders.map((folder) => (folder ? `${folder}/${file}` : file)),
      clear: from.path,
      duration: from.duration,
      // The loop starts again: timestamps go back.
      discontinuity: index > 0 && index % source.length === 0,
      offsetMs,
    };
  };

  /** Atomically, as ffmpeg writes live playlists: a reader sees the old one or the new one. */
  const replace = (path, text) => {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  };

  const writePlaylists = () => {
    const shown = window > 0 ? written.slice(-window) : written;
    const first = shown[0];
    // Discontinuities that have left the window still count (RFC 8216 §4.3.3.3).
    const discontinuities = written
      .slice(0, written.length - shown.length)
      .filter((s) => s.discontinuity).length;
    for (const folder of folders) {
      const lines = [
        "#EXTM3U",
        `#EXT-X-VERSION:${map === undefined ? 3 : 7}`,
        `#EXT-X-TARGETDURATION:${targetDuration}`,
        `#EXT-X-MEDIA-SEQUENCE:${first ? first.sequence : start}`,
        ...(discontinuities > 0 ? [`#EXT-X-DISCONTINUITY-SEQUENCE:${discontinuities}`] : []),
        ...(map === undefined ? [] : [`#EXT-X-MAP:URI="${mapName}"`]),
      ];
      for (const segment of shown) {
        if (segment.discontinuity) lines.push("#EXT-X-DISCONTINUITY");
        if (pdtStart !== undefined) {
          lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(pdtStart + segment.offsetMs).toISOString()}`);
        }
        lines.push(`#EXTINF:${segment.duration.toFixed(6)},`, segment.file);
      }
      if (ended) lines.push("#EXT-X-ENDLIST");
      replace(join(dir, folder, mediaName), `${lines.join("\n")}\n`);
    }
    if (variants > 0) {
      const master = ["#EXTM3U", "#EXT-X-VERSION:3"];
      for (const folder of folders) {
        master.push(`#EXT-X-STREAM-INF:BANDWIDTH=290400,RESOLUTION=320x180`, `${folder}/${mediaName}`);
      }
      replace(playlistPath, `${master.join("\n")}\n`);
    }
  };

  /** The first half of a segment, as an encoder has it while it is still writing it. */
  const startWriting = (segment) => {
    const bytes = readFileSync(segment.clear);
    for (const file of segment.files) writeFileSync(join(dir, file), bytes.subarray(0, bytes.length >> 1));
  };

  const encoder = {
    playlistPath,
    mediaPlaylists: folders.map((folder) => (folder ? `${folder}/${mediaName}` : mediaName)),
    segments: written,
    get ended() {
      return ended;
    },
    segmentAt,
    async next() {
      if (ended || written.length >= count) return undefined;
      const segment = segmentAt(written.length);
      for (const file of segment.files) copyFileSync(segment.clear, join(dir, file));
      written.push(segment);
      writePlaylists();
      if (options.deleteOld && window > 0 && written.length > window) {
        const gone = written[written.length - window - 1];
        for (const file of gone.files) rmSync(join(dir, file), { force: true });
      }
      if (partial && written.length < count) startWriting(segmentAt(written.length));
      return segment;
    },
    async end() {
      if (ended) return;
      ended = true;
      writePlaylists();
    },
    async run(runOptions = {}) {
      const { signal } = runOptions;
      while (!signal?.aborted) {
        const segment = await encoder.next();
        if (!segment) break;
        const ms = options.segmentIntervalMs ?? segment.duration * 1000;
        await new Promise((resolve) => {
          const timer = setTimeout(done, ms);
          function done() {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            resolve(undefined);
          }
          signal?.addEventListener("abort", done, { once: true });
        });
      }
      if (!signal?.aborted && (options.endList ?? true)) await encoder.end();
    },
  };
  return encoder;
}
