// ffmpeg as the reference client: clear HLS made by ffmpeg's own hls muxer (from the committed
// sample), packaged with key URIs on a real key server, then read back by ffmpeg over HTTP. The
// decoded frames and audio (framemd5) must equal those of the clear stream. Needs Debian's ffmpeg
// (scripts/setup-system.sh installs it; FFMPEG_PATH names another).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, normalize, sep } from "node:path";
import type { AuditRecord } from "@blindcast/keys";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { type RunningKeyServer, startKeyServer } from "@blindcast/keys/node";
import { type PackageStreamOptions, packageHls } from "@blindcast/packager";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const FFMPEG = process.env.FFMPEG_PATH ?? "ffmpeg";
const SAMPLE = new URL("../../../demo/sample/", import.meta.url).pathname;
const masterKey = new Uint8Array(32).map((_, i) => 0x40 + i);
const salt = new Uint8Array(16).map((_, i) => 0x90 + i);
const TOKEN = "ffmpeg-test-token";
const FFMPEG_TIMEOUT_MS = 30_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ffmpeg with a deadline; keeps stdout (framemd5 text, small) and the end of stderr. */
function ffmpeg(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(FFMPEG, ["-hide_banner", "-nostdin", "-v", "error", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      timeout: FFMPEG_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < 16 * 1024 * 1024) stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-8192);
    });
    child.on("error", (error) =>
      reject(
        new Error(`cannot run ${FFMPEG} (${error.message}); run scripts/setup-system.sh or set FFMPEG_PATH`),
      ),
    );
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function make(args: string[]): Promise<void> {
  const run = await ffmpeg(args);
  if (run.code !== 0) throw new Error(`ffmpeg ${args.join(" ")} failed (${run.code}): ${run.stderr}`);
}

/** A static file server for one folder, on loopback, as a CDN would serve the packaged stream. */
async function serveFolder(root: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = normalize(join(root, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)));
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (!path.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    readFile(path).then(
      (body) => res.writeHead(200, { "content-length": body.length }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** framemd5 of every stream ffmpeg finds: decoded video frames and audio, with timestamps. */
async function framemd5(url: string, headers: string[] = []): Promise<Run> {
  const headerArgs = headers.length > 0 ? ["-headers", headers.map((h) => `${h}\r\n`).join("")] : [];
  return ffmpeg([...headerArgs, "-allowed_extensions", "ALL", "-i", url, "-map", "0", "-f", "framemd5", "-"]);
}

const frameLines = (text: string) => text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));

let work: string;
let files: { url: string; server: Server };
let keys: RunningKeyServer;
const audit: AuditRecord[] = [];

const SPLIT_RENDITIONS = "[0:v]split=2[hi][lo];[lo]scale=160:90[lo2]";
/** ffmpeg's hls muxer options: 2 s VOD segments of the given type, files named by `segments`. */
const hls = (segments: string, type: "mpegts" | "fmp4") => [
  ...(type === "fmp4" ? ["-bsf:a", "aac_adtstoasc"] : []),
  ...["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", type],
  ...(type === "fmp4" ? ["-hls_fmp4_init_filename", "init.mp4"] : []),
  ...["-hls_segment_filename", join(work, "clear", segments)],
];
/** Two video renditions (320x180, 160x90) and the audio as a separate group, 4 s. */
const renditions = (dir: string, type: "mpegts" | "fmp4") => [
  ...["-i", join(SAMPLE, "index.m3u8"), "-t", "4", "-filter_complex", SPLIT_RENDITIONS],
  ...["-map", "[hi]", "-map", "[lo2]", "-map", "0:a"],
  ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"],
  ...["-b:v:0", "200k", "-b:v:1", "80k", "-c:a", "copy"],
  ...hls(`${dir}/v%v/seg%d.${type === "fmp4" ? "m4s" : "ts"}`, type),
  ...["-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud"],
  join(work, "clear", dir, "v%v/index.m3u8"),
];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "blindcast-ffmpeg-"));
  for (const dir of ["ts", "fmp4", "part2", "mv-ts", "mv-fmp4"])
    mkdirSync(join(work, "clear", dir), { recursive: true });
  files = await serveFolder(work);
  keys = await startKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    port: 0,
    healthChecks: false,
    audit: (record) => audit.push(record),
    authenticate: (event) =>
      event.headers?.authorization === `Bearer ${TOKEN}`
        ? { ok: true }
        : { ok: false, status: 401, reason: "missing or wrong token" },
  });
  const copy = ["-i", join(SAMPLE, "index.m3u8"), "-map", "0", "-c", "copy"];
  await make([...copy, "-t", "6", ...hls("ts/seg%d.ts", "mpegts"), join(work, "clear/ts/index.m3u8")]);
  await make([...copy, "-t", "6", ...hls("fmp4/seg%d.m4s", "fmp4"), join(work, "clear/fmp4/index.m3u8")]);
  await make([
    "-ss",
    "8",
    ...copy,
    "-t",
    "4",
    ...hls("part2/seg%d.m4s", "fmp4"),
    join(work, "clear/part2/index.m3u8"),
  ]);
  await make(renditions("mv-ts", "mpegts"));
  await make(renditions("mv-fmp4", "fmp4"));
}, 60_000);

