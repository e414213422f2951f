// 5. Player startup: time to first frame in headless Chromium, every request behind a fixed
//    100 ms round trip (a local delay proxy), for Blindcast (encrypted, leases on) against the
//    clear sample on plain hls.js, and against plain hls.js fetching the same keys by hand.
// 6. Key rotation: a 128 s stream with a new key every segment (64 epochs), played at 4x under
//    the same delay; rebuffering events counted.
// 6b. Seeking to a key not in hand: on that stream, from 4 s to 90.5 s (an epoch nobody
//    prefetched), time from the seek to its first frame, against the same stream in the clear.
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { startKeyServer } from "@blindcast/keys/node";
import { packageHls } from "@blindcast/packager";
import { chromium } from "@playwright/test";
import { SignJWT } from "jose";
import { build, preview } from "vite";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../scripts/chromium.mjs";
import { startDelayProxy } from "./lib/delay-proxy.mjs";
import { DEMO_JWT_SECRET, masterKey, quiet, salt } from "./lib/fixtures.mjs";
import { median, round } from "./lib/stats.mjs";

const RTT_MS = 100;
const RUNS = 7;
const SEEK_FROM = 4;
const SEEK_TO = 90.5;
const ROOT = fileURLToPath(new URL("./player/", import.meta.url));
const SAMPLE = fileURLToPath(new URL("../demo/sample/", import.meta.url));
const MEDIA = join(ROOT, "public/media");

/** Clear sample, encrypted sample, and a long stream with one epoch per segment. */
async function prepareMedia(keysProxyUrl) {
  rmSync(MEDIA, { recursive: true, force: true });
  cpSync(SAMPLE, join(MEDIA, "clear"), { recursive: true });
  await packageHls({
    input: join(SAMPLE, "master.m3u8"),
    output: join(MEDIA, "enc"),
    contentId: "bench",
    masterKey,
    salt,
    segmentsPerEpoch: 2,
  });
  // The same encrypted stream for plain hls.js: key URIs point at the key server directly.
  cpSync(join(MEDIA, "enc"), join(MEDIA, "hlsjs"), { recursive: true });
  const index = readFileSync(join(MEDIA, "enc/index.m3u8"), "utf8");
  writeFileSync(join(MEDIA, "hlsjs/index.m3u8"), index.replaceAll("blindcast://keys/", `${keysProxyUrl}/`));

  // 64 segments of 2 s: the sample's 8, eight times, with a discontinuity at each repeat.
  const long = mkdtempSync(join(tmpdir(), "blindcast-long-"));
  const lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"];
  for (let i = 0; i < 64; i++) {
    if (i > 0 && i % 8 === 0) lines.push("#EXT-X-DISCONTINUITY");
    const name = `seg${String(i).padStart(3, "0")}.ts`;
    copyFileSync(join(SAMPLE, `seg${String(i % 8).padStart(3, "0")}.ts`), join(long, name));
    lines.push("#EXTINF:2.000000,", name);
  }
  lines.push("#EXT-X-ENDLIST");
  writeFileSync(join(long, "index.m3u8"), lines.join("\n"));
  cpSync(long, join(MEDIA, "long-clear"), { recursive: true });
  await packageHls({
    input: join(long, "index.m3u8"),
    output: join(MEDIA, "long"),
    contentId: "long",
    masterKey,
    salt,
    segmentsPerEpoch: 1,
  });
  rmSync(long, { recursive: true, force: true });
}

