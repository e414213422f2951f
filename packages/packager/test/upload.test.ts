import { spawn } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  MAX_UPLOAD_FILE_BYTES,
  packageHls,
  UploadError,
  type UploadOptions,
  type UploadProgress,
  type UploadRetry,
  uploadStream,
} from "@blindcast/packager";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type MotoServer, startMoto } from "../../../test/support/moto-server.js";
import { type StorageProxy, startStorageProxy } from "../../../test/support/storage-proxy.js";
import { type Publisher, startPublisher } from "./support/publisher.js";

const SAMPLE = new URL("../../../demo/sample/", import.meta.url).pathname;
const CLI = new URL("../dist/upload-cli.js", import.meta.url).pathname;
const masterKey = new Uint8Array(32).map((_, i) => i);
const salt = new Uint8Array(16).map((_, i) => 0xa0 + i);

const SEGMENTS = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `seg00${i}.ts`);
const ALL_FILES = [...SEGMENTS, "index.m3u8", "master.m3u8"].sort();
const CONTENT_TYPES: Record<string, string> = { ts: "video/mp2t", m3u8: "application/vnd.apple.mpegurl" };

let moto: MotoServer;
let storage: StorageProxy;
let publisher: Publisher;
let work: string;
/** The demo sample as blindcast-pack writes it: 8 encrypted segments, a media and a multivariant playlist. */
let packaged: string;

beforeAll(async () => {
  moto = await startMoto();
  storage = await startStorageProxy(moto.endpoint);
  publisher = await startPublisher({ ...moto, endpoint: storage.endpoint });
  work = mkdtempSync(join(tmpdir(), "blindcast-upload-"));
  packaged = join(work, "packaged");
  await packageHls({
    input: join(SAMPLE, "master.m3u8"),
    output: packaged,
    contentId: "demo-sample",
    masterKey,
    salt,
    segmentsPerEpoch: 2,
  });
}, 60_000);

afterAll(async () => {
  await publisher?.close();
  await storage?.close();
  await moto?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

beforeEach(() => storage.reset());

let ids = 0;
/** A content id of its own for each upload, so tests never see each other's objects. */
const freshId = () => `upload-test-${++ids}`;

function options(contentId: string, extra: Partial<UploadOptions> = {}): UploadOptions {
  return {
    dir: packaged,
    contentId,
    keyServerUrl: publisher.keysUrl,
    token: publisher.publisherToken,
    retryDelayMs: 1,
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<UploadError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof UploadError)) throw new Error(`expected an UploadError, got ${String(error)}`);
  return error;
}

/** The object keys under a content id, relative to it. */
async function stored(contentId: string): Promise<string[]> {
  return (await moto.listKeys())
    .filter((k) => k.startsWith(`${contentId}/`))
    .map((k) => k.slice(contentId.length + 1));
}

/** Successful PUTs seen by storage, by path relative to the content id. */
function puts(contentId: string) {
  const prefix = `/${moto.bucket}/${contentId}/`;
  return storage.log
    .filter((e) => e.method === "PUT" && e.path.startsWith(prefix))
    .map((e) => ({ ...e, file: e.path.slice(prefix.length) }));
}

/** What each playlist of a folder names (every non-tag line), read independently of the uploader. */
function playlistNames(dir: string): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".m3u8"))) {
    const lines = readFileSync(join(dir, f), "utf8").split("\n");
    names.set(
      f,
      lines.filter((l) => l.trim() && !l.startsWith("#")),
    );
  }
  return names;
}

/** Nothing a failure reports may contain the token or a presigned URL's signature. */
function expectNoSecrets(text: string) {
  expect(text).not.toContain(publisher.publisherToken);
  expect(text).not.toMatch(/X-Amz-Signature=[0-9a-f]/i);
  expect(text).not.toMatch(/X-Amz-Credential=[A-Za-z0-9]/i);
  // The signatures of the URLs storage was actually sent, wherever they might be quoted.
  const signatures = storage.log.map((e) => new URLSearchParams(e.query).get("X-Amz-Signature"));
  expect(signatures.length).toBeGreaterThan(0);
  for (const signature of signatures) {
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(text).not.toContain(signature);
  }
}