afterAll(async () => {
  await keys?.close();
  files?.server.close();
  files?.server.closeAllConnections();
  if (work) rmSync(work, { recursive: true, force: true });
});

const bearer = `Authorization: Bearer ${TOKEN}`;

async function packageCase(name: string, input: string, extra: Partial<PackageStreamOptions> = {}) {
  return packageHls({
    input: join(work, "clear", input),
    output: join(work, "packed", name),
    contentId: `ffmpeg-${name}`,
    masterKey,
    salt,
    segmentsPerEpoch: 1,
    keyUriBase: keys.keysUrl,
    ...extra,
  });
}

const clearRuns = new Map<string, Promise<Run>>();
/** The clear stream's framemd5, read once per playlist. */
function clearFrames(playlist: string): Promise<Run> {
  let run = clearRuns.get(playlist);
  if (!run) {
    run = framemd5(`${files.url}/clear/${playlist}`);
    clearRuns.set(playlist, run);
  }
  return run;
}

/** Reads clear and packaged stream with ffmpeg over HTTP; their framemd5 must be equal. */
async function expectSameFrames(clear: string, packed: string, headers = [bearer]) {
  const before = await clearFrames(clear);
  expect(before.code, before.stderr).toBe(0);
  const after = await framemd5(`${files.url}/packed/${packed}`, headers);
  expect(after.code, after.stderr).toBe(0);
  expect(after.stderr).toBe("");
  expect(frameLines(before.stdout).length).toBeGreaterThan(50);
  expect(after.stdout).toBe(before.stdout);
  return before.stdout;
}

const keyRequests = (contentId: string) =>
  audit.filter((r) => r.route === "epoch_key" && r.contentId === contentId && r.status === 200);

