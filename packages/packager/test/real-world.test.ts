// Real-world inputs the packager once got wrong (issue 16): nested multivariant playlists, media
// playlists sharing segment files, odd file names, odd output paths, playlists without a version,
// and key URIs for clients that fetch keys themselves.
import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex, decryptSegment, deriveContentKey, deriveEpochKey, hexToBytes } from "@blindcast/crypto";
import {
  type PackageOptions,
  PackagerError,
  type PackageStreamOptions,
  packageHls,
} from "@blindcast/packager";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type KeyedSegment, keyedSegments } from "./support/keyed-segments.js";

const SAMPLE = new URL("../../../demo/sample/", import.meta.url).pathname;
const FMP4 = new URL("./fixtures/fmp4/", import.meta.url).pathname;
const CLI = new URL("../dist/cli.js", import.meta.url).pathname;
const masterKey = new Uint8Array(32).map((_, i) => i);
const salt = new Uint8Array(16).map((_, i) => 0xa0 + i);
const env = { MASTER_KEY: bytesToHex(masterKey), SALT: bytesToHex(salt) };

let work: string;
let input: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "blindcast-pack-rw-"));
  input = join(work, "in");
  mkdirSync(input);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const options = (playlist: string, extra: Partial<PackageStreamOptions> = {}): PackageOptions => ({
  input: join(input, playlist),
  output: join(work, "out"),
  contentId: "rw",
  masterKey,
  salt,
  ...extra,
});

/** Writes a file into the input folder (folders on the way created). */
function put(name: string, content: string | Uint8Array) {
  const path = join(input, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, content);
  return path;
}
const sample = (from: string, to: string) => {
  mkdirSync(join(input, to, ".."), { recursive: true });
  copyFileSync(join(SAMPLE, from), join(input, to));
};
const media = (...segments: string[]) =>
  [
    "#EXTM3U",
    "#EXT-X-VERSION:3",
    "#EXT-X-TARGETDURATION:2",
    ...segments.flatMap((s) => ["#EXTINF:2.000000,", s]),
    "#EXT-X-ENDLIST",
    "",
  ].join("\n");
const variants = (...playlists: string[]) =>
  ["#EXTM3U", ...playlists.flatMap((p) => ["#EXT-X-STREAM-INF:BANDWIDTH=290400", p]), ""].join("\n");

async function decrypted(segment: KeyedSegment, folder: string): Promise<Buffer> {
  const [contentId = "", epoch] = segment.keyUri.replace(/^.*\/keys\//, "").split("/");
  const key =
    epoch === undefined
      ? await deriveContentKey(masterKey, salt, contentId)
      : await deriveEpochKey(masterKey, salt, contentId, Number(epoch));
  return Buffer.from(
    await decryptSegment(key, hexToBytes(segment.iv), readFileSync(join(folder, segment.uri))),
  );
}

async function refusal(opts: PackageOptions): Promise<PackagerError> {
  const error = await packageHls(opts).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PackagerError);
  return error as PackagerError;
}

async function cli(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 15_000,
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  const [code] = await once(child, "exit");
  return { code: code as number | null, stderr };
}

describe("a multivariant playlist naming another multivariant playlist", () => {
  it("is refused: the inner variant playlists are never encrypted as segments", async () => {
    sample("seg000.ts", "v/seg000.ts");
    put("v/index.m3u8", media("seg000.ts"));
    put("inner.m3u8", variants("v/index.m3u8"));
    put("master.m3u8", variants("inner.m3u8"));
    const error = await refusal(options("master.m3u8"));
    expect(error.code).toBe("UNSUPPORTED_INPUT");
    expect(error.message).toMatch(/master.m3u8 names inner.m3u8, itself a multivariant playlist/);
    expect(existsSync(join(work, "out"))).toBe(false);
  });

  it("so is a media playlist naming a playlist as a segment, and a rendition-only playlist", async () => {
    sample("seg000.ts", "seg000.ts");
    put("a.m3u8", media("seg000.ts"));
    put("b.m3u8", media("a.m3u8"));
    put("both.m3u8", variants("a.m3u8", "b.m3u8"));
    expect(await refusal(options("both.m3u8"))).toMatchObject({
      code: "UNSUPPORTED_INPUT",
      message: "a.m3u8 is named both as a playlist and as media",
    });
    // A playlist named by no other is recognised by its content.
    expect(await refusal(options("b.m3u8"))).toMatchObject({
      code: "UNSUPPORTED_INPUT",
      message: "a.m3u8 is a playlist, but is named where a media segment belongs",
    });
    // EXT-X-MEDIA belongs to multivariant playlists: its URI is a playlist, never a segment.
    put("r.m3u8", '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="a",URI="r2.m3u8"\n');
    put("master.m3u8", variants("r.m3u8"));
    expect(await refusal(options("master.m3u8"))).toMatchObject({ code: "UNSUPPORTED_INPUT" });
  });
});