function errorText(error: UploadError): string {
  return JSON.stringify({ message: error.message, failed: error.failed });
}

describe("uploadStream against real storage (moto) through the key server", () => {
  it("uploads every file with its bytes and content type, each playlist after the files it names", async () => {
    const contentId = freshId();
    const progress: UploadProgress[] = [];
    const result = await uploadStream(
      options(contentId, { concurrency: 2, onProgress: (p) => progress.push(p) }),
    );

    expect([...result.uploaded].sort()).toEqual(ALL_FILES);
    expect(result.skipped).toEqual([]);
    expect(result.ignored).toEqual([]);
    expect(result.entryPlaylists).toEqual(["master.m3u8"]);
    const bytesTotal = ALL_FILES.reduce((sum, f) => sum + statSync(join(packaged, f)).size, 0);
    expect(result.bytesUploaded).toBe(bytesTotal);

    expect(await stored(contentId)).toEqual(ALL_FILES);
    for (const file of ALL_FILES) {
      const object = await moto.getObject(`${contentId}/${file}`);
      expect(object?.body.equals(readFileSync(join(packaged, file))), file).toBe(true);
      expect(object?.contentType).toBe(CONTENT_TYPES[file.split(".").pop() ?? ""]);
    }

    // Order as storage saw it: a playlist's PUT arrives only after every file it names was stored.
    const seen = new Map(puts(contentId).map((p) => [p.file, p]));
    expect([...seen.keys()].sort()).toEqual(ALL_FILES);
    for (const [playlist, names] of playlistNames(packaged)) {
      for (const name of names) {
        expect(seen.get(name)?.finished, `${name} before ${playlist}`).toBeLessThan(
          seen.get(playlist)?.started ?? 0,
        );
      }
    }
    expect(storage.maxInFlight.get("PUT")).toBeLessThanOrEqual(2);

    expect(progress).toHaveLength(ALL_FILES.length);
    expect(progress.map((p) => p.filesUploaded)).toEqual(ALL_FILES.map((_, i) => i + 1));
    expect(progress.at(-1)).toMatchObject({
      filesUploaded: 10,
      filesSkipped: 0,
      filesFailed: 0,
      filesTotal: 10,
      bytesUploaded: bytesTotal,
      bytesTotal,
    });
  });

  it("resumes: a second run skips every file; after a change, only the changed file is uploaded", async () => {
    const contentId = freshId();
    const dir = join(work, `resume-${contentId}`);
    cpSync(packaged, dir, { recursive: true });
    await uploadStream(options(contentId, { dir }));

    storage.reset();
    const again = await uploadStream(options(contentId, { dir }));
    expect(again.uploaded).toEqual([]);
    expect([...again.skipped].sort()).toEqual(ALL_FILES);
    expect(puts(contentId)).toEqual([]);

    const changed = readFileSync(join(dir, "seg003.ts"));
    changed[100] = (changed[100] ?? 0) ^ 0xff;
    writeFileSync(join(dir, "seg003.ts"), changed);
    storage.reset();
    const third = await uploadStream(options(contentId, { dir }));
    expect(third.uploaded).toEqual(["seg003.ts"]);
    expect(third.skipped).toHaveLength(9);
    expect((await moto.getObject(`${contentId}/seg003.ts`))?.body.equals(changed)).toBe(true);

    // Without resume, everything is sent again.
    storage.reset();
    const all = await uploadStream(options(contentId, { dir, resume: false }));
    expect(all.uploaded).toHaveLength(10);
    expect(storage.log.filter((e) => e.method === "HEAD")).toEqual([]);
  });

  it("retries dropped connections, 503 with Retry-After, 500 and an answer that never comes, then succeeds", async () => {
    const contentId = freshId();
    storage.setRule(({ method, path, attempt }) => {
      if (method !== "PUT" || attempt > 1) return "forward";
      if (path.endsWith("/seg001.ts")) return "drop";
      if (path.endsWith("/seg002.ts")) return { status: 503, headers: { "retry-after": "1" } };
      if (path.endsWith("/seg003.ts")) return "hang";
      if (path.endsWith("/index.m3u8")) return { status: 500 };
      return "forward";
    });
    const retries: UploadRetry[] = [];
    const started = Date.now();
    const result = await uploadStream(
      options(contentId, { timeoutMs: 3000, onRetry: (r) => retries.push(r) }),
    );
    expect([...result.uploaded].sort()).toEqual(ALL_FILES);
    expect(retries.map((r) => r.path).sort()).toEqual(["index.m3u8", "seg001.ts", "seg002.ts", "seg003.ts"]);
    expect(retries.find((r) => r.path === "seg002.ts")?.delayMs).toBeGreaterThanOrEqual(1000);
    expect(retries.find((r) => r.path === "seg003.ts")?.reason).toMatch(/no answer within 3000 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // Retry-After was honoured
    for (const file of ALL_FILES) {
      expect(
        (await moto.getObject(`${contentId}/${file}`))?.body.equals(readFileSync(join(packaged, file))),
      ).toBe(true);
    }
  });

  it("a file that keeps failing: UploadError listing it, what did upload, and no playlist naming it", async () => {
    const contentId = freshId();
    storage.setRule(({ method, path }) =>
      method === "PUT" && path.endsWith("/seg003.ts") ? { status: 503 } : "forward",
    );
    const error = await rejection(uploadStream(options(contentId, { retries: 2 })));
    expect(error.code).toBe("UPLOAD_FAILED");
    expect(puts(contentId).filter((p) => p.file === "seg003.ts")).toHaveLength(3);
    expect(error.failed.map((f) => f.path)).toEqual(["seg003.ts", "index.m3u8", "master.m3u8"]);
    expect(error.failed[0]?.reason).toMatch(/HTTP 503.*after 3 attempts/);
    expect(error.failed[1]?.reason).toBe("not uploaded: it names seg003.ts, which did not upload");
    expect(error.failed[2]?.reason).toBe("not uploaded: it names index.m3u8, which did not upload");
    expect([...error.uploaded].sort()).toEqual(SEGMENTS.filter((s) => s !== "seg003.ts"));
    expect(error.message).toMatch(
      /^3 of 10 files not uploaded \(7 uploaded, 0 already there\): seg003\.ts: /,
    );
    expect(await stored(contentId)).toEqual(SEGMENTS.filter((s) => s !== "seg003.ts"));
    expectNoSecrets(errorText(error));
  });

  it("does not retry a 4xx other than 408 and 429", async () => {
    const contentId = freshId();
    storage.setRule(({ method, path }) =>
      method === "PUT" && path.endsWith("/seg002.ts")
        ? { status: 400, body: "<Error><Code>BadDigest</Code><Message>no</Message></Error>" }
        : "forward",
    );
    const error = await rejection(uploadStream(options(contentId)));
    expect(puts(contentId).filter((p) => p.file === "seg002.ts")).toHaveLength(1);
    expect(error.failed[0]).toMatchObject({
      path: "seg002.ts",
      reason: expect.stringMatching(/HTTP 400: BadDigest: no/),
    });
  });

  it("does not wait for a Retry-After longer than 5 minutes: the file fails and says why", async () => {
    const contentId = freshId();
    storage.setRule(({ method, path }) =>
      method === "PUT" && path.endsWith("/seg001.ts")
        ? { status: 503, headers: { "retry-after": "3600" } }
        : "forward",
    );
    const error = await rejection(uploadStream(options(contentId)));
    expect(puts(contentId).filter((p) => p.file === "seg001.ts")).toHaveLength(1);
    expect(error.failed[0]).toEqual({
      path: "seg001.ts",
      reason: expect.stringMatching(
        /HTTP 503; the server asked to retry after 3600 s, longer than this waits/,
      ),
    });
  });

  it("asks for a fresh URL once when storage answers 403 (an expired URL); a second 403 fails the file", async () => {
    const contentId = freshId();
    const expired = {
      status: 403,
      headers: { "content-type": "application/xml" },
      body: "<Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>900</X-Amz-Expires></Error>",
    };
    storage.setRule(({ method, path, attempt }) => {
      if (method === "PUT" && path.endsWith("/seg004.ts") && attempt === 1) return expired;
      if (method === "PUT" && path.endsWith("/seg005.ts")) return expired;
      return "forward";
    });
    const presigned: string[] = [];
    const recording: typeof fetch = async (input, init) => {
      if (init?.method === "POST") {
        for (const f of (JSON.parse(String(init.body)) as { files: { path: string }[] }).files)
          presigned.push(f.path);
      }
      return fetch(input, init);
    };
    const error = await rejection(uploadStream(options(contentId, { fetch: recording })));
    expect(presigned.filter((p) => p === "seg004.ts")).toHaveLength(2);
    expect(presigned.filter((p) => p === "seg005.ts")).toHaveLength(2);
    expect(error.uploaded).toContain("seg004.ts");
    expect(error.failed[0]).toEqual({
      path: "seg005.ts",
      reason: expect.stringMatching(
        /^storage answered HTTP 403: AccessDenied: Request has expired \(PUT http:\/\/127\.0\.0\.1:\d+\/[^?]*seg005\.ts\)$/,
      ),
    });
    expect(puts(contentId).filter((p) => p.file === "seg005.ts")).toHaveLength(2);
  });

  it("asks for URLs again before they expire when uploads take longer than their lifetime", async () => {
    const contentId = freshId();
    // The server's shortest lifetime is 60 s; the answer is given a 1 s one (counted from its
    // Date header, as the uploader counts), and each PUT is held 250 ms.
    let presigns = 0;
    const shortLived: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (init?.method !== "POST") return response;
      presigns++;
      const body = (await response.json()) as { expiresAt: string };
      const date = Date.parse(response.headers.get("date") ?? "");
      body.expiresAt = new Date(date + 1000).toISOString();
      return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
    };
    storage.setRule(({ method }) => (method === "PUT" ? { delayMs: 250 } : "forward"));
    const result = await uploadStream(options(contentId, { fetch: shortLived, concurrency: 1 }));
    expect(result.uploaded).toHaveLength(10);
    // One request for the 8 segments would do if URLs lasted: these are renewed after 0.75 s.
    expect(presigns).toBeGreaterThan(3);
  });

  it("presigns just in time in batches no larger than batchSize, each file once", async () => {
    const contentId = freshId();
    const batches: string[][] = [];
    const recording: typeof fetch = async (input, init) => {
      if (init?.method === "POST")
        batches.push(
          (JSON.parse(String(init.body)) as { files: { path: string }[] }).files.map((f) => f.path),
        );
      return fetch(input, init);
    };
    await uploadStream(options(contentId, { fetch: recording, batchSize: 3, concurrency: 2 }));
    expect(batches.every((b) => b.length >= 1 && b.length <= 3)).toBe(true);
    expect(batches.flat().sort()).toEqual(ALL_FILES);
    // Playlists are presigned only once their level starts, after every segment is up.
    expect(batches.at(-1)).toEqual(["master.m3u8"]);

    // With the default batch size, one request per level: the workers share the first one.
    batches.length = 0;
    await uploadStream(options(freshId(), { fetch: recording }));
    expect(batches).toEqual([SEGMENTS, ["index.m3u8"], ["master.m3u8"]]);
  });

  it("retries the key server when it is overloaded, and stops with KEY_SERVER_UNAVAILABLE when it stays so", async () => {
    const keys = await startStorageProxy(new URL(publisher.keysUrl).origin);
    try {
      const contentId = freshId();
      keys.setRule(({ attempt }) =>
        attempt === 1 ? { status: 503, headers: { "retry-after": "0" } } : "forward",
      );
      const result = await uploadStream(options(contentId, { keyServerUrl: `${keys.endpoint}/keys` }));
      expect(result.uploaded).toHaveLength(10);

      const down = freshId();
      keys.setRule(() => ({ status: 503, body: '{"error":"busy","code":"overloaded"}' }));
      const error = await rejection(uploadStream(options(down, { keyServerUrl: keys.endpoint, retries: 1 })));
      expect(error.code).toBe("KEY_SERVER_UNAVAILABLE");
      expect(error.message).toMatch(
        /could not get upload URLs: the key server answered HTTP 503: busy \(overloaded\) \(after 2 attempts\)/,
      );
      expect(error.uploaded).toEqual([]);
      expect(error.failed.map((f) => f.path).sort()).toEqual(ALL_FILES);
      expect(await stored(down)).toEqual([]);
    } finally {
      await keys.close();
    }
  });

  it("a viewer's token: FORBIDDEN and nothing stored; a wrong token: UNAUTHORIZED", async () => {
    const contentId = freshId();
    const forbidden = await rejection(uploadStream(options(contentId, { token: publisher.viewerToken })));
    expect(forbidden.code).toBe("FORBIDDEN");
    expect(forbidden.message).toMatch(/publisher_required/);
    expect(forbidden.failed.map((f) => f.path).sort()).toEqual(ALL_FILES);
    expect(forbidden.message).not.toContain(publisher.viewerToken);
    const unauthorized = await rejection(uploadStream(options(contentId, { token: "not-a-token" })));
    expect(unauthorized.code).toBe("UNAUTHORIZED");
    expect(await stored(contentId)).toEqual([]);
  });

  it("stops when aborted and reports every file: uploaded, or not, with why", async () => {
    const contentId = freshId();
    const controller = new AbortController();
    const error = await rejection(
      uploadStream(
        options(contentId, {
          signal: controller.signal,
          concurrency: 1,
          onProgress: () => controller.abort(),
        }),
      ),
    );
    expect(error.code).toBe("ABORTED");
    expect(error.uploaded).toEqual(["seg000.ts"]);
    expect(error.failed.map((f) => f.path).sort()).toEqual(ALL_FILES.filter((f) => f !== "seg000.ts"));
    expect(error.failed.find((f) => f.path === "master.m3u8")?.reason).toBe(
      "not attempted: the upload was aborted",
    );
    expect(await stored(contentId)).toEqual(["seg000.ts"]);
  });

  it("leaves out hidden files and other types, and reports them", async () => {
    const contentId = freshId();
    const dir = join(work, `extra-${contentId}`);
    cpSync(packaged, dir, { recursive: true });
    writeFileSync(join(dir, ".DS_Store"), "x");
    writeFileSync(join(dir, "notes.txt"), "x");
    mkdirSync(join(dir, ".cache"));
    writeFileSync(join(dir, ".cache/seg000.ts"), "x");
    const result = await uploadStream(options(contentId, { dir }));
    expect(result.uploaded).toHaveLength(10);
    expect(result.ignored).toEqual([
      { path: ".DS_Store", reason: "hidden" },
      { path: ".cache", reason: "hidden" },
      { path: "notes.txt", reason: "not a type the key server accepts (.txt)" },
    ]);
    expect(await stored(contentId)).toEqual(ALL_FILES);
  });
});

