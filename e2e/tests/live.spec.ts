import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hexToBytes } from "@blindcast/crypto";
import { DEMO_MASTER_KEY, DEMO_SALT } from "@blindcast/demo/demo-values.mjs";
import { expect, keysAnswered, keysInHand, playback, playLiveThroughRotations, test } from "./fixtures.js";
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

    // One lease, created with the key of the epoch playback starts in first.
    const creations = keys.records.filter((r) => r.route === "lease_create");
    expect(creations).toHaveLength(1);
    expect(creations[0]).toMatchObject({ status: 201 });
    expect(creations[0]?.keys?.[0]).toBe(startEpoch);

    // Every later epoch's key was in hand before its first segment was requested: fetched ahead,
    // at least ten rotations of them. (The starting epoch's key comes with the lease, which
    // leaves when the first playlist is read, as hls.js may request the first segment at once.)
    const inHand = keysInHand(keys.records);
    const rotations = [...firstRequested].filter(([epoch]) => epoch !== startEpoch);
    expect(rotations.length).toBeGreaterThanOrEqual(10);
    const late = rotations.filter(([epoch, at]) => !((inHand.get(epoch) ?? Infinity) < at)).map(([e]) => e);
    expect(late, "epochs whose key was not in hand before their first segment was requested").toEqual([]);
    // Each key fetched once.
    const fetched = keys.records.flatMap(keysAnswered);
    expect(new Set(fetched).size).toBe(fetched.length);

    // No rebuffering once playing, no hls.js stall, no error; at the live edge all along.
    const firstPlaying = state.events.findIndex((e) => e.name === "playing");
    expect(state.events.slice(firstPlaying).filter((e) => e.name === "waiting")).toEqual([]);
    expect(stalls).toEqual([]);
    expect(state.errors).toEqual([]);
    // It keeps up with the stream: segments are requested as they are published (a playlist
    // refresh a target duration apart may not have seen the newest one or two yet).
    expect(lastRequested).toBeGreaterThanOrEqual(newest - 2);

    // The lease lives on as long as the viewer watches: renewed, never lost.
    const renewals = keys.records.filter((r) => r.route === "lease_renew");
    expect(renewals.length).toBeGreaterThanOrEqual(2);
    expect(renewals.every((r) => r.status === 200)).toBe(true);
    const after = await playback(page);
    expect(after.events.filter((e) => e.name === "leaserenewed")).toHaveLength(renewals.length);
    expect(after.events.some((e) => e.name === "leaselost")).toBe(false);
    expect(after.errors).toEqual([]);
  } finally {
    media.close();
  }
});