describe("media playlists sharing segment files", () => {
  it("encrypt each file once; every playlist names its one key and IV", async () => {
    for (const i of [0, 1, 2]) sample(`seg00${i}.ts`, `seg00${i}.ts`);
    put("a.m3u8", media("seg000.ts", "seg001.ts", "seg002.ts"));
    put("b.m3u8", media("seg002.ts", "./seg001.ts", "seg002.ts"));
    put("master.m3u8", variants("a.m3u8", "b.m3u8"));
    const progress: number[] = [];
    const result = await packageHls(
      options("master.m3u8", { segmentsPerEpoch: 1, onProgress: (p) => progress.push(p.segmentsTotal) }),
    );
    expect(result.segments).toBe(3);
    expect(progress).toEqual([3, 3, 3]);
    const out = join(work, "out");
    const a = keyedSegments(readFileSync(join(out, "a.m3u8"), "utf8"));
    const b = keyedSegments(readFileSync(join(out, "b.m3u8"), "utf8"));
    const byFile = new Map(a.map((s) => [s.uri, s]));
    expect(b.map((s) => [s.keyUri, s.iv])).toEqual(
      ["seg002.ts", "seg001.ts", "seg002.ts"].map((f) => [byFile.get(f)?.keyUri, byFile.get(f)?.iv]),
    );
    for (const segment of [...a, ...b]) {
      expect((await decrypted(segment, out)).equals(readFileSync(join(input, segment.uri)))).toBe(true);
    }
  });

  it("fMP4: the shared init section stays clear and every segment keeps its moof", async () => {
    for (const f of ["init.mp4", "seg0.m4s", "seg1.m4s", "seg2.m4s"])
      copyFileSync(join(FMP4, f), join(input, f));
    const playlist = readFileSync(join(FMP4, "index.m3u8"), "utf8");
    put("a.m3u8", playlist);
    put("b.m3u8", playlist);
    put("master.m3u8", variants("a.m3u8", "b.m3u8"));
    await packageHls(options("master.m3u8", { segmentsPerEpoch: 1 }));
    const out = join(work, "out");
    expect(readFileSync(join(out, "init.mp4")).equals(readFileSync(join(input, "init.mp4")))).toBe(true);
    for (const name of ["a.m3u8", "b.m3u8"]) {
      for (const segment of keyedSegments(readFileSync(join(out, name), "utf8"))) {
        const clear = await decrypted(segment, out);
        expect(clear.equals(readFileSync(join(input, segment.uri)))).toBe(true);
        expect(clear.subarray(4, 8).toString("latin1")).toMatch(/moof|styp/);
      }
    }
  });

  it("a file that is an init section in one playlist and a segment in another is refused", async () => {
    for (const f of ["init.mp4", "seg0.m4s"]) copyFileSync(join(FMP4, f), join(input, f));
    put("a.m3u8", '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1,\nseg0.m4s\n');
    put("b.m3u8", '#EXTM3U\n#EXT-X-MAP:URI="seg0.m4s"\n#EXTINF:1,\ninit.mp4\n');
    put("master.m3u8", variants("a.m3u8", "b.m3u8"));
    expect((await refusal(options("master.m3u8"))).message).toMatch(
      /is named both as an init section \(EXT-X-MAP\) and as a media segment/,
    );
  });
});

