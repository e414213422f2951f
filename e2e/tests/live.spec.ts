import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hexToBytes } from "@blindcast/crypto";
import { DEMO_MASTER_KEY, DEMO_SALT } from "@blindcast/demo/demo-values.mjs";
import { expect, expectSmoothLivePlayback, playLiveThroughRotations, test } from "./fixtures.js";
import { createLiveStream, startMediaServer } from "./media-server.js";

// A live stream made during the test from 20 committed 1 s segments: a sliding window of 6, one
// segment published a second from the first playlist request on (4 already there), one epoch per
// segment, numbered from the media sequence. It has been running a while (sequence 1000 on), so
// playback starts far from epoch 0.
const LIVE = fileURLToPath(new URL("../fixtures/live-1s/", import.meta.url));
const CONTENT_ID = "live-channel";

test("live: 10 key rotations at the live edge with no stall, each key in hand before its segments are requested, the lease made with the starting epoch's key and renewed", async ({
  page,
  startKeys,
}) => {
  test.setTimeout(45_000);
  const segments = readdirSync(LIVE)
    .filter((name) => name.endsWith(".ts"))
    .sort()
    .map((name) => new Uint8Array(readFileSync(`${LIVE}${name}`)));
  const keys = await startKeys({ leaseTtlSeconds: 10 });
  const live = createLiveStream({
    segments,
    segmentSeconds: 1,
    contentId: CONTENT_ID,
    masterKey: hexToBytes(DEMO_MASTER_KEY),
    salt: hexToBytes(DEMO_SALT),
    firstSequence: 1000,
    segmentsPerEpoch: 1,
    initialSegments: 4,
    windowSegments: 6,
  });
  const media = await startMediaServer(live.answer);
  try {
    const { stalls, state } = await playLiveThroughRotations(
      page,
      keys,
      `${media.origin}/live.m3u8`,
      CONTENT_ID,
    );
    const requests = [...media.requests];
    const newest = live.newestSequence();
    // Renewed again and again (every 5 s with a 10 s TTL) while it plays on.
    await expect
      .poll(() => keys.records.filter((r) => r.route === "lease_renew").length, { timeout: 8_000 })
      .toBeGreaterThanOrEqual(2);

    // Each epoch's first segment request, in order.
    const firstRequested = new Map<number, number>();
    let lastRequested = 0;
    for (const r of requests) {
      const sequence = live.sequenceOf(r.path);
      if (sequence === undefined) continue;
      lastRequested = Math.max(lastRequested, sequence);
      const epoch = live.epochOf(sequence);
      if (!firstRequested.has(epoch)) firstRequested.set(epoch, r.at);
    }
    const [startEpoch] = firstRequested.keys();
    expect(startEpoch).toBeGreaterThan(1000);

    await expectSmoothLivePlayback(page, { keys, state, stalls, firstRequested, lastRequested, newest });
  } finally {
    media.close();
  }
});