export async function run() {
  const keyStore = createMemoryLeaseStore();
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("bench-viewer")
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(DEMO_JWT_SECRET));
  // The page's origin is the page proxy's, so the key server must allow it: start proxies first.
  let pageOrigin = "";
  const keys = await startKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    port: 0,
    authenticate: createJwtAuthenticator({ secret: DEMO_JWT_SECRET }),
    leaseStore: keyStore,
    audit: false,
    logger: quiet,
  });
  const keyRequests = [];
  const keysProxy = await startDelayProxy(`http://127.0.0.1:${keys.port}`, RTT_MS, keyRequests);
  const keysProxyUrl = `http://127.0.0.1:${keysProxy.port}/keys`;
  await prepareMedia(keysProxyUrl);
  await build({ root: ROOT, logLevel: "warn" });
  const page = await preview({ root: ROOT, logLevel: "warn", preview: { host: "127.0.0.1", port: 0 } });
  const pagePort = page.httpServer.address().port;
  const pageRequests = [];
  const pageProxy = await startDelayProxy(`http://127.0.0.1:${pagePort}`, RTT_MS, pageRequests);
  pageOrigin = `http://localhost:${pageProxy.port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });

  const open = async (query, until, timeout = 30_000) => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    try {
      await tab.goto(`${pageOrigin}/?${new URLSearchParams(query)}`);
      await tab.waitForFunction(until, undefined, { timeout });
      const state = await tab.evaluate(() => window.__bench);
      if (state.error) throw new Error(`${query.mode}: ${state.error}`);
      return state;
    } finally {
      await context.close();
    }
  };
  const common = { keyServerUrl: keysProxyUrl, contentId: "bench", token };
  const modes = {
    blindcast: { mode: "blindcast", src: "/media/enc/master.m3u8", ...common },
    clear: { mode: "clear", src: "/media/clear/master.m3u8" },
    hlsjs: { mode: "hlsjs", src: "/media/hlsjs/master.m3u8", ...common },
  };
  try {
    const ttff = { blindcast: [], clear: [], hlsjs: [] };
    await open(modes.clear, () => window.__bench.ttff !== undefined); // warm-up
    for (let i = 0; i < RUNS; i++) {
      for (const [name, query] of Object.entries(modes)) {
        ttff[name].push((await open(query, () => window.__bench.ttff !== undefined)).ttff);
      }
    }
    const m = Object.fromEntries(Object.entries(ttff).map(([k, v]) => [k, median(v)]));
    const extraRtts = (m.blindcast - m.clear) / RTT_MS;

    const rotation = await open(
      { mode: "blindcast", src: "/media/long/index.m3u8", ...common, contentId: "long", rate: "4" },
      () => window.__bench.ended === true,
      120_000,
    );
    // Seeks, clear and encrypted alternately; the key server's requests between seek and frame.
    const seekModes = {
      clear: { mode: "clear", src: "/media/long-clear/index.m3u8" },
      blindcast: { mode: "blindcast", src: "/media/long/index.m3u8", ...common, contentId: "long" },
    };
    const seekMs = { clear: [], blindcast: [] };
    const seekKeyRequests = [];
    const seekTimeline = { clear: [], blindcast: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const [name, query] of Object.entries(seekModes)) {
        const { seek } = await open(
          { ...query, seekFrom: String(SEEK_FROM), seekTo: String(SEEK_TO) },
          () => window.__bench.seek?.ms !== undefined,
        );
        seekMs[name].push(seek.ms);
        // What reached the proxies between seek and frame, in ms after the seek.
        const during = (log) => log.filter((r) => r.at >= seek.startedAt && r.at <= seek.frameAt);
        const text = (r) => `+${Math.round(r.at - seek.startedAt)} ms ${r.method} ${r.url}`;
        const keysAsked = during(keyRequests);
        if (name === "blindcast") seekKeyRequests.push(keysAsked.map((r) => r.method));
        seekTimeline[name].push(
          [...keysAsked, ...during(pageRequests)].sort((a, b) => a.at - b.at).map(text),
        );
      }
    }
    const seekMedian = { clear: median(seekMs.clear), blindcast: median(seekMs.blindcast) };
    const seekExtraRtts = (seekMedian.blindcast - seekMedian.clear) / RTT_MS;
    const count = (method) =>
      median(seekKeyRequests.map((methods) => methods.filter((m) => m === method).length));

    return [
      {
        id: "player-startup",
        name: `Time to first frame, ${RTT_MS} ms round trip on every request (median of ${RUNS})`,
        candidate: `${round(m.blindcast, 0)} ms Blindcast (encrypted, lease)`,
        baseline: `${round(m.clear, 0)} ms clear on plain hls.js; ${round(m.hlsjs, 0)} ms plain hls.js with keys by hand`,
        ratio: round(m.blindcast / m.clear),
        target: `≤ clear + 0.5 round trip (measured: ${round(extraRtts)} round trips more)`,
        pass: extraRtts <= 0.5,
        raw: { ttff, medians: m },
      },
      {
        id: "key-rotation",
        name: "Rebuffering at key rotations: 64 epochs (one per 2 s segment), 4x speed, 100 ms RTT",
        candidate: `${rotation.waiting.length} rebuffering events`,
        baseline: "target 0",
        ratio: rotation.waiting.length,
        target: "0 events",
        pass: rotation.waiting.length === 0,
        raw: rotation,
      },
      {
        id: "player-seek",
        name: `Seek to a key not in hand: ${SEEK_FROM} s → ${SEEK_TO} s, one epoch per 2 s segment, ${RTT_MS} ms round trip, time to the first frame there (median of ${RUNS})`,
        candidate: `${round(seekMedian.blindcast, 0)} ms Blindcast (encrypted, lease); key server between seek and frame: ${count("OPTIONS")} preflights, ${count("GET") + count("POST")} requests (median)`,
        baseline: `${round(seekMedian.clear, 0)} ms clear on plain hls.js`,
        ratio: round(seekMedian.blindcast / seekMedian.clear),
        target: `≤ clear + 0.25 round trip (measured: ${round(seekExtraRtts)} round trips more)`,
        pass: seekExtraRtts <= 0.25,
        raw: { seekMs, medians: seekMedian, timeline: seekTimeline },
      },
    ];
  } finally {
    await browser.close();
    await Promise.all([
      pageProxy.close(),
      keysProxy.close(),
      keys.close(),
      new Promise((r) => page.httpServer.close(r)),
    ]);
  }
}