describe("odd names and paths are refusals, never crashes", () => {
  it("a % that begins no escape", async () => {
    sample("seg000.ts", "seg%zz.ts");
    put("a.m3u8", media("seg%zz.ts"));
    expect(await refusal(options("a.m3u8"))).toMatchObject({
      code: "UNSUPPORTED_INPUT",
      message:
        'a.m3u8 names "seg%zz.ts", which is not a valid URI: a % must begin an escape of UTF-8 (%25 for a literal %)',
    });
  });

  it("a literal % written as %25 and a space as %20 name the file", async () => {
    sample("seg000.ts", "seg %zz.ts");
    put("a.m3u8", media("seg%20%25zz.ts"));
    const result = await packageHls(options("a.m3u8"));
    expect(result.segments).toBe(1);
    expect(readdirSync(join(work, "out")).sort()).toEqual(["a.m3u8", "seg %zz.ts"]);
  });

  it("an output path that is an existing file, or has a file on its way", async () => {
    sample("seg000.ts", "seg000.ts");
    put("a.m3u8", media("seg000.ts"));
    writeFileSync(join(work, "file"), "x");
    expect(await refusal(options("a.m3u8", { output: join(work, "file") }))).toMatchObject({
      code: "OUTPUT_UNUSABLE",
      message: `output ${join(work, "file")}: it exists and is not a folder`,
    });
    expect(await refusal(options("a.m3u8", { output: join(work, "file", "sub") }))).toMatchObject({
      code: "OUTPUT_UNUSABLE",
      message: expect.stringMatching(/a folder on its path is a file/),
    });
  });

  it("a folder in the way of a file the output needs", async () => {
    sample("seg000.ts", "v/seg000.ts");
    put("v/index.m3u8", media("seg000.ts"));
    put("master.m3u8", variants("v/index.m3u8"));
    mkdirSync(join(work, "out"));
    writeFileSync(join(work, "out", "v"), "a file where a folder must go");
    expect(await refusal(options("master.m3u8", { overwrite: true }))).toMatchObject({
      code: "OUTPUT_UNUSABLE",
      message: expect.stringMatching(/cannot write .*v\/seg000.ts: /),
    });
  });

  it.each<[string, () => string, string, RegExp]>([
    ["a folder as input", () => input, "INPUT_UNREADABLE", /cannot read playlist .*: it is a folder/],
    [
      "a symbolic link loop as input",
      () => {
        symlinkSync("loop.m3u8", join(input, "loop.m3u8"));
        return join(input, "loop.m3u8");
      },
      "INPUT_UNREADABLE",
      /too many levels of symbolic links/,
    ],
    ["a device as input", () => "/dev/zero", "INPUT_UNREADABLE", /it is not a regular file/],
    [
      "a folder named as a segment",
      () => {
        mkdirSync(join(input, "seg.ts"));
        return put("a.m3u8", media("seg.ts"));
      },
      "INPUT_UNREADABLE",
      /cannot read seg.ts: it is a folder/,
    ],
    [
      "a symbolic link loop named as a segment",
      () => {
        symlinkSync("seg.ts", join(input, "seg.ts"));
        return put("a.m3u8", media("seg.ts"));
      },
      "INPUT_UNREADABLE",
      /cannot read seg.ts: too many levels of symbolic links/,
    ],
    [
      "a control character in a name",
      () => put("a.m3u8", media("seg%00.ts")),
      "UNSUPPORTED_INPUT",
      /control characters/,
    ],
    [
      "a playlist larger than any real one",
      () => put("big.m3u8", `#EXTM3U\n${"#".repeat(33 * 1024 * 1024)}\n`),
      "UNSUPPORTED_INPUT",
      /larger than 32 MiB/,
    ],
    [
      "a line of a million characters",
      () => put("a.m3u8", media(`${"x".repeat(1_000_000)}.ts`)),
      "INPUT_UNREADABLE",
      /^cannot read x{200}… \(1000003 characters\): the name is too long$/,
    ],
  ])("%s", async (_, path, code, message) => {
    const error = await refusal({ ...options(""), input: path() });
    expect(error).toMatchObject({ code, message: expect.stringMatching(message) });
    expect(existsSync(join(work, "out"))).toBe(false);
  });

  it("the CLI reports each in one line, without a stack trace", async () => {
    sample("seg000.ts", "seg%zz.ts");
    put("pct.m3u8", media("seg%zz.ts"));
    sample("seg000.ts", "seg000.ts");
    put("ok.m3u8", media("seg000.ts"));
    writeFileSync(join(work, "file"), "x");
    symlinkSync("loop.m3u8", join(input, "loop.m3u8"));
    const cases: [string, string][] = [
      [join(input, "pct.m3u8"), join(work, "out")],
      [join(input, "ok.m3u8"), join(work, "file")],
      [join(input, "loop.m3u8"), join(work, "out")],
      [input, join(work, "out")],
    ];
    for (const [from, to] of cases) {
      const { code, stderr } = await cli([from, to, "--content-id", "rw"]);
      expect(code).toBe(1);
      expect(stderr).toMatch(/^blindcast-pack: [^\n]+\n$/);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe("EXT-X-VERSION", () => {
  const unversioned = (body: string) => body.replace("#EXT-X-VERSION:3\n", "");

  it.each<[string, number, () => string]>([
    ["integer durations", 2, () => put("a.m3u8", unversioned(media("seg000.ts")).replace("2.000000", "2"))],
    ["decimal durations", 3, () => put("a.m3u8", unversioned(media("seg000.ts")))],
    [
      "an init section",
      6,
      () => put("a.m3u8", '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1,\nseg000.ts\n'),
    ],
  ])("is written when the input has none: %s need version %i", async (_, version, playlist) => {
    sample("seg000.ts", "seg000.ts");
    copyFileSync(join(FMP4, "init.mp4"), join(input, "init.mp4"));
    await packageHls({ ...options(""), input: playlist() });
    const lines = readFileSync(join(work, "out/a.m3u8"), "utf8").split("\n");
    expect(lines.slice(0, 2)).toEqual(["#EXTM3U", `#EXT-X-VERSION:${version}`]);
    expect(lines.filter((l) => l.startsWith("#EXT-X-VERSION"))).toHaveLength(1);
  });

  it("is raised to 2 when lower, and kept when higher", async () => {
    sample("seg000.ts", "seg000.ts");
    put("a.m3u8", media("seg000.ts").replace("VERSION:3", "VERSION:1"));
    put("b.m3u8", media("seg000.ts").replace("VERSION:3", "VERSION:7"));
    await packageHls(options("a.m3u8"));
    await packageHls(options("b.m3u8", { output: join(work, "out2") }));
    expect(readFileSync(join(work, "out/a.m3u8"), "utf8")).toContain("\n#EXT-X-VERSION:2\n");
    expect(readFileSync(join(work, "out2/b.m3u8"), "utf8")).toContain("\n#EXT-X-VERSION:7\n");
  });
});

describe("a segment name that is not UTF-8", () => {
  it("is refused as such, not reported missing although the file exists", async () => {
    const name = Buffer.concat([Buffer.from("seg"), Buffer.from([0xff]), Buffer.from(".ts")]);
    copyFileSync(join(SAMPLE, "seg000.ts"), Buffer.concat([Buffer.from(`${input}/`), name]));
    put(
      "a.m3u8",
      Buffer.concat([Buffer.from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n"), name, Buffer.from("\n")]),
    );
    expect(await refusal(options("a.m3u8"))).toMatchObject({
      code: "MALFORMED_PLAYLIST",
      message: expect.stringMatching(/a.m3u8 line 4 is not UTF-8: .*rename it/),
    });
  });

  it("binary input is still reported as not a playlist", async () => {
    put("a.m3u8", new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x0a, 0x80]));
    expect(await refusal(options("a.m3u8"))).toMatchObject({
      code: "MALFORMED_PLAYLIST",
      message: expect.stringMatching(/is not an HLS playlist: its first line must be #EXTM3U/),
    });
  });
});

describe("keyUriBase", () => {
  it("names keys by the key server's GET routes; blindcast:// stays the default", async () => {
    for (const i of [0, 1]) sample(`seg00${i}.ts`, `seg00${i}.ts`);
    put("a.m3u8", media("seg000.ts", "seg001.ts"));
    const result = await packageHls(
      options("a.m3u8", { keyUriBase: "https://keys.example.com/keys/", segmentsPerEpoch: 1 }),
    );
    const uris = ["https://keys.example.com/keys/rw/0", "https://keys.example.com/keys/rw/1"];
    expect(result.keyUris).toEqual(uris);
    const segments = keyedSegments(readFileSync(join(work, "out/a.m3u8"), "utf8"));
    expect(segments.map((s) => s.keyUri)).toEqual(uris);
    for (const s of segments) {
      expect((await decrypted(s, join(work, "out"))).equals(readFileSync(join(input, s.uri)))).toBe(true);
    }

    const content = await packageHls(
      options("a.m3u8", {
        keyUriBase: "http://127.0.0.1:8787/keys",
        contentKey: true,
        output: join(work, "c"),
      }),
    );
    expect(content.keyUris).toEqual(["http://127.0.0.1:8787/keys/rw"]);

    const plain = await packageHls(options("a.m3u8", { output: join(work, "d") }));
    expect(plain.keyUris).toEqual(["blindcast://keys/rw/0"]);
  });

  it.each([
    ["keys.example.com/keys", /is not an absolute URL/],
    ["ftp://keys.example.com/keys", /must be an http: or https: URL/],
    ["https://user:pw@keys.example.com/keys", /must not hold credentials/],
    ["https://keys.example.com/keys?x=1", /no query or fragment/],
    ["https://keys.example.com/keys#x", /no query or fragment/],
    ["", /must be a URL/],
  ])("refuses %j", async (keyUriBase, message) => {
    sample("seg000.ts", "seg000.ts");
    put("a.m3u8", media("seg000.ts"));
    expect(await refusal(options("a.m3u8", { keyUriBase }))).toMatchObject({
      code: "INVALID_OPTIONS",
      message: expect.stringMatching(message),
    });
  });

  it("is --key-uri-base on the command line", async () => {
    sample("seg000.ts", "seg000.ts");
    put("a.m3u8", media("seg000.ts"));
    const out = join(work, "out");
    const run = await cli([
      join(input, "a.m3u8"),
      out,
      "--content-id",
      "rw",
      "--key-uri-base",
      "https://keys.example.com/keys",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(out, "a.m3u8"), "utf8")).toContain(
      'URI="https://keys.example.com/keys/rw/0",IV=0x',
    );
  });
});