describe("uploadStream refuses before sending anything", () => {
  const requests: string[] = [];
  const counting: typeof fetch = (input, init) => {
    requests.push(String(input));
    return fetch(input, init);
  };
  beforeEach(() => {
    requests.length = 0;
  });

  function folder(files: Record<string, string>): string {
    const dir = mkdtempSync(join(work, "folder-"));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, ".."), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }
  const refusal = (dir: string, extra: Partial<UploadOptions> = {}) =>
    rejection(uploadStream(options("refused", { dir, fetch: counting, ...extra })));

  it("a playlist naming a file that is not in the folder, or not uploadable, or above it", async () => {
    const missing = await refusal(
      folder({ "a.m3u8": "#EXTM3U\n#EXTINF:2,\nseg0.ts\n#EXTINF:2,\nseg1.ts\n", "seg0.ts": "x" }),
    );
    expect(missing.code).toBe("MISSING_REFERENCE");
    expect(missing.message).toMatch(/a\.m3u8 names seg1\.ts, which is not in the folder/);
    const ignored = await refusal(
      folder({
        "a.m3u8": '#EXTM3U\n#EXT-X-MAP:URI="init.bin"\n#EXTINF:2,\ns.ts\n',
        "s.ts": "x",
        "init.bin": "x",
      }),
    );
    expect(ignored.message).toMatch(
      /names init\.bin, which is not uploaded \(not a type the key server accepts \(\.bin\)\)/,
    );
    const outside = await refusal(folder({ "v/a.m3u8": "#EXTM3U\n#EXTINF:2,\n../../s.ts\n" }));
    expect(outside.message).toMatch(/v\/a\.m3u8 names \.\.\/\.\.\/s\.ts, outside the folder/);
    expect(requests).toEqual([]);
  });

  it("names the key server would refuse, playlists in a circle, an empty folder, bad options", async () => {
    expect((await refusal(folder({ "my seg.ts": "x" }))).code).toBe("INVALID_PATH");
    const cycle = await refusal(
      folder({
        "a.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nb.m3u8\n",
        "b.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n",
      }),
    );
    expect(cycle.code).toBe("PLAYLIST_CYCLE");
    expect(cycle.message).toMatch(/a\.m3u8 → b\.m3u8 → a\.m3u8/);
    const big = folder({ "a.ts": "x", "big.ts": "" });
    truncateSync(join(big, "big.ts"), MAX_UPLOAD_FILE_BYTES + 1); // sparse: no disk used
    const tooLarge = await refusal(big);
    expect(tooLarge.code).toBe("FILE_TOO_LARGE");
    expect(tooLarge.message).toMatch(/: big\.ts$/);
    expect((await refusal(folder({ "notes.txt": "x" }))).code).toBe("INVALID_FOLDER");
    expect((await refusal(join(work, "does-not-exist"))).code).toBe("INVALID_FOLDER");
    for (const bad of [
      { concurrency: 0 },
      { retries: -1 },
      { batchSize: 1001 },
      { contentId: ".." },
      { keyServerUrl: "ftp://example.com" },
      { keyServerUrl: "http://keys.example.com/keys" }, // the token would cross in clear
      { keyServerUrl: "http://127.0.0.1/keys?token=secret" },
      { keyServerUrl: "http://user:secret@127.0.0.1/keys" },
      { token: "two words" },
      { token: "" },
    ]) {
      const error = await refusal(packaged, bad);
      expect(error.code, JSON.stringify(bad)).toBe("INVALID_OPTIONS");
      expect(error.message).not.toContain("secret");
    }
    expect(requests).toEqual([]);
  });

  it("follows URIs in playlists: EXT-X-MAP init sections and renditions in subfolders, orders levels", async () => {
    const dir = folder({
      "master.m3u8":
        '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="audio/en.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="a"\nv0/index.m3u8\n',
      "v0/index.m3u8":
        '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXT-X-KEY:METHOD=AES-128,URI="blindcast://keys/x/0",IV=0x00000000000000000000000000000000\n#EXTINF:2,\nseg%200.m4s?v=1\n',
      "v0/init.mp4": "init",
      "v0/seg 0.m4s": "seg",
      "audio/en.m3u8": "#EXTM3U\n#EXTINF:2,\na0.m4s\n",
      "audio/a0.m4s": "audio",
    });
    // "seg 0.m4s" is a name the key server refuses: the folder is refused as a whole.
    expect((await refusal(dir)).code).toBe("INVALID_PATH");
    rmSync(join(dir, "v0/seg 0.m4s"));
    writeFileSync(join(dir, "v0/seg0.m4s"), "seg");
    writeFileSync(
      join(dir, "v0/index.m3u8"),
      readFileSync(join(dir, "v0/index.m3u8"), "utf8").replace("seg%200.m4s", "seg0.m4s"),
    );
    const contentId = freshId();
    storage.reset();
    const result = await uploadStream(options(contentId, { dir, concurrency: 1 }));
    expect(result.entryPlaylists).toEqual(["master.m3u8"]);
    expect(result.uploaded.slice(0, 3).sort()).toEqual(["audio/a0.m4s", "v0/init.mp4", "v0/seg0.m4s"]);
    expect(result.uploaded.slice(3, 5).sort()).toEqual(["audio/en.m3u8", "v0/index.m3u8"]);
    expect(result.uploaded[5]).toBe("master.m3u8");
    expect(await stored(contentId)).toEqual([...result.uploaded].sort());
  });
});

