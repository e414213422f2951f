import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex, decryptSegment, deriveContentKey, deriveEpochKey, hexToBytes } from "@blindcast/crypto";
import {
  type PackageMasterKeyOptions,
  type PackageOptions,
  PackagerError,
  type PackageStreamOptions,
  packageHls,
} from "@blindcast/packager";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { keyedSegments } from "./support/keyed-segments.js";

const SAMPLE = new URL("../../../demo/sample/", import.meta.url).pathname;
const FMP4 = new URL("./fixtures/fmp4/", import.meta.url).pathname;
const masterKey = new Uint8Array(32).map((_, i) => i);
const salt = new Uint8Array(16).map((_, i) => 0xa0 + i);

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "blindcast-pack-"));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

type MasterKeyOptions = PackageStreamOptions & PackageMasterKeyOptions;
const options = (extra: Partial<MasterKeyOptions> = {}): PackageOptions => ({
  input: join(SAMPLE, "master.m3u8"),
  output: join(work, "out"),
  contentId: "demo-sample",
  masterKey,
  salt,
  ...extra,
});

async function keyFor(keyUri: string): Promise<Uint8Array> {
  const [contentId, epoch] = keyUri.replace("blindcast://keys/", "").split("/");
  return epoch === undefined
    ? deriveContentKey(masterKey, salt, contentId ?? "")
    : deriveEpochKey(masterKey, salt, contentId ?? "", Number(epoch));
}

const hashTree = (dir: string) =>
  readdirSync(dir)
    .sort()
    .map(
      (f) =>
        `${f}:${createHash("sha256")
          .update(readFileSync(join(dir, f)))
          .digest("hex")}`,
    )
    .join("\n");

