import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve, sep } from "node:path";
import { bytesToHex, createKeyDeriver, encryptSegment, ivFromSequenceNumber } from "@blindcast/crypto";

/** A request the media server received: its path, and when (`performance.now()` in this process). */
export interface MediaRequest {
  path: string;
  at: number;
}

export interface MediaServer {
  origin: string;
  /** Every request, in order of arrival. */
  requests: MediaRequest[];
  close(): void;
}

export interface MediaAnswer {
  status: number;
  body?: Uint8Array | string;
}

/**
 * A CDN on loopback: answers GETs with `answer(path)`, with the CORS header a CDN serving another
 * origin's page sends, after `delayMs` (a CDN's round trip), and records when each request arrived.
 */
export async function startMediaServer(
  answer: (path: string) => MediaAnswer | Promise<MediaAnswer>,
  { delayMs = 0 } = {},
): Promise<MediaServer> {
  const requests: MediaRequest[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://media").pathname);
    requests.push({ path, at: performance.now() });
    req.resume();
    const type = path.endsWith(".m3u8") ? "application/vnd.apple.mpegurl" : "video/mp2t";
    setTimeout(async () => {
      const { status, body } = await Promise.resolve(answer(path)).catch(() => ({ status: 500, body: "" }));
      res.writeHead(status, {
        "access-control-allow-origin": "*",
        "cache-control": "no-store",
        "content-type": status === 200 ? type : "text/plain",
      });
      res.end(body ?? "");
    }, delayMs);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close() {
      server.close();
      server.closeAllConnections();
    },
  };
}

/** Answers with the files under `dir` (and nothing outside it). */
export function serveDirectory(dir: string): (path: string) => Promise<MediaAnswer> {
  const root = resolve(dir);
  return async (path) => {
    const file = resolve(join(root, path));
    if (!file.startsWith(root + sep)) return { status: 404 };
    return readFile(file).then(
      (body) => ({ status: 200, body }),
      () => ({ status: 404 }),
    );
  };
}

export interface LiveStreamOptions {
  /** The clear segments, in order, each `segmentSeconds` long. */
  segments: Uint8Array[];
  segmentSeconds: number;
  contentId: string;
  masterKey: Uint8Array;
  salt: Uint8Array;
  /** The media sequence number of the first segment. */
  firstSequence: number;
  segmentsPerEpoch: number;
  /**
   * Segments published when the stream starts, at its first request (so that a slow page load
   * does not eat into the stream); then one more every `segmentSeconds`.
   */
  initialSegments: number;
  /** Segments the playlist names at most (the sliding window). */
  windowSegments: number;
}

export interface LiveStream {
  /** Answers `/live.m3u8` and `/seg-{sequence}.ts`, as published at the time of the request. */
  answer(path: string): Promise<MediaAnswer>;
  epochOf(sequence: number): number;
  /** The media sequence number of the newest segment published. */
  newestSequence(): number;
  /** The media sequence number of a segment's path, if it is one. */
  sequenceOf(path: string): number | undefined;
}

/**
 * A live stream as an encoder and a live packager write it, one segment every `segmentSeconds`
 * of wall-clock time: a sliding-window media playlist without ENDLIST whose
 * EXT-X-MEDIA-SEQUENCE advances, each segment AES-128 encrypted with the key of its epoch
 * (`floor(sequence / segmentsPerEpoch)`, derived as the key server does) and named by an explicit
 * IV, as `blindcast-pack` writes. Once every segment is published, ENDLIST ends the stream.
 */
export function createLiveStream(options: LiveStreamOptions): LiveStream {
  const { segments, segmentSeconds, contentId, firstSequence, segmentsPerEpoch } = options;
  const deriver = createKeyDeriver(options.masterKey, options.salt);
  let started: number | undefined;
  const encrypted = new Map<number, Promise<Uint8Array>>();
  const epochOf = (sequence: number) => Math.floor(sequence / segmentsPerEpoch);
  const published = () => {
    started ??= performance.now();
    const elapsed = performance.now() - started;
    return Math.min(segments.length, options.initialSegments + Math.floor(elapsed / (segmentSeconds * 1000)));
  };

  const playlist = () => {
    const count = published();
    const first = Math.max(0, count - options.windowSegments);
    const lines = [
      "#EXTM3U",
      "#EXT-X-VERSION:3",
      `#EXT-X-TARGETDURATION:${Math.ceil(segmentSeconds)}`,
      `#EXT-X-MEDIA-SEQUENCE:${firstSequence + first}`,
    ];
    for (let i = first; i < count; i++) {
      const sequence = firstSequence + i;
      const iv = bytesToHex(ivFromSequenceNumber(sequence));
      lines.push(
        `#EXT-X-KEY:METHOD=AES-128,URI="blindcast://keys/${contentId}/${epochOf(sequence)}",IV=0x${iv}`,
        `#EXTINF:${segmentSeconds.toFixed(6)},`,
        `seg-${sequence}.ts`,
      );
    }
    if (count === segments.length) lines.push("#EXT-X-ENDLIST");
    return `${lines.join("\n")}\n`;
  };

  const segment = (sequence: number) => {
    let body = encrypted.get(sequence);
    if (!body) {
      const clear = segments[sequence - firstSequence] as Uint8Array;
      body = deriver
        .epochKey(contentId, epochOf(sequence))
        .then((key) => encryptSegment(key, ivFromSequenceNumber(sequence), clear));
      encrypted.set(sequence, body);
    }
    return body;
  };

  const sequenceOf = (path: string) => {
    const match = /^\/seg-(\d+)\.ts$/.exec(path);
    return match ? Number(match[1]) : undefined;
  };

  return {
    epochOf,
    sequenceOf,
    newestSequence: () => firstSequence + published() - 1,
    async answer(path) {
      if (path === "/live.m3u8") return { status: 200, body: playlist() };
      const sequence = sequenceOf(path);
      const index = sequence === undefined ? -1 : sequence - firstSequence;
      if (sequence === undefined || index < 0 || index >= published()) return { status: 404 };
      return { status: 200, body: await segment(sequence) };
    },
  };
}
