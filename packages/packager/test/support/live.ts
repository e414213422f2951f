// Shared by the live packaging tests: the contract keys, the playlists' key lines, waiting with
// a deadline, and a concurrent reader of the output.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { decryptSegment, deriveContentKey, deriveEpochKey, hexToBytes } from "@blindcast/crypto";
import type { WatchEvent } from "@blindcast/packager";
import { expect } from "vitest";

export const masterKey = new Uint8Array(32).map((_, i) => i);
export const salt = new Uint8Array(16).map((_, i) => 0xa0 + i);

/**
 * What the live tests package by default: `input`'s index.m3u8 into `output` as "live-1", two
 * segments an epoch, with the contract's keys; each test adds or overrides the rest.
 */
export function liveStream(input: string, output: string) {
  return {
    input: join(input, "index.m3u8"),
    output,
    contentId: "live-1",
    masterKey,
    salt,
    segmentsPerEpoch: 2,
  };
}

/** A segment as a published media playlist names it. */
export interface Named {
  uri: string;
  sequence: number;
  keyUri: string;
  iv: string;
  /** Its lines: the key line, the tags before it, EXTINF and the URI. */
  lines: string[];
}

/** The segments of a packaged media playlist, with their sequence numbers and key lines. */
export function named(playlist: string): Named[] {
  const out: Named[] = [];
  const first = Number(/^#EXT-X-MEDIA-SEQUENCE:(\d+)$/m.exec(playlist)?.[1] ?? 0);
  let lines: string[] = [];
  let key: { uri: string; iv: string } | undefined;
  for (const line of playlist.split("\n")) {
    const match = /^#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)",IV=0x([0-9a-f]{32})$/.exec(line);
    if (match) key = { uri: match[1] ?? "", iv: match[2] ?? "" };
    if (/^#EXT-X-(KEY|DISCONTINUITY$|PROGRAM-DATE-TIME)|^#EXTINF/.test(line)) lines.push(line);
    else if (line && !line.startsWith("#")) {
      if (!key) throw new Error(`segment ${line} has no key`);
      out.push({
        uri: line,
        sequence: first + out.length,
        keyUri: key.uri,
        iv: key.iv,
        lines: [...lines, line],
      });
      lines = [];
    }
  }
  return out;
}

/** The key a blindcast:// (or key server) URI names, derived as the key server derives it. */
export function keyOf(keyUri: string): Promise<Uint8Array> {
  const [contentId, epoch] = keyUri.replace(/^.*\/keys\//, "").split("/");
  return epoch === undefined
    ? deriveContentKey(masterKey, salt, contentId ?? "")
    : deriveEpochKey(masterKey, salt, contentId ?? "", Number(epoch));
}

/** Decrypts `file` with the key and IV the playlist names for it and compares with `clear`. */
export async function expectDecrypts(file: string, segment: Named, clear: string): Promise<void> {
  const decrypted = await decryptSegment(
    await keyOf(segment.keyUri),
    hexToBytes(segment.iv),
    readFileSync(file),
  );
  expect(Buffer.from(decrypted).equals(readFileSync(clear)), `${file} decrypts to ${clear}`).toBe(true);
}

/** Waits until `check` holds, polling every 10 ms; fails the test after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Records a watch's events, and the text of each playlist as published (read at that moment). */
export function recorder(output: string) {
  const events: WatchEvent[] = [];
  const published: string[] = [];
  return {
    events,
    /** Every text a playlist was published with, in order. */
    published,
    onEvent(event: WatchEvent) {
      events.push(event);
      if (event.type === "published") published.push(readFileSync(join(output, event.playlist), "utf8"));
    },
    /** The playlist names `sequence` (or a later segment). */
    reached(sequence: number, playlist?: string) {
      return events.some(
        (e) =>
          e.type === "published" &&
          (playlist === undefined || e.playlist === playlist) &&
          e.mediaSequence + e.segments - 1 >= sequence,
      );
    },
    count(type: WatchEvent["type"]) {
      return events.filter((e) => e.type === type).length;
    },
  };
}

export interface ReaderReport {
  /** playlist -> every distinct text read */
  versions: Record<string, string[]>;
  violations: string[];
  reads: number;
}

/** Starts reading the output's playlists concurrently; `stop()` returns what it saw. */
export function startReader(dir: string, playlists: { name: string; media: boolean }[]) {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(new URL("./output-reader.mjs", import.meta.url), {
    workerData: { dir, playlists, flag },
  });
  const report = new Promise<ReaderReport>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  return {
    async stop(): Promise<ReaderReport> {
      Atomics.store(new Int32Array(flag), 0, 1);
      const result = await Promise.race([
        report,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("reader did not stop")), 5000)),
      ]);
      await worker.terminate();
      return result;
    },
  };
}
