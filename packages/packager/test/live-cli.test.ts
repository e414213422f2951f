// blindcast-pack on live input: --watch next to a (simulated) encoder, stopped by a signal and
// started again, the one-shot run's notice, and failures as one line with exit 1.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex } from "@blindcast/crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLiveEncoder } from "../../../test/support/live-encoder.mjs";
import { expectDecrypts, masterKey, named, salt, until } from "./support/live.js";

const CLI = new URL("../dist/cli.js", import.meta.url).pathname;
const env = { MASTER_KEY: bytesToHex(masterKey), SALT: bytesToHex(salt) };

let work: string;
let input: string;
let output: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "blindcast-live-cli-"));
  input = join(work, "in");
  output = join(work, "out");
  mkdirSync(input);
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

/** Starts blindcast-pack; `exit` resolves with its code and everything it wrote to stderr. */
function start(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exit = once(child, "exit").then(([code]) => ({ code: code as number | null, stderr }));
  return { child, exit, stderr: () => stderr };
}
const watchArgs = (...extra: string[]) => [
  join(input, "index.m3u8"),
  output,
  "--content-id",
  "live-1",
  "--segments-per-epoch",
  "2",
  "--watch",
  "--poll-interval",
  "0.02",
  ...extra,
];
/** The output playlist names `sequence` (or a later segment). */
const names = (sequence: number) => () => {
  try {
    return named(readFileSync(join(output, "index.m3u8"), "utf8")).some((s) => s.sequence >= sequence);
  } catch {
    return false;
  }
};

describe("blindcast-pack --watch", () => {
  it("follows the encoder, stops cleanly on SIGTERM, continues when started again, ends with the input", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 6, window: 3 });
    const first = start(watchArgs());
    for (let i = 0; i < 3; i++) {
      await encoder.next();
      await until(`sequence ${i}`, names(i), 10_000);
    }
    first.child.kill("SIGTERM");
    const stopped = await first.exit;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain("blindcast-pack: live2.ts (sequence 2, epoch 1)");
    expect(stopped.stderr).toMatch(/stopped; .*index.m3u8 stays live, 3 segment\(s\) encrypted by this run/);
    const kept = readFileSync(join(output, "live0.ts"));

    // A second watch, this time with the output folder busy: refused in one line.
    const second = start(watchArgs());
    await until("the second watch", () => second.stderr().includes("continuing"), 10_000);
    const busy = await start(watchArgs()).exit;
    expect(busy.code).toBe(1);
    expect(busy.stderr.trim().split("\n").at(-1)).toMatch(
      /^blindcast-pack: another blindcast-pack \(process \d+\) is writing into .*out; stop it first/,
    );
    for (let i = 3; i < 6; i++) await encoder.next();
    await encoder.end();
    const ended = await second.exit;
    expect(ended.code).toBe(0);
    expect(ended.stderr).toContain("blindcast-pack: continuing: 3 published segment(s) kept as they are");
    expect(ended.stderr).not.toContain("live0.ts (sequence");
    expect(ended.stderr).toMatch(
      /the input ended \(#EXT-X-ENDLIST\): wrote the final .*index.m3u8; 3 segment\(s\)/,
    );
    expect(ended.stderr).not.toContain(env.MASTER_KEY);
    expect(readFileSync(join(output, "live0.ts")).equals(kept)).toBe(true);
    const playlist = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(playlist.trim().endsWith("#EXT-X-ENDLIST")).toBe(true);
    for (const segment of named(playlist)) {
      await expectDecrypts(join(output, segment.uri), segment, encoder.segmentAt(segment.sequence).clear);
    }
  });

  it("fails in one line, exit 1, when the input stalls", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 2 });
    await encoder.next();
    const { code, stderr } = await start(watchArgs("--stall-timeout", "0.3")).exit;
    expect(code).toBe(1);
    const lines = stderr.trim().split("\n");
    expect(lines.at(-1)).toMatch(/^blindcast-pack: index.m3u8 has had no new segment for [0-9.]+ s/);
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  it.each<[string[], RegExp]>([
    [["--prune"], /--prune goes with --watch/],
    [["--poll-interval", "1"], /--poll-interval goes with --watch/],
    [["--watch", "--poll-interval", "fast"], /--poll-interval must be a number of seconds/],
    [["--watch", "--stall-timeout", "0"], /--stall-timeout must be a number of seconds/],
  ])("%j is a usage error", async (extra, message) => {
    const { code, stderr } = await start([join(input, "index.m3u8"), output, "--content-id", "x", ...extra])
      .exit;
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});

describe("blindcast-pack on a live input without --watch", () => {
  it("says that it packaged the current window and left the output live", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 3 });
    for (let i = 0; i < 3; i++) await encoder.next();
    const { code, stderr } = await start([join(input, "index.m3u8"), output, "--content-id", "live-1"]).exit;
    expect(code).toBe(0);
    expect(stderr).toMatch(
      /index.m3u8 is live \(no #EXT-X-ENDLIST\): packaged its current window into .*, 3 new segment\(s\), 1 key\(s\), .* the output stays live \(no #EXT-X-ENDLIST added\)/,
    );
    expect(readFileSync(join(output, "index.m3u8"), "utf8")).not.toContain("#EXT-X-ENDLIST");
    expect(existsSync(join(output, ".blindcast-live.json"))).toBe(true);
  });
});
