// Live packaging (issue 16): epochs from the media sequence number, watchHls following a live
// stream written segment by segment (test/support/live-encoder.mjs, from the committed sample) as
// ffmpeg's hls muxer writes it, restarts without encrypting anything again, atomic publishing.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import {
  type PackageOptions,
  type PackageStreamOptions,
  packageHls,
  type WatchOptions,
  type WatchStreamOptions,
  watchHls,
} from "@blindcast/packager";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLiveEncoder, DEMO_SAMPLE_PLAYLIST } from "../../../test/support/live-encoder.mjs";
import {
  expectDecrypts,
  liveStream,
  type Named,
  named,
  recorder,
  startReader,
  until,
} from "./support/live.js";

const SAMPLE = new URL("../../../demo/sample/", import.meta.url).pathname;
const FMP4 = new URL("./fixtures/fmp4/", import.meta.url).pathname;

let work: string;
let input: string;
let output: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "blindcast-live-"));
  input = join(work, "in");
  output = join(work, "out");
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const watchOptions = (extra: Partial<WatchStreamOptions> = {}): WatchOptions => ({
  ...liveStream(input, output),
  pollIntervalMs: 20,
  ...extra,
});
const packageOptions = (extra: Partial<PackageStreamOptions> = {}): PackageOptions => ({
  ...liveStream(input, output),
  ...extra,
});
const epochUri = (epoch: number) => `blindcast://keys/live-1/${epoch}`;
const withoutKeys = (playlist: string) =>
  playlist
    .split("\n")
    .filter((line) => !line.startsWith("#EXT-X-KEY"))
    .join("\n");
const outputFiles = () =>
  Object.fromEntries(
    readdirSync(output)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => [f, { bytes: readFileSync(join(output, f)), mtimeMs: statSync(join(output, f)).mtimeMs }]),
  );

/** A clear VOD playlist naming the sample's segments with other EXTINF durations (for short windows). */
function shortSource(seconds: number): string {
  const dir = join(work, "source");
  mkdirSync(dir, { recursive: true });
  const lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1"];
  for (let i = 0; i < 8; i++) lines.push(`#EXTINF:${seconds},`, relative(dir, join(SAMPLE, `seg00${i}.ts`)));
  writeFileSync(join(dir, "index.m3u8"), `${lines.concat("#EXT-X-ENDLIST").join("\n")}\n`);
  return join(dir, "index.m3u8");
}

describe("epochs from the media sequence number", () => {
  it("gives a live window's segments the epochs of their sequence numbers, not of their places", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 7, window: 4 });
    for (let i = 0; i < 7; i++) await encoder.next();
    // The window is sequences 3 to 6: by place in the file they would be epochs 0, 0, 1, 1.
    const result = await packageHls(packageOptions());
    expect(result).toMatchObject({ live: true, segments: 4, keyUris: [1, 2, 3].map(epochUri) });
    const playlist = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(named(playlist).map((s) => [s.sequence, s.keyUri])).toEqual([
      [3, epochUri(1)],
      [4, epochUri(2)],
      [5, epochUri(2)],
      [6, epochUri(3)],
    ]);
    expect(playlist).not.toContain("#EXT-X-ENDLIST");
    for (const segment of named(playlist)) {
      await expectDecrypts(join(output, segment.uri), segment, encoder.segmentAt(segment.sequence).clear);
    }
  });

  it("counts a VOD playlist's epochs from its EXT-X-MEDIA-SEQUENCE too", async () => {
    mkdirSync(input, { recursive: true });
    const sample = readFileSync(join(SAMPLE, "index.m3u8"), "utf8");
    expect(sample).toContain("#EXT-X-MEDIA-SEQUENCE:0\n");
    writeFileSync(
      join(input, "index.m3u8"),
      sample.replace("#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-MEDIA-SEQUENCE:5"),
    );
    for (let i = 0; i < 8; i++) copyFileSync(join(SAMPLE, `seg00${i}.ts`), join(input, `seg00${i}.ts`));
    const result = await packageHls(packageOptions({ segmentsPerEpoch: 3 }));
    expect(result.live).toBe(false);
    // Sequences 5 to 12: epochs 1, 2, 2, 2, 3, 3, 3, 4.
    const playlist = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(named(playlist).map((s) => s.keyUri)).toEqual([1, 2, 2, 2, 3, 3, 3, 4].map(epochUri));
    expect(playlist.trim().endsWith("#EXT-X-ENDLIST")).toBe(true);
    expect(existsSync(join(output, ".blindcast-live.json"))).toBe(false);
  });
});

