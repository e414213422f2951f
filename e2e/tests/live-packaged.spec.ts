import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEMO_MASTER_KEY, DEMO_SALT } from "@blindcast/demo/demo-values.mjs";
import { createLiveEncoder } from "../../test/support/live-encoder.mjs";
import { expect, expectSmoothLivePlayback, playLiveThroughRotations, test } from "./fixtures.js";
import { serveDirectory, startMediaServer } from "./media-server.js";

// Live through the product path: a (simulated) encoder writes a clear live HLS stream into a
// folder segment by segment, `blindcast-pack --watch` (the built CLI, as a child process) encrypts
// it into another folder as it goes, a plain static server serves that folder, and the demo page
// plays it. Same stream shape as live.spec.ts: 20 committed 1 s segments from sequence 1000, a
// sliding window of 6, one epoch per segment; 4 written before the page loads, then one a second
// from the page's first playlist request on (so that a slow page load does not eat the stream).
const SOURCE = fileURLToPath(new URL("../fixtures/live-1s/index.m3u8", import.meta.url));
const PACK = fileURLToPath(new URL("../../packages/packager/dist/cli.js", import.meta.url));
const CONTENT_ID = "live-channel";
const FIRST_SEQUENCE = 1000;

/** A segment as the output playlist names it: its media sequence number and its key's epoch. */
interface Named {
  sequence: number;
  epoch: number;
}

/** The segments an output media playlist names, by URI (epoch from the key URI before each). */
function readNamed(playlist: string, into: Map<string, Named>): void {
  let sequence = Number(/^#EXT-X-MEDIA-SEQUENCE:(\d+)/m.exec(playlist)?.[1] ?? Number.NaN);
  let epoch = Number.NaN;
  for (const raw of playlist.split("\n")) {
    const line = raw.trim();
    const key = /^#EXT-X-KEY:.*URI="blindcast:\/\/keys\/[^/]+\/(\d+)"/.exec(line);
    if (key) epoch = Number(key[1]);
    else if (line !== "" && !line.startsWith("#")) {
      into.set(`/${line}`, { sequence, epoch });
      sequence++;
    }
  }
}

test("live, packaged by blindcast-pack --watch from an encoder's output: 10 key rotations at the live edge with no stall, each key in hand before its segments are requested, the lease made with the starting epoch's key and renewed", async ({
  page,
  startKeys,
}) => {
  test.setTimeout(60_000);
  const work = mkdtempSync(join(tmpdir(), "blindcast-e2e-live-"));
  const input = join(work, "in");
  const output = join(work, "out");
  const encoder = createLiveEncoder({
    dir: input,
    source: SOURCE,
    playlist: "live.m3u8",
    startSequence: FIRST_SEQUENCE,
    window: 6,
    segmentIntervalMs: 1000,
  });
  const stopEncoder = new AbortController();
  let running: Promise<void> | undefined;
  let watcher: ChildProcess | undefined;
  let media: Awaited<ReturnType<typeof startMediaServer>> | undefined;
  // What the watcher says (one line per segment, never a key), for the failure message; bounded.
  let said = "";
  try {
    for (let i = 0; i < 4; i++) await encoder.next();
    watcher = spawn(
      process.execPath,
      [
        PACK,
        join(input, "live.m3u8"),
        output,
        "--content-id",
        CONTENT_ID,
        "--watch",
        "--segments-per-epoch",
        "1",
        "--poll-interval",
        "0.1",
      ],
      {
        env: { PATH: process.env.PATH ?? "", MASTER_KEY: DEMO_MASTER_KEY, SALT: DEMO_SALT },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    watcher.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      said = (said + chunk).slice(-8_000);
    });
    const exited = once(watcher, "exit");
    await expect
      .poll(() => existsSync(join(output, "live.m3u8")), { message: "the watcher published a playlist" })
      .toBe(true);

    const keys = await startKeys({ leaseTtlSeconds: 10 });
    // Every output playlist served, read for which segment each URI is.
    const named = new Map<string, Named>();
    const files = serveDirectory(output);
    const server = await startMediaServer(async (path) => {
      if (path === "/live.m3u8") running ??= encoder.run({ signal: stopEncoder.signal });
      const answer = await files(path);
      if (path === "/live.m3u8" && answer.body !== undefined) {
        readNamed(
          typeof answer.body === "string" ? answer.body : new TextDecoder().decode(answer.body),
          named,
        );
      }
      return answer;
    });
    media = server;

    const { stalls, state } = await playLiveThroughRotations(
      page,
      keys,
      `${server.origin}/live.m3u8`,
      CONTENT_ID,
    );
    const requests = [...server.requests];
    const published = new Map<string, Named>();
    readNamed(readFileSync(join(output, "live.m3u8"), "utf8"), published);
    const newest = Math.max(...[...published.values()].map((s) => s.sequence));
    // The watcher has not failed (it follows the encoder, or has ended with it).
    expect([null, 0], said).toContain(watcher.exitCode);
    await expect
      .poll(() => keys.records.filter((r) => r.route === "lease_renew").length, { timeout: 8_000 })
      .toBeGreaterThanOrEqual(2);

    // Each epoch's first segment request, in order; segments named by the output playlists.
    const firstRequested = new Map<number, number>();
    let lastRequested = 0;
    for (const r of requests) {
      const segment = named.get(r.path);
      if (segment === undefined) continue;
      // One epoch per segment, numbered from the media sequence.
      expect(segment.epoch).toBe(segment.sequence);
      lastRequested = Math.max(lastRequested, segment.sequence);
      if (!firstRequested.has(segment.epoch)) firstRequested.set(segment.epoch, r.at);
    }
    const [startEpoch] = firstRequested.keys();
    expect(startEpoch).toBeGreaterThan(FIRST_SEQUENCE);

    await expectSmoothLivePlayback(page, { keys, state, stalls, firstRequested, lastRequested, newest });

    // Stopped (SIGTERM) if the stream is still live, the watcher ends cleanly.
    stopEncoder.abort();
    await running;
    if (watcher.exitCode === null) watcher.kill("SIGTERM");
    const [code] = await Promise.race([
      exited,
      new Promise<[null]>((done) => setTimeout(() => done([null]), 5_000)),
    ]);
    expect(code, said).toBe(0);
  } finally {
    stopEncoder.abort();
    await running?.catch(() => {});
    // Only the child this test started, and only if it is still running.
    if (watcher && watcher.exitCode === null && watcher.signalCode === null) watcher.kill("SIGKILL");
    media?.close();
    rmSync(work, { recursive: true, force: true });
  }
});