describe("packageHls", () => {
  it("encrypts every segment so that the derived epoch key and the written IV decrypt it exactly", async () => {
    const before = hashTree(SAMPLE);
    const result = await packageHls(options({ segmentsPerEpoch: 2 }));
    expect(result).toEqual({
      playlist: "master.m3u8",
      mediaPlaylists: ["index.m3u8"],
      segments: 8,
      keyUris: [0, 1, 2, 3].map((e) => `blindcast://keys/demo-sample/${e}`),
      live: false,
    });
    expect(readFileSync(join(work, "out/master.m3u8"), "utf8")).toBe(
      readFileSync(join(SAMPLE, "master.m3u8"), "utf8"),
    );
    const segments = keyedSegments(readFileSync(join(work, "out/index.m3u8"), "utf8"));
    expect(segments.map((s) => s.keyUri)).toEqual(
      [0, 0, 1, 1, 2, 2, 3, 3].map((e) => `blindcast://keys/demo-sample/${e}`),
    );
    expect(new Set(segments.map((s) => s.iv)).size).toBe(8);
    for (const segment of segments) {
      const clear = readFileSync(join(SAMPLE, segment.uri));
      const encrypted = readFileSync(join(work, "out", segment.uri));
      expect(encrypted.length).toBe((Math.floor(clear.length / 16) + 1) * 16);
      expect(encrypted.subarray(0, 188).equals(clear.subarray(0, 188))).toBe(false);
      const decrypted = await decryptSegment(await keyFor(segment.keyUri), hexToBytes(segment.iv), encrypted);
      expect(Buffer.from(decrypted).equals(clear)).toBe(true);
    }
    expect(hashTree(SAMPLE)).toBe(before);
  });

  it("streams segments larger than its read chunk (and of any length) to exactly the bytes WebCrypto decrypts", async () => {
    // The cipher runs a chunk at a time (1 MiB): segments spanning several chunks, one ending on
    // a chunk and block boundary, one shorter than a block, must each decrypt to their input.
    const input = join(work, "in");
    mkdirSync(input);
    const sizes = [2 * 1024 * 1024 + 7, 1024 * 1024, 5];
    const clear = sizes.map((size, i) => new Uint8Array(size).map((_, j) => (j * 31 + i * 7) & 0xff));
    const names = clear.map((_, i) => `big${i}.ts`);
    for (const [i, name] of names.entries()) writeFileSync(join(input, name), clear[i] as Uint8Array);
    const lines = [
      "#EXTM3U",
      "#EXT-X-TARGETDURATION:6",
      ...names.flatMap((n) => ["#EXTINF:6,", n]),
      "#EXT-X-ENDLIST",
    ];
    writeFileSync(join(input, "index.m3u8"), `${lines.join("\n")}\n`);
    await packageHls(options({ input: join(input, "index.m3u8") }));
    const playlist = readFileSync(join(work, "out", "index.m3u8"), "utf8");
    for (const [i, segment] of keyedSegments(playlist).entries()) {
      const encrypted = readFileSync(join(work, "out", segment.uri));
      const decrypted = await decryptSegment(await keyFor(segment.keyUri), hexToBytes(segment.iv), encrypted);
      expect(Buffer.from(decrypted).equals(Buffer.from(clear[i] as Uint8Array))).toBe(true);
    }
  });

  it("keeps the playlist's other lines and raises the version where IVs need it", async () => {
    await packageHls(options({ input: join(SAMPLE, "index.m3u8") }));
    const playlist = readFileSync(join(work, "out/index.m3u8"), "utf8");
    expect(playlist.startsWith("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n")).toBe(true);
    expect(playlist).toContain("#EXT-X-PLAYLIST-TYPE:VOD");
    expect(playlist.trim().endsWith("#EXT-X-ENDLIST")).toBe(true);
    // Without segmentsPerEpoch, every segment is in epoch 0.
    expect(new Set(keyedSegments(playlist).map((s) => s.keyUri))).toEqual(
      new Set(["blindcast://keys/demo-sample/0"]),
    );
  });

  it("can use the content key instead of epochs", async () => {
    const result = await packageHls(options({ contentKey: true }));
    expect(result.keyUris).toEqual(["blindcast://keys/demo-sample"]);
    const [first] = keyedSegments(readFileSync(join(work, "out/index.m3u8"), "utf8"));
    const decrypted = await decryptSegment(
      await deriveContentKey(masterKey, salt, "demo-sample"),
      hexToBytes(first?.iv ?? ""),
      readFileSync(join(work, "out", first?.uri ?? "")),
    );
    expect(Buffer.from(decrypted).equals(readFileSync(join(SAMPLE, first?.uri ?? "")))).toBe(true);
  });

  it("handles fMP4: init section copied clear, media segments encrypted", async () => {
    const result = await packageHls(options({ input: join(FMP4, "index.m3u8"), segmentsPerEpoch: 1 }));
    expect(result.segments).toBe(3);
    expect(readFileSync(join(work, "out/init.mp4")).equals(readFileSync(join(FMP4, "init.mp4")))).toBe(true);
    const playlist = readFileSync(join(work, "out/index.m3u8"), "utf8");
    expect(playlist.indexOf('#EXT-X-MAP:URI="init.mp4"')).toBeLessThan(playlist.indexOf("#EXT-X-KEY"));
    for (const segment of keyedSegments(playlist)) {
      const decrypted = await decryptSegment(
        await keyFor(segment.keyUri),
        hexToBytes(segment.iv),
        readFileSync(join(work, "out", segment.uri)),
      );
      expect(Buffer.from(decrypted).equals(readFileSync(join(FMP4, segment.uri)))).toBe(true);
    }
  });

  it("reports progress for every segment", async () => {
    const seen: number[] = [];
    await packageHls(options({ onProgress: (p) => seen.push(p.segmentsDone * 100 + p.segmentsTotal) }));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => n * 100 + 8));
  });

  describe("refuses bad input clearly, writing nothing", () => {
    const write = (name: string, text: string) => {
      const dir = join(work, "in");
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const media = (...body: string[]) =>
      ["#EXTM3U", "#EXT-X-TARGETDURATION:2", ...body, "#EXT-X-ENDLIST"].join("\n");

    it.each<[string, () => string, string, RegExp]>([
      ["a missing playlist", () => join(work, "nope.m3u8"), "INPUT_NOT_FOUND", /cannot read playlist/],
      [
        "no #EXTM3U",
        () => write("a.m3u8", "#EXTINF:2,\nseg.ts"),
        "MALFORMED_PLAYLIST",
        /first line must be #EXTM3U/,
      ],
      ["no segments", () => write("a.m3u8", media()), "MALFORMED_PLAYLIST", /no segments/],
      [
        "a dangling EXTINF",
        () => write("a.m3u8", "#EXTM3U\n#EXTINF:2,"),
        "MALFORMED_PLAYLIST",
        /no URI after it/,
      ],
      [
        "missing segments",
        () => write("a.m3u8", media("#EXTINF:2,", "gone0.ts", "#EXTINF:2,", "gone1.ts")),
        "MISSING_SEGMENTS",
        /2 file\(s\) .* missing: gone0.ts, gone1.ts/,
      ],
      [
        "encrypted input",
        () => write("a.m3u8", media('#EXT-X-KEY:METHOD=AES-128,URI="k"', "#EXTINF:2,", "s.ts")),
        "ALREADY_ENCRYPTED",
        /already encrypted/,
      ],
      [
        "byte ranges",
        () => write("a.m3u8", media("#EXTINF:2,", "#EXT-X-BYTERANGE:100@0", "s.ts")),
        "UNSUPPORTED_INPUT",
        /byte-range/,
      ],
      [
        "remote segments",
        () => write("a.m3u8", media("#EXTINF:2,", "https://cdn.example/s.ts")),
        "UNSUPPORTED_INPUT",
        /relative paths to local files/,
      ],
      [
        "paths leaving the folder",
        () => write("a.m3u8", media("#EXTINF:2,", "../secret.ts")),
        "UNSUPPORTED_INPUT",
        /outside the input's folder/,
      ],
      [
        "a variant with a missing media playlist",
        () => write("m.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/index.m3u8"),
        "INPUT_NOT_FOUND",
        /v\/index.m3u8/,
      ],
    ])("%s", async (_, input, code, message) => {
      const error = await packageHls(options({ input: input() })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PackagerError);
      expect(error).toMatchObject({ code, message: expect.stringMatching(message) });
      expect(() => readdirSync(join(work, "out"))).toThrow();
    });

    it.each<[Partial<MasterKeyOptions>, RegExp]>([
      [{ contentId: "a/b" }, /contentId/],
      [{ masterKey: new Uint8Array(8) }, /masterKey must be at least 16 bytes/],
      [{ segmentsPerEpoch: 0 }, /segmentsPerEpoch must be a positive integer/],
      [{ segmentsPerEpoch: 2, contentKey: true }, /exclude each other/],
      [{ output: "" }, /output/],
    ])("options %j", async (extra, message) => {
      await expect(packageHls(options(extra))).rejects.toMatchObject({
        code: "INVALID_OPTIONS",
        message: expect.stringMatching(message),
      });
    });
  });

  it("never overwrites its input", async () => {
    const copy = join(work, "copy");
    cpSync(SAMPLE, copy, { recursive: true });
    const before = hashTree(copy);
    await expect(
      packageHls(options({ input: join(copy, "master.m3u8"), output: copy, overwrite: true })),
    ).rejects.toMatchObject({
      code: "WOULD_OVERWRITE_INPUT",
    });
    expect(hashTree(copy)).toBe(before);
  });

  it("refuses a non-empty output folder unless told to overwrite", async () => {
    mkdirSync(join(work, "out"));
    writeFileSync(join(work, "out/keep.txt"), "x");
    await expect(packageHls(options())).rejects.toMatchObject({ code: "OUTPUT_NOT_EMPTY" });
    await packageHls(options({ overwrite: true }));
    expect(readFileSync(join(work, "out/keep.txt"), "utf8")).toBe("x");
  });
});

