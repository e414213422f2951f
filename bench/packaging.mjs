// 8. Packaging throughput: the blindcast-pack CLI encrypting a long clear stream (the demo
// sample's segments repeated to BENCH_PACKAGING_MB, default 1024 MB), against the floors of the
// same job on the same bytes in the same run: `openssl enc -aes-128-cbc` over the segments
// concatenated into one file, and node's raw crypto.createCipheriv('aes-128-cbc') reading,
// encrypting and writing each segment file. Also the CLI's peak RSS (VmHWM) at a quarter of the
// size and at the full size: packaging must not hold the stream in memory.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEMO_MASTER_KEY, DEMO_SALT } from "./lib/fixtures.mjs";
import { median, round } from "./lib/stats.mjs";

const MB = 1024 * 1024;
const SIZE_MB = Number(process.env.BENCH_PACKAGING_MB ?? 1024);
const SEGMENT_MB = Number(process.env.BENCH_PACKAGING_SEGMENT_MB ?? 3.5);
const RUNS = Number(process.env.BENCH_PACKAGING_RUNS ?? 2);
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const SAMPLE = here("../demo/sample");
const CLI = here("../packages/packager/dist/cli.js");
const TIMEOUT_MS = 10 * 60 * 1000;
// In memory (tmpfs) by default, so that what is measured is the packager's work, not how fast
// this machine's shared disk happens to be that minute; BENCH_PACKAGING_DIR to measure a disk.
const WORK_DIR = process.env.BENCH_PACKAGING_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());

/**
 * Runs a command to completion (bounded by TIMEOUT_MS) under /usr/bin/time; resolves to its wall
 * time, CPU time (user + system) and peak RSS.
 */
