// Live packaging's refusals: every wait bounded, every failure a PackagerError with a code, and
// nothing that would change what was already published.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type PackageOptions,
  PackagerError,
  type PackageStreamOptions,
  packageHls,
  type WatchOptions,
  type WatchStreamOptions,
  watchHls,
} from "@blindcast/packager";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLiveEncoder } from "../../../test/support/live-encoder.mjs";
import { liveStream, recorder, until } from "./support/live.js";

let work: string;
let input: string;
let output: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "blindcast-live-err-"));
  input = join(work, "in");
  output = join(work, "out");
  mkdirSync(input);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const watchOptions = (extra: Partial<WatchStreamOptions> = {}): WatchOptions => ({
  ...liveStream(input, output),
  pollIntervalMs: 20,
  stallTimeoutMs: 400,
  ...extra,
});
const packageOptions = (extra: Partial<PackageStreamOptions> = {}): PackageOptions => ({
  ...liveStream(input, output),
  ...extra,
});
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a refusal");
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(PackagerError);
      return error as PackagerError;
    },
  );
const put = (name: string, text: string) => writeFileSync(join(input, name), text);
const live = (sequence: number, ...segments: string[]) =>
  [
    "#EXTM3U",
    "#EXT-X-TARGETDURATION:2",
    `#EXT-X-MEDIA-SEQUENCE:${sequence}`,
    ...segments.flatMap((s) => ["#EXTINF:2.0,", s]),
    "",
  ].join("\n");

describe("watchHls gives up, with a reason, when", () => {
  it("the input has no new segment for the stall timeout", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 3 });
    await encoder.next();
    const error = await failure(watchHls(watchOptions()).done);
    expect(error.code).toBe("INPUT_STALLED");
    expect(error.message).toMatch(/index.m3u8 has had no new segment for [0-9.]+ s and no #EXT-X-ENDLIST/);
  });

  it.each<[string, () => void, string, RegExp]>([
    ["the input never appears", () => undefined, "INPUT_NOT_FOUND", /cannot read playlist .*still so after/],
    [
      "a segment stays missing",
      () => put("index.m3u8", live(0, "gone.ts")),
      "MISSING_SEGMENTS",
      /gone.ts.*still so after/,
    ],
    [
      "the playlist stays malformed",
      () => put("index.m3u8", "#EXTM3U\n#EXTINF:2,\n"),
      "MALFORMED_PLAYLIST",
      /no URI after it.*still so after/,
    ],
  ])("%s (reported while waiting, then failing)", async (_, setUp, code, message) => {
    setUp();
    const rec = recorder(output);
    const error = await failure(watchHls(watchOptions({ onEvent: rec.onEvent })).done);
    expect(error).toMatchObject({ code, message: expect.stringMatching(message) });
    expect(rec.events.filter((e) => e.type === "waiting")).toHaveLength(1);
  });

  it("the input is encrypted already: at once, without waiting", async () => {
    put("index.m3u8", live(0, "a.ts").replace("#EXTINF", '#EXT-X-KEY:METHOD=AES-128,URI="k"\n#EXTINF'));
    const started = Date.now();
    expect(await failure(watchHls(watchOptions({ stallTimeoutMs: 60_000 })).done)).toMatchObject({
      code: "ALREADY_ENCRYPTED",
    });
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it.each<[Partial<WatchOptions>, RegExp]>([
    [{ pollIntervalMs: 0 }, /pollIntervalMs/],
    [{ stallTimeoutMs: Number.NaN }, /stallTimeoutMs/],
    [{ contentId: "a/b" }, /contentId/],
    [{ contentKey: true }, /exclude each other/],
    [{ keyUriBase: "ftp://x" }, /http/],
  ])("options %j", async (extra, message) => {
    expect(await failure(watchHls(watchOptions(extra)).done)).toMatchObject({
      code: "INVALID_OPTIONS",
      message: expect.stringMatching(message),
    });
  });

  it("the output is the input's folder", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 1 });
    await encoder.next();
    expect(await failure(watchHls(watchOptions({ output: input })).done)).toMatchObject({
      code: "WOULD_OVERWRITE_INPUT",
    });
  });
});