describe("watchHls", () => {
  it("follows a sliding window: stable epochs and IVs, mirrored lines, segments on disk before any playlist names them, ENDLIST ends it", async () => {
    const encoder = createLiveEncoder({
      dir: input,
      count: 12,
      window: 3,
      startSequence: 5,
      programDateTime: "2024-05-01T12:00:00.000Z",
    });
    const rec = recorder(output);
    const reader = startReader(output, [{ name: "index.m3u8", media: true }]);
    const watch = watchHls(watchOptions({ onEvent: rec.onEvent }));
    for (let i = 0; i < 12; i++) {
      const segment = await encoder.next();
      await until(`sequence ${segment?.sequence} published`, () => rec.reached(5 + i));
    }
    await encoder.end();
    const result = await watch.done;
    const seen = await reader.stop();

    expect(result).toEqual({
      playlist: "index.m3u8",
      mediaPlaylists: ["index.m3u8"],
      segments: 12,
      ended: true,
    });
    // Every version a viewer could read was one the watcher published whole, and named only
    // segments that were on disk, whole, when it was read.
    expect(seen.violations).toEqual([]);
    expect(seen.reads).toBeGreaterThan(0);
    for (const version of seen.versions["index.m3u8"] ?? []) expect(rec.published).toContain(version);
    // The same segment has the same key line in every version; its epoch is its sequence / 2.
    const segments = new Map<string, Named>();
    for (const version of rec.published) {
      for (const segment of named(version)) {
        expect(segment.keyUri).toBe(epochUri(Math.floor(segment.sequence / 2)));
        expect((segments.get(segment.uri) ?? segment).lines).toEqual(segment.lines);
        segments.set(segment.uri, segment);
      }
    }
    expect([...segments.keys()]).toEqual(Array.from({ length: 12 }, (_, i) => `live${5 + i}.ts`));
    // Each encrypted once.
    const encrypted = rec.events.flatMap((e) => (e.type === "segment" ? [e.sequence] : []));
    expect(encrypted).toEqual(Array.from({ length: 12 }, (_, i) => 5 + i));
    // The final playlist is the input's, key lines added: sequence, discontinuity, dates as they were.
    const final = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(withoutKeys(final)).toBe(readFileSync(join(input, "index.m3u8"), "utf8"));
    expect(final).toContain("#EXT-X-MEDIA-SEQUENCE:14");
    expect(final).toContain("#EXT-X-DISCONTINUITY-SEQUENCE:1");
    expect(final).toContain("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:22.000Z");
    expect(final.trim().endsWith("#EXT-X-ENDLIST")).toBe(true);
    // Slid-out segments stay on disk; every one decrypts with the contract key of its epoch.
    for (const segment of segments.values()) {
      await expectDecrypts(join(output, segment.uri), segment, encoder.segmentAt(segment.sequence - 5).clear);
    }
  });

  it("encrypts each segment exactly once across a restart: same files, same IVs, same lines", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 10, window: 4 });
    const first = recorder(output);
    const watch1 = watchHls(watchOptions({ onEvent: first.onEvent }));
    for (let i = 0; i < 5; i++) {
      await encoder.next();
      await until(`sequence ${i}`, () => first.reached(i));
    }
    await watch1.stop();
    expect(await watch1.done).toMatchObject({ ended: false, segments: 5 });
    const before = outputFiles();
    const lastBefore = first.published.at(-1) ?? "";
    expect(existsSync(join(output, ".blindcast-live.lock"))).toBe(false);

    // The encoder goes on while the watcher is down.
    await encoder.next();
    await encoder.next();
    const second = recorder(output);
    const watch2 = watchHls(watchOptions({ onEvent: second.onEvent }));
    await until("the backlog", () => second.reached(6));
    for (let i = 7; i < 10; i++) {
      await encoder.next();
      await until(`sequence ${i}`, () => second.reached(i));
    }
    await encoder.end();
    expect(await watch2.done).toMatchObject({ ended: true, segments: 5 });

    expect(second.events[0]).toEqual({ type: "resumed", segments: 4 });
    const encrypted = [...first.events, ...second.events].flatMap((e) =>
      e.type === "segment" ? [e.sequence] : [],
    );
    expect(encrypted).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The first run's files were not written again.
    const after = outputFiles();
    for (const [file, { bytes, mtimeMs }] of Object.entries(before)) {
      expect(after[file]?.bytes.equals(bytes), file).toBe(true);
      expect(after[file]?.mtimeMs, file).toBe(mtimeMs);
    }
    // Segments published before the stop have the same lines after it.
    const firstAfter = named(second.published[0] ?? "");
    for (const segment of named(lastBefore)) {
      const again = firstAfter.find((s) => s.uri === segment.uri);
      if (again) expect(again.lines).toEqual(segment.lines);
    }
    expect(firstAfter.some((s) => named(lastBefore).some((b) => b.uri === s.uri))).toBe(true);
    for (const segment of named(readFileSync(join(output, "index.m3u8"), "utf8"))) {
      await expectDecrypts(join(output, segment.uri), segment, encoder.segmentAt(segment.sequence).clear);
    }
  });

  it("reports the segments that left the input's window while the watch was down (skipped), and only those", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 9, window: 3 });
    const first = recorder(output);
    const watch1 = watchHls(watchOptions({ onEvent: first.onEvent }));
    for (let i = 0; i < 4; i++) {
      await encoder.next();
      await until(`sequence ${i}`, () => first.reached(i));
    }
    await watch1.stop();
    // A window that slides by one segment at a time skips nothing.
    expect(first.count("skipped")).toBe(0);

    // Published up to 3; the encoder writes 4 to 8 meanwhile, its window now 6 to 8.
    for (let i = 4; i < 9; i++) await encoder.next();
    await encoder.end();
    const second = recorder(output);
    expect(await watchHls(watchOptions({ onEvent: second.onEvent })).done).toMatchObject({
      ended: true,
      segments: 3,
    });
    expect(second.events.filter((e) => e.type === "skipped")).toEqual([
      { type: "skipped", playlist: "index.m3u8", first: 4, last: 5 },
    ]);
    const playlist = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(named(playlist).map((s) => s.sequence)).toEqual([6, 7, 8]);
  });

  it("follows every variant of a multivariant stream and publishes the multivariant playlist after them", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 5, window: 3, variants: 2 });
    const rec = recorder(output);
    const reader = startReader(output, [
      { name: "master.m3u8", media: false },
      { name: "v0/index.m3u8", media: true },
      { name: "v1/index.m3u8", media: true },
    ]);
    const watch = watchHls(watchOptions({ input: encoder.playlistPath, onEvent: rec.onEvent }));
    for (let i = 0; i < 5; i++) {
      await encoder.next();
      await until(`sequence ${i}`, () => rec.reached(i, "v0/index.m3u8") && rec.reached(i, "v1/index.m3u8"));
    }
    await encoder.end();
    expect(await watch.done).toEqual({
      playlist: "master.m3u8",
      mediaPlaylists: ["v0/index.m3u8", "v1/index.m3u8"],
      segments: 10,
      ended: true,
    });
    const seen = await reader.stop();
    expect(seen.violations).toEqual([]);
    expect(readFileSync(join(output, "master.m3u8"), "utf8")).toBe(
      readFileSync(encoder.playlistPath, "utf8"),
    );
    for (const variant of ["v0", "v1"]) {
      const playlist = readFileSync(join(output, variant, "index.m3u8"), "utf8");
      expect(playlist.trim().endsWith("#EXT-X-ENDLIST")).toBe(true);
      expect(named(playlist).map((s) => s.keyUri)).toEqual([1, 1, 2].map(epochUri));
      for (const segment of named(playlist)) {
        await expectDecrypts(
          join(output, variant, segment.uri),
          segment,
          encoder.segmentAt(segment.sequence).clear,
        );
      }
    }
  });

  it("follows fMP4: the init section copied clear once, before the playlist names it", async () => {
    const encoder = createLiveEncoder({ dir: input, source: join(FMP4, "index.m3u8"), count: 5, window: 2 });
    const rec = recorder(output);
    const reader = startReader(output, [{ name: "index.m3u8", media: true }]);
    const watch = watchHls(watchOptions({ segmentsPerEpoch: 1, onEvent: rec.onEvent }));
    for (let i = 0; i < 3; i++) {
      await encoder.next();
      await until(`sequence ${i}`, () => rec.reached(i));
    }
    await watch.stop();
    const init = statSync(join(output, "init.mp4")).mtimeMs;
    const restarted = watchHls(watchOptions({ segmentsPerEpoch: 1, onEvent: rec.onEvent }));
    await encoder.next();
    await encoder.next();
    await encoder.end();
    expect(await restarted.done).toMatchObject({ ended: true, segments: 2 });
    expect((await reader.stop()).violations).toEqual([]);
    expect(readFileSync(join(output, "init.mp4")).equals(readFileSync(join(FMP4, "init.mp4")))).toBe(true);
    expect(statSync(join(output, "init.mp4")).mtimeMs).toBe(init);
    const playlist = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(playlist.indexOf('#EXT-X-MAP:URI="init.mp4"')).toBeLessThan(playlist.indexOf("#EXT-X-KEY"));
    expect(named(playlist).map((s) => s.keyUri)).toEqual([3, 4].map(epochUri));
    for (const segment of named(playlist)) {
      await expectDecrypts(join(output, segment.uri), segment, encoder.segmentAt(segment.sequence).clear);
    }
  });

  it("writes a published segment missing from the output again, byte for byte", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 3, window: 5 });
    for (let i = 0; i < 3; i++) await encoder.next();
    await packageHls(packageOptions());
    const kept = readFileSync(join(output, "live1.ts"));
    rmSync(join(output, "live1.ts"));
    await encoder.end();
    const rec = recorder(output);
    expect(await watchHls(watchOptions({ onEvent: rec.onEvent })).done).toMatchObject({
      ended: true,
      segments: 1,
    });
    expect(rec.events.filter((e) => e.type === "restored")).toEqual([{ type: "restored", file: "live1.ts" }]);
    expect(readFileSync(join(output, "live1.ts")).equals(kept)).toBe(true);
  });

  it("with prune, deletes segments once they have been out of the window for their time, never before", async () => {
    const encoder = createLiveEncoder({ dir: input, source: shortSource(0.05), count: 8, window: 2 });
    const rec = recorder(output);
    const reader = startReader(output, [{ name: "index.m3u8", media: true }]);
    const watch = watchHls(watchOptions({ prune: true, onEvent: rec.onEvent }));
    for (let i = 0; i < 8; i++) {
      await encoder.next();
      await until(`sequence ${i}`, () => rec.reached(i));
    }
    await encoder.end();
    expect(await watch.done).toMatchObject({ ended: true });
    const seen = await reader.stop();
    expect(seen.violations).toEqual([]);
    // The watch ends once the last window's leavers are deleted: only the final window is left.
    expect(rec.events.flatMap((e) => (e.type === "pruned" ? [e.file] : [])).sort()).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => `live${i}.ts`).sort(),
    );
    expect(
      readdirSync(output)
        .filter((f) => f.endsWith(".ts"))
        .sort(),
    ).toEqual(["live6.ts", "live7.ts"]);
  });

  it("waits for an input playlist that is not there yet, then follows it", async () => {
    mkdirSync(input);
    const rec = recorder(output);
    const watch = watchHls(watchOptions({ onEvent: rec.onEvent }));
    await until("a waiting event", () => rec.count("waiting") > 0);
    expect(rec.events.find((e) => e.type === "waiting")).toMatchObject({ code: "INPUT_NOT_FOUND" });
    const encoder = createLiveEncoder({ dir: input, count: 2 });
    await encoder.next();
    await encoder.next();
    await encoder.end();
    expect(await watch.done).toMatchObject({ ended: true, segments: 2 });
  });

  it("stops on an AbortSignal, leaving the output live and valid", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 4 });
    await encoder.next();
    const controller = new AbortController();
    const rec = recorder(output);
    const watch = watchHls(watchOptions({ signal: controller.signal, onEvent: rec.onEvent }));
    await until("sequence 0", () => rec.reached(0));
    controller.abort();
    expect(await watch.done).toMatchObject({ ended: false, segments: 1 });
    expect(readFileSync(join(output, "index.m3u8"), "utf8")).not.toContain("#EXT-X-ENDLIST");
    expect(readdirSync(output).sort()).toEqual([".blindcast-live.json", "index.m3u8", "live0.ts"]);
  });
});