async function timed(command, args, env) {
  const report = join(WORK_DIR, `blindcast-bench-time-${process.pid}`);
  await new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-o", report, "-f", "%e %U %S %M", command, ...args], {
      // Without NODE_EXTRA_CA_CERTS: where it is set (as on this machine), every Node process
      // would read a CA bundle at start, which none of these jobs needs.
      env: { ...process.env, NODE_EXTRA_CA_CERTS: undefined, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${command} exited ${code ?? signal}: ${stderr.trim()}`));
      else resolve();
    });
  });
  const [wall, user, system, peakKb] = (await readFile(report, "utf8"))
    .trim()
    .split("\n")
    .at(-1)
    .split(" ")
    .map(Number);
  await rm(report, { force: true });
  return { seconds: wall, cpu: user + system, peakMb: peakKb / 1024 };
}

/**
 * A clear VOD stream of about `mb` MB in segments of about SEGMENT_MB: the sample's 2-second
 * segments concatenated (MPEG-TS concatenates), as 6 s of 1080p at ~5 Mbit/s would be; a 2-hour
 * title is then ~1,200 segments, ~4 GB.
 */
async function buildStream(dir, mb) {
  const sample = (await readdir(SAMPLE)).filter((f) => f.endsWith(".ts")).sort();
  const pieces = await Promise.all(sample.map((f) => readFile(join(SAMPLE, f))));
  await mkdir(dir, { recursive: true });
  const names = [];
  let bytes = 0;
  let next = 0;
  while (bytes < mb * MB) {
    const parts = [];
    let size = 0;
    while (size < SEGMENT_MB * MB) {
      const piece = pieces[next++ % pieces.length];
      parts.push(piece);
      size += piece.length;
    }
    const name = `s${String(names.length).padStart(5, "0")}.ts`;
    await writeFile(join(dir, name), Buffer.concat(parts));
    names.push(name);
    bytes += size;
  }
  const playlist = [
    "#EXTM3U",
    "#EXT-X-VERSION:3",
    "#EXT-X-TARGETDURATION:6",
    "#EXT-X-MEDIA-SEQUENCE:0",
    "#EXT-X-PLAYLIST-TYPE:VOD",
    ...names.flatMap((n) => ["#EXTINF:6.000000,", n]),
    "#EXT-X-ENDLIST",
    "",
  ].join("\n");
  await writeFile(join(dir, "index.m3u8"), playlist);
  // openssl's input: the same bytes in one file.
  const all = createWriteStream(join(dir, "..", `${mb}-concat.bin`));
  for (const name of names) {
    if (!all.write(await readFile(join(dir, name)))) await new Promise((r) => all.once("drain", r));
  }
  await new Promise((r, j) => all.end((e) => (e ? j(e) : r())));
  return { names, bytes };
}

function packager(dir, out) {
  return timed(
    process.execPath,
    [CLI, join(dir, "index.m3u8"), out, "--content-id", "movie-42", "--segments-per-epoch", "10"],
    {
      MASTER_KEY: DEMO_MASTER_KEY,
      SALT: DEMO_SALT,
    },
  );
}

function opensslRun(concat, out) {
  const key = randomBytes(16).toString("hex");
  const iv = randomBytes(16).toString("hex");
  return timed("openssl", ["enc", "-aes-128-cbc", "-K", key, "-iv", iv, "-in", concat, "-out", out]);
}

// node's floor for the same job, in a process of its own, timed as the others are (in this
// process its CPU time would include whatever earlier benchmarks left running here): per segment
// file, read, one createCipheriv, write.
const NODE_RAW = `
  const { createCipheriv, randomBytes } = require("node:crypto");
  const { mkdirSync } = require("node:fs");
  const { join } = require("node:path");
  const [dir, out, ...names] = process.argv.slice(1);
  mkdirSync(out, { recursive: true });
  const key = randomBytes(16);
  (async () => {
    const { readFile, writeFile } = require("node:fs/promises");
    for (const name of names) {
      const cipher = createCipheriv("aes-128-cbc", key, randomBytes(16));
      const clear = await readFile(join(dir, name));
      await writeFile(join(out, name), Buffer.concat([cipher.update(clear), cipher.final()]));
    }
  })();`;

function nodeRaw(dir, names, out) {
  return timed(process.execPath, ["-e", NODE_RAW, dir, out, ...names]);
}

export async function run() {
  const root = await mkdtemp(join(WORK_DIR, "blindcast-bench-pack-"));
  try {
    const small = Math.max(1, Math.round(SIZE_MB / 4));
    const smallStream = await buildStream(join(root, "small"), small);
    const large = await buildStream(join(root, "large"), SIZE_MB);
    const concat = join(root, `${SIZE_MB}-concat.bin`);
    const out = join(root, "out");
    const clean = () => rm(out, { recursive: true, force: true });

    // Peak RSS at a quarter of the size, then throughput and peak RSS at the full size.
    await clean();
    const smallRun = await packager(join(root, "small"), out);
    const pack = [];
    const openssl = [];
    const raw = [];
    for (let i = 0; i < RUNS; i++) {
      await clean();
      raw.push(await nodeRaw(join(root, "large"), large.names, out));
      await clean();
      openssl.push(await opensslRun(concat, join(root, "openssl.bin")));
      await rm(join(root, "openssl.bin"), { force: true });
      await clean();
      pack.push(await packager(join(root, "large"), out));
    }
    // MB per CPU-second (user + system) decides the ratio: this machine is shared, and a
    // neighbour's load stretches wall time at random; CPU time is the work each one does. Wall
    // MB/s is reported beside it.
    const perCpu = (runs) => median(runs.map((r) => large.bytes / MB / r.cpu));
    const perWall = (runs) => median(runs.map((r) => large.bytes / MB / r.seconds));
    const candidate = perCpu(pack);
    const opensslMBs = perCpu(openssl);
    const rawMBs = perCpu(raw);
    const best = Math.max(opensslMBs, rawMBs);
    const largePeak = Math.max(...pack.map((r) => r.peakMb));
    const mb = (bytes) => `${round(bytes / MB / 1024, 2)} GB`;
    return [
      {
        id: "packaging-throughput",
        name: `blindcast-pack on a ${mb(large.bytes)} stream (${large.names.length} segments)`,
        candidate: `${round(candidate, 0)} MB/s CPU (${round(perWall(pack), 0)} MB/s wall)`,
        baseline: `openssl enc ${round(opensslMBs, 0)} MB/s CPU (${round(perWall(openssl), 0)} wall), node createCipheriv ${round(rawMBs, 0)} MB/s CPU (${round(perWall(raw), 0)} wall)`,
        ratio: round(candidate / best),
        target: "≥ 0.8 of the faster, per CPU-second",
        pass: candidate / best >= 0.8,
        raw: { bytes: large.bytes, segments: large.names.length, pack, openssl, raw },
      },
      {
        id: "packaging-memory",
        name: `blindcast-pack peak RSS, ${mb(smallStream.bytes)} vs ${mb(large.bytes)} stream`,
        candidate: `${round(largePeak, 0)} MB at ${mb(large.bytes)}`,
        baseline: `${round(smallRun.peakMb, 0)} MB at ${mb(smallStream.bytes)}`,
        ratio: round(largePeak / smallRun.peakMb),
        target: "flat: ≤ 1.25 for 4× the stream",
        pass: largePeak / smallRun.peakMb <= 1.25,
        raw: {
          small: { bytes: smallStream.bytes, peakMb: smallRun.peakMb },
          large: { bytes: large.bytes, peakMb: largePeak },
        },
      },
    ];
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
