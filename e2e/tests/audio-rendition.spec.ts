import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hexToBytes } from "@blindcast/crypto";
import { DEMO_MASTER_KEY, DEMO_SALT } from "@blindcast/demo/demo-values.mjs";
import { packageHls } from "@blindcast/packager";
import { expect, keysInHand, openDemo, playback, test } from "./fixtures.js";
import { serveDirectory, startMediaServer } from "./media-server.js";

// The sample's video (8 segments of 2 s) with its audio as a separate rendition cut into 1 s
// segments (16), packaged with a new epoch every 2 segments: the video has epochs 0-3, the audio
// 0-7, so epochs 4-7 exist only in the audio playlist.
const SAMPLE = fileURLToPath(new URL("../../demo/sample/", import.meta.url));
const AUDIO = fileURLToPath(new URL("../fixtures/audio-1s/", import.meta.url));
const CONTENT_ID = "audio-groups";
const MASTER = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="tone",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=290400,RESOLUTION=320x180,CODECS="avc1.4d400c,mp4a.40.2",AUDIO="aud"
video/index.m3u8
`;

test("a separate audio rendition: its own epochs' keys are prefetched, each in hand before its first segment is requested", async ({
  page,
  startKeys,
}) => {
  const dir = await mkdtemp(join(tmpdir(), "blindcast-audio-"));
  const media = await (async () => {
    await cp(SAMPLE, join(dir, "in", "video"), { recursive: true, filter: (f) => !f.endsWith(".sh") });
    await cp(AUDIO, join(dir, "in", "audio"), { recursive: true });
    await writeFile(join(dir, "in", "master.m3u8"), MASTER);
    await packageHls({
      input: join(dir, "in", "master.m3u8"),
      output: join(dir, "out"),
      contentId: CONTENT_ID,
      masterKey: hexToBytes(DEMO_MASTER_KEY),
      salt: hexToBytes(DEMO_SALT),
      segmentsPerEpoch: 2,
    });
    // A CDN's round trip on every answer: hls.js loads a segment at a time, as over a network.
    return startMediaServer(serveDirectory(join(dir, "out")), { delayMs: 50 });
  })();
  try {
    // Each audio segment's epoch, as the packaged audio playlist names it.
    const audioEpochs = new Map<string, number>();
    let epoch = -1;
    for (const line of (await readFile(join(dir, "out", "audio", "index.m3u8"), "utf8")).split("\n")) {
      const key = /URI="blindcast:\/\/keys\/[^/]+\/(\d+)"/.exec(line);
      if (key) epoch = Number(key[1]);
      else if (line.endsWith(".ts")) audioEpochs.set(`/audio/${line}`, epoch);
    }
    expect(new Set(audioEpochs.values())).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7]));

    const keys = await startKeys();
    await openDemo(page, keys, { src: `${media.origin}/master.m3u8`, contentId: CONTENT_ID });
    // hls.js buffers ahead 30 s: the whole 16 s of audio is requested early on.
    await expect
      .poll(() => media.requests.filter((r) => audioEpochs.has(r.path)).length, { timeout: 30_000 })
      .toBeGreaterThanOrEqual(audioEpochs.size);
    await page.waitForFunction(() => window.__blindcast.events.some((e) => e.name === "playing"));

    const firstRequested = new Map<number, number>();
    for (const r of media.requests) {
      const epochOfSegment = audioEpochs.get(r.path);
      if (epochOfSegment !== undefined && !firstRequested.has(epochOfSegment)) {
        firstRequested.set(epochOfSegment, r.at);
      }
    }
    const inHand = keysInHand(keys.records);
    const late = [...firstRequested].filter(([e, at]) => !((inHand.get(e) ?? Infinity) < at)).map(([e]) => e);
    expect(late, "epochs whose key was not in hand before their first audio segment was requested").toEqual(
      [],
    );

    const state = await playback(page);
    expect(state.errors).toEqual([]);
    const loaded = state.events.filter((e) => e.name === "keyloaded").map((e) => e.detail);
    // Every key loaded once, none on hls.js' demand.
    expect(loaded.map((d) => d.epoch).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(loaded.filter((d) => !d.prefetch)).toEqual([]);
  } finally {
    media.close();
    await rm(dir, { recursive: true, force: true });
  }
});