describe("blindcast-pack", () => {
  const cli = new URL("../dist/cli.js", import.meta.url).pathname;
  const run = async (args: string[], env: Record<string, string>) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    const [code] = await once(child, "exit");
    return { code: code as number, stderr };
  };
  const env = { MASTER_KEY: bytesToHex(masterKey), SALT: bytesToHex(salt) };

  it("packages the sample and reports progress", async () => {
    const { code, stderr } = await run(
      [
        join(SAMPLE, "master.m3u8"),
        join(work, "out"),
        "--content-id",
        "demo-sample",
        "--segments-per-epoch",
        "2",
      ],
      env,
    );
    expect(stderr).toContain("8/8 segments");
    expect(stderr).toMatch(/wrote .*master.m3u8: 8 segments, 4 key\(s\)/);
    expect(stderr).not.toContain(env.MASTER_KEY);
    expect(code).toBe(0);
    expect(readdirSync(join(work, "out")).sort()).toEqual([
      "index.m3u8",
      "master.m3u8",
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `seg00${i}.ts`),
    ]);
  });

  it("names the written playlist as a clean path when the output folder ends in a slash", async () => {
    const out = `${join(work, "slash")}/`;
    const { code, stderr } = await run(
      [join(SAMPLE, "master.m3u8"), out, "--content-id", "demo-sample"],
      env,
    );
    expect(code).toBe(0);
    expect(stderr).toContain(`wrote ${join(work, "slash", "master.m3u8")}:`);
    expect(stderr).not.toContain("//");
  });

  it.each<[string[], Record<string, string>, number, RegExp]>([
    [["in.m3u8"], env, 2, /give exactly an input playlist and an output folder/],
    [["in.m3u8", "out"], env, 2, /--content-id is required/],
    [["in.m3u8", "out", "--content-id", "x", "--segments-per-epoch", "0"], env, 2, /positive integer/],
    [["in.m3u8", "out", "--content-id", "x"], {}, 2, /MASTER_KEY is not set/],
    [["in.m3u8", "out", "--content-id", "x", "--bogus"], env, 2, /Unknown option/],
    [["missing.m3u8", "out", "--content-id", "x"], env, 1, /cannot read playlist/],
  ])("%j fails with a clear message", async (args, vars, exitCode, message) => {
    const { code, stderr } = await run(args, vars);
    expect(code).toBe(exitCode);
    expect(stderr).toMatch(message);
  });
});