describe("blindcast-upload", () => {
  function run(args: string[], env: Record<string, string | undefined> = {}) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { PATH: process.env.PATH ?? "", ...env } as NodeJS.ProcessEnv,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => {
        stdout += c;
      });
      child.stderr.on("data", (c: Buffer) => {
        stderr += c;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.once("error", reject);
      child.once("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it("exits 0 when everything is up, and says what it did; again, all already there", async () => {
    const contentId = freshId();
    const args = [
      packaged,
      "--content-id",
      contentId,
      "--key-server",
      publisher.keysUrl,
      "--concurrency",
      "3",
    ];
    const first = await run(args, { BLINDCAST_TOKEN: publisher.publisherToken });
    expect(first.stderr).toMatch(
      /done: 10 uploaded \([\d.]+ MB\), 0 already there, in [\d.]+ s; play master\.m3u8 of content/,
    );
    expect(first.code).toBe(0);
    expect(await stored(contentId)).toEqual(ALL_FILES);
    const second = await run(args, { BLINDCAST_TOKEN: publisher.publisherToken });
    expect(second.stderr).toMatch(/done: 0 uploaded \(0\.0 MB\), 10 already there/);
    expect(second.code).toBe(0);
  });

  it("exits 1 with a summary when a file does not upload, and uploads no playlist naming it", async () => {
    const contentId = freshId();
    storage.setRule(({ method, path }) =>
      method === "PUT" && path.endsWith("/seg006.ts") ? { status: 503 } : "forward",
    );
    const failed = await run(
      [packaged, "--content-id", contentId, "--key-server", publisher.keysUrl, "--retries", "1"],
      {
        BLINDCAST_TOKEN: publisher.publisherToken,
      },
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/failed \(UPLOAD_FAILED\): 3 of 10 files not uploaded/);
    expect(failed.stderr).toMatch(/\n {2}seg006\.ts: storage answered HTTP 503/);
    expect(failed.stderr).toMatch(/\n {2}master\.m3u8: not uploaded/);
    expect(failed.stderr).not.toMatch(/done/);
    expectNoSecrets(failed.stderr + failed.stdout);
    expect(await stored(contentId)).toEqual(SEGMENTS.filter((s) => s !== "seg006.ts"));

    // Files failing for one reason are one line.
    const viewer = await run([packaged, "--content-id", freshId(), "--key-server", publisher.keysUrl], {
      BLINDCAST_TOKEN: publisher.viewerToken,
    });
    expect(viewer.code).toBe(1);
    expect(viewer.stderr).toMatch(
      /failed \(FORBIDDEN\): the key server refused: HTTP 403: .*publisher_required/,
    );
    // The files being worked on when the refusal came; then the rest, not attempted.
    expect(viewer.stderr).toMatch(
      /\n {2}\d files \(seg000\.ts, seg001\.ts, seg002\.ts, …\): the key server refused/,
    );
    expect(viewer.stderr).toMatch(/\n {2}\d files \([^)]*\): not attempted: the key server refused/);
    expect(viewer.stderr.trim().split("\n")).toHaveLength(4);
    expect(viewer.stderr).not.toContain(publisher.viewerToken);
  });

  it("exits 2 on usage errors: no token in the environment, a missing flag, a bad number, a token flag", async () => {
    const base = [packaged, "--content-id", "x", "--key-server", publisher.keysUrl];
    const noToken = await run(base);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/BLINDCAST_TOKEN is not set/);
    const env = { BLINDCAST_TOKEN: publisher.publisherToken };
    expect((await run([packaged, "--key-server", publisher.keysUrl], env)).code).toBe(2);
    expect((await run([...base, "--concurrency", "many"], env)).code).toBe(2);
    expect((await run([...base, "--concurrency", "0"], env)).code).toBe(2);
    expect((await run([...base, "--token", "abc"], env)).code).toBe(2);
    expect(
      (await run([join(work, "nowhere"), "--content-id", "x", "--key-server", publisher.keysUrl], env)).code,
    ).toBe(2);
  });
});