// Each case runs ffmpeg two or three times: seconds each on a loaded 2-core machine.
describe("ffmpeg decrypts the packaged stream to the clear stream's frames", { timeout: 45_000 }, () => {
  it("MPEG-TS, fetching every epoch's key from the key server with its token", async () => {
    const result = await packageCase("ts", "ts/index.m3u8");
    expect(result.keyUris).toEqual([0, 1, 2, 3].map((e) => `${keys.keysUrl}/ffmpeg-ts/${e}`));
    const md5 = await expectSameFrames("ts/index.m3u8", "ts/index.m3u8");
    // Video and audio both decoded (stream 0 and 1 in framemd5's lines).
    expect(new Set(frameLines(md5).map((l) => l.split(",")[0]))).toEqual(new Set(["0", "1"]));
    expect(new Set(keyRequests("ffmpeg-ts").map((r) => r.epoch))).toEqual(new Set([0, 1, 2, 3]));
  });

  it("and without the token gets no key and no frames (so the comparison can fail)", async () => {
    await packageCase("ts-no-token", "ts/index.m3u8");
    const clear = await clearFrames("ts/index.m3u8");
    const run = await framemd5(`${files.url}/packed/ts-no-token/index.m3u8`, []);
    expect(run.stdout).not.toBe(clear.stdout);
    expect(audit.some((r) => r.route === "epoch_key" && r.status === 401)).toBe(true);
  });

  it("fMP4, init section clear", async () => {
    await packageCase("fmp4", "fmp4/index.m3u8");
    expect(
      readFileSync(join(work, "packed/fmp4/init.mp4")).equals(
        readFileSync(join(work, "clear/fmp4/init.mp4")),
      ),
    ).toBe(true);
    await expectSameFrames("fmp4/index.m3u8", "fmp4/index.m3u8");
  });

  it("a multivariant MPEG-TS stream: two video renditions and a separate audio group", async () => {
    const result = await packageCase("mv-ts", "mv-ts/master.m3u8");
    expect(result.mediaPlaylists.sort()).toEqual(["v0/index.m3u8", "v1/index.m3u8", "v2/index.m3u8"]);
    const md5 = await expectSameFrames("mv-ts/master.m3u8", "mv-ts/master.m3u8");
    expect(new Set(frameLines(md5).map((l) => l.split(",")[0])).size).toBe(3);
  });

  it("a multivariant fMP4 stream with a separate audio group", async () => {
    await packageCase("mv-fmp4", "mv-fmp4/master.m3u8");
    const md5 = await expectSameFrames("mv-fmp4/master.m3u8", "mv-fmp4/master.m3u8");
    expect(new Set(frameLines(md5).map((l) => l.split(",")[0])).size).toBe(3);
  });

  it("PROGRAM-DATE-TIME, a discontinuity and a second EXT-X-MAP, without EXT-X-VERSION", async () => {
    const part = (dir: string) =>
      readFileSync(join(work, "clear", dir, "index.m3u8"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("#EXTINF") || (l !== "" && !l.startsWith("#")))
        .map((l) => (l.startsWith("#") ? l : `${dir}/${l}`));
    const playlist = [
      "#EXTM3U",
      "#EXT-X-TARGETDURATION:2",
      "#EXT-X-PLAYLIST-TYPE:VOD",
      "#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00.000Z",
      '#EXT-X-MAP:URI="fmp4/init.mp4"',
      ...part("fmp4"),
      "#EXT-X-DISCONTINUITY",
      "#EXT-X-PROGRAM-DATE-TIME:2024-01-01T01:00:00.000Z",
      '#EXT-X-MAP:URI="part2/init.mp4"',
      ...part("part2"),
      "#EXT-X-ENDLIST",
      "",
    ].join("\n");
    writeFileSync(join(work, "clear/joined.m3u8"), playlist);
    await packageCase("joined", "joined.m3u8");
    const packed = readFileSync(join(work, "packed/joined/joined.m3u8"), "utf8");
    expect(packed.split("\n").slice(0, 2)).toEqual(["#EXTM3U", "#EXT-X-VERSION:6"]);
    await expectSameFrames("joined.m3u8", "joined/joined.m3u8");
  });

  it("two media playlists sharing fMP4 segments: both decrypt (each file encrypted once)", async () => {
    const dir = join(work, "clear/fmp4");
    const alt = readFileSync(join(dir, "index.m3u8"), "utf8");
    writeFileSync(join(dir, "alt.m3u8"), alt);
    writeFileSync(
      join(dir, "shared.m3u8"),
      [
        "#EXTM3U",
        '#EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS="avc1.4d400c,mp4a.40.2"',
        "index.m3u8",
        '#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS="avc1.4d400c,mp4a.40.2"',
        "alt.m3u8",
        "",
      ].join("\n"),
    );
    const result = await packageCase("shared", "fmp4/shared.m3u8");
    expect(result.segments).toBe(4);
    await expectSameFrames("fmp4/index.m3u8", "shared/index.m3u8");
    await expectSameFrames("fmp4/alt.m3u8", "shared/alt.m3u8");
  });

  it("with leases on, ffmpeg plays with the lease in X-Blindcast-Lease", async () => {
    const leased = await startKeyServer({
      masterKey,
      salt,
      corsOrigins: "*",
      port: 0,
      healthChecks: false,
      audit: false,
      leaseStore: createMemoryLeaseStore(),
      authenticate: (event) =>
        event.headers?.authorization === `Bearer ${TOKEN}`
          ? { ok: true, viewerId: "viewer-1" }
          : { ok: false, status: 401, reason: "missing or wrong token" },
    });
    try {
      await packageCase("leased", "ts/index.m3u8", { keyUriBase: leased.keysUrl });
      const answer = await fetch(`${leased.keysUrl}/leases`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ contentId: "ffmpeg-leased" }),
        signal: AbortSignal.timeout(5000),
      });
      expect(answer.status).toBe(201);
      const { leaseId } = (await answer.json()) as { leaseId: string };
      const clear = await clearFrames("ts/index.m3u8");
      const withoutLease = await framemd5(`${files.url}/packed/leased/index.m3u8`, [bearer]);
      expect(withoutLease.stdout).not.toBe(clear.stdout);
      await expectSameFrames("ts/index.m3u8", "leased/index.m3u8", [bearer, `X-Blindcast-Lease: ${leaseId}`]);
    } finally {
      await leased.close();
    }
  });
});