describe("what was published stays as it was", () => {
  /** A first run: the window of sequences 0 and 1, published with segmentsPerEpoch 2. */
  async function published() {
    const encoder = createLiveEncoder({ dir: input, count: 6, window: 2, partial: false });
    await encoder.next();
    await encoder.next();
    await packageHls(packageOptions());
    return encoder;
  }

  it.each<[string, Partial<WatchOptions>, RegExp]>([
    ["another segmentsPerEpoch", { segmentsPerEpoch: 3 }, /segmentsPerEpoch 2 \(now 3\)/],
    ["another content id", { contentId: "live-2" }, /contentId "live-1" \(now "live-2"\)/],
    ["the content key", { segmentsPerEpoch: undefined, contentKey: true }, /contentKey false \(now true\)/],
    ["another key URI base", { keyUriBase: "https://keys.example/keys" }, /keyUriBase null/],
  ])("a run with %s is refused", async (_, extra, message) => {
    await published();
    const before = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(await failure(watchHls(watchOptions(extra)).done)).toMatchObject({
      code: "LIVE_STATE_MISMATCH",
      message: expect.stringMatching(message),
    });
    expect(readFileSync(join(output, "index.m3u8"), "utf8")).toBe(before);
  });

  it("an encoder that started over (the media sequence goes back) is refused", async () => {
    const encoder = await published();
    await encoder.next();
    await encoder.next();
    await packageHls(packageOptions()); // the window moved on to 2 and 3
    put("index.m3u8", live(1, "live1.ts", "live2.ts"));
    expect(await failure(packageHls(packageOptions()))).toMatchObject({
      code: "LIVE_STATE_MISMATCH",
      message: expect.stringMatching(/EXT-X-MEDIA-SEQUENCE went back from 2 to 1.*append_list/),
    });
  });

  it("a segment name reused at another sequence number is refused", async () => {
    await published();
    put("index.m3u8", live(1, "live0.ts", "live1.ts"));
    expect(await failure(packageHls(packageOptions()))).toMatchObject({
      code: "LIVE_STATE_MISMATCH",
      message: expect.stringMatching(/live0.ts is now at media sequence 1 .* published at 0/),
    });
  });

  it("a published segment the encoder rewrote is refused", async () => {
    await published();
    writeFileSync(join(input, "live1.ts"), readFileSync(join(input, "live0.ts")).subarray(0, 1000));
    expect(await failure(packageHls(packageOptions()))).toMatchObject({
      code: "LIVE_STATE_MISMATCH",
      message: expect.stringMatching(/live1.ts changed after it was published/),
    });
  });

  it("a state file that is not one is refused", async () => {
    await published();
    writeFileSync(join(output, ".blindcast-live.json"), "{}");
    expect(await failure(packageHls(packageOptions()))).toMatchObject({
      code: "LIVE_STATE_INVALID",
      message: expect.stringMatching(/is not a blindcast-live\/1 state file/),
    });
  });

  it("two runs never write into one folder at once; a lock left by a dead run is taken over", async () => {
    const encoder = await published();
    const rec = recorder(output);
    const first = watchHls(watchOptions({ stallTimeoutMs: 60_000, onEvent: rec.onEvent }));
    await until("the first watch", () => rec.count("published") > 0);
    expect(await failure(watchHls(watchOptions()).done)).toMatchObject({
      code: "OUTPUT_BUSY",
      message: expect.stringMatching(/is already writing into/),
    });
    expect(await failure(packageHls(packageOptions()))).toMatchObject({ code: "OUTPUT_BUSY" });
    await first.stop();

    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    writeFileSync(join(output, ".blindcast-live.lock"), `${dead}\n`);
    await encoder.next();
    expect(await packageHls(packageOptions())).toMatchObject({ segments: 1, live: true });
  });

  it("a one-shot run on a live window with a missing segment writes nothing", async () => {
    put("index.m3u8", live(4, "gone.ts"));
    expect(await failure(packageHls(packageOptions()))).toMatchObject({ code: "MISSING_SEGMENTS" });
    expect(() => readFileSync(join(output, ".blindcast-live.json"))).toThrow();
  });
});