describe("packageHls on a live input", () => {
  it("packages the current window, leaves it live, and a second run adds only the new segments", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 6, window: 3 });
    for (let i = 0; i < 3; i++) await encoder.next();
    const firstRun = await packageHls(packageOptions());
    expect(firstRun).toEqual({
      playlist: "index.m3u8",
      mediaPlaylists: ["index.m3u8"],
      segments: 3,
      keyUris: [0, 1].map(epochUri),
      live: true,
    });
    const before = outputFiles();
    const playlistBefore = readFileSync(join(output, "index.m3u8"), "utf8");
    for (let i = 3; i < 6; i++) await encoder.next();
    await encoder.end();
    // No overwrite needed: the folder holds this stream's state.
    const secondRun = await packageHls(packageOptions());
    expect(secondRun).toMatchObject({ segments: 3, live: false });
    for (const [file, { bytes, mtimeMs }] of Object.entries(before)) {
      expect(statSync(join(output, file)).mtimeMs, file).toBe(mtimeMs);
      expect(readFileSync(join(output, file)).equals(bytes)).toBe(true);
    }
    const playlist = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(playlist.trim().endsWith("#EXT-X-ENDLIST")).toBe(true);
    expect(named(playlist).map((s) => s.sequence)).toEqual([3, 4, 5]);
    // A third run has nothing to do and changes nothing.
    expect(await packageHls(packageOptions())).toMatchObject({ segments: 0, live: false });
    expect(readFileSync(join(output, "index.m3u8"), "utf8")).toBe(playlist);
    expect(named(playlistBefore).length).toBe(3);
  });

  it("still refuses a non-empty folder without live state unless told to overwrite", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 1 });
    await encoder.next();
    mkdirSync(output);
    writeFileSync(join(output, "other.txt"), "x");
    await expect(packageHls(packageOptions())).rejects.toMatchObject({ code: "OUTPUT_NOT_EMPTY" });
    await expect(packageHls(packageOptions({ overwrite: true }))).resolves.toMatchObject({ live: true });
  });

  it("the committed sample itself (VOD) keeps its output: no state file, epochs by position", async () => {
    const result = await packageHls(packageOptions({ input: DEMO_SAMPLE_PLAYLIST }));
    expect(result).toMatchObject({ live: false, segments: 8, keyUris: [0, 1, 2, 3].map(epochUri) });
    expect(readdirSync(output)).not.toContain(".blindcast-live.json");
  });
});
