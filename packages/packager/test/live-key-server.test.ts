// Live packaging with keys from the key server: watchHls and blindcast-pack --watch with only a
// publisher's token, against a real key server (node:http, JWT auth, publishing on) whose master
// key is the one the live tests derive their expected keys from.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { type RunningKeyServer, startKeyServer } from "@blindcast/keys/node";
import {
  createKeyServerKeySource,
  createMasterKeySource,
  type KeyId,
  type KeyServerKeySourceOptions,
  type KeySource,
  PackagerError,
  packageHls,
  type WatchOptions,
  type WatchStreamOptions,
  watchHls,
} from "@blindcast/packager";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLiveEncoder } from "../../../test/support/live-encoder.mjs";
import { expectDecrypts, masterKey, type Named, named, recorder, salt, until } from "./support/live.js";
import { hs256Token } from "./support/publisher.js";

const CLI = new URL("../dist/cli.js", import.meta.url).pathname;
const SECRET = "a live test secret of at least thirty-two bytes";

const token = (scope: string, expires: string | number = "5m") => hs256Token(SECRET, { scope, expires });

let keyServer: RunningKeyServer;
let publisherToken: string;
let viewerToken: string;
let expiredToken: string;
beforeAll(async () => {
  keyServer = await startKeyServer({
    port: 0,
    masterKey,
    salt,
    corsOrigins: "*",
    audit: false,
    logger: { warn() {}, error() {} },
    authenticate: createJwtAuthenticator({ secret: SECRET, publisherScope: "blindcast:publish" }),
    publish: {},
  });
  publisherToken = await token("openid blindcast:publish");
  viewerToken = await token("openid");
  expiredToken = await token("openid blindcast:publish", Math.floor(Date.now() / 1000) - 120);
});
afterAll(async () => {
  await keyServer?.close();
});

let work: string;
let input: string;
let output: string;
const closers: (() => Promise<unknown>)[] = [];
const children: ChildProcess[] = [];
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "blindcast-live-keys-"));
  input = join(work, "in");
  output = join(work, "out");
  mkdirSync(input);
});
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  for (const close of closers.splice(0)) await close();
  rmSync(work, { recursive: true, force: true });
});

/**
 * A real HTTP proxy on 127.0.0.1 in front of the key server: records the epochs each request
 * asks, and, while `mode` says so, answers 503 (the server down) or passes the request on with
 * another token instead of the publisher's: a viewer's, or the publisher's expired.
 */
type ProxyMode = "pass" | "down" | "viewer" | "expired";
async function startProxy() {
  const state = { mode: "pass" as ProxyMode, asked: [] as unknown[][] };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    if (state.mode === "down") {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "down for the test", code: "unavailable" }));
      return;
    }
    state.asked.push((JSON.parse(body) as { keys: unknown[] }).keys);
    const authorization =
      state.mode === "viewer"
        ? `Bearer ${viewerToken}`
        : state.mode === "expired"
          ? `Bearer ${expiredToken}`
          : (req.headers.authorization ?? "");
    const answer = await fetch(`${keyServer.keysUrl}${(req.url ?? "").replace(/^\/keys/, "")}`, {
      method: req.method ?? "POST",
      headers: { authorization, "content-type": req.headers["content-type"] ?? "" },
      body,
    });
    res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "" });
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  closers.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`, state };
}

const liveStream = (extra: Partial<WatchStreamOptions> = {}): WatchStreamOptions => ({
  input: join(input, "index.m3u8"),
  output,
  contentId: "live-1",
  segmentsPerEpoch: 1,
  pollIntervalMs: 20,
  ...extra,
});
/** Keys from the key server at `url` with the publisher's token. */
const watchOptions = (
  url: string,
  extra: Partial<WatchStreamOptions> = {},
  source: Partial<KeyServerKeySourceOptions> = {},
): WatchOptions => ({
  ...liveStream(extra),
  keys: createKeyServerKeySource({ url, token: publisherToken, ...source }),
});

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(PackagerError);
      return error as PackagerError;
    },
  );

/** Every segment of the output's playlist decrypts with its epoch's contract key. */
async function expectAllDecrypt(encoder: ReturnType<typeof createLiveEncoder>) {
  const segments = named(readFileSync(join(output, "index.m3u8"), "utf8"));
  for (const segment of segments) {
    await expectDecrypts(join(output, segment.uri), segment, encoder.segmentAt(segment.sequence).clear);
  }
  return segments;
}

describe("watchHls with keys from the key server", () => {
  it("asks for each new epoch's key with the next four, one request per five epochs, and the keys are the server's", async () => {
    const proxy = await startProxy();
    // More epochs than the watch holds keys (16): the oldest are dropped as the stream goes on.
    const encoder = createLiveEncoder({ dir: input, count: 22, window: 4 });
    const rec = recorder(output);
    const watch = watchHls(watchOptions(proxy.url, { onEvent: rec.onEvent }));
    for (let i = 0; i < 22; i++) {
      await encoder.next();
      await until(`sequence ${i} published`, () => rec.reached(i));
    }
    await encoder.end();
    expect(await watch.done).toMatchObject({ ended: true, segments: 22 });

    // An epoch per segment, 22 epochs: five requests, not 22, each before its epoch's first
    // segment was written.
    expect(proxy.state.asked).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
      [10, 11, 12, 13, 14],
      [15, 16, 17, 18, 19],
      [20, 21, 22, 23, 24],
    ]);
    const epochs = rec.events.flatMap((e) => (e.type === "segment" ? [e.epoch] : []));
    expect(epochs).toEqual(Array.from({ length: 22 }, (_, i) => i));
    // Every segment, in the window or slid out of it (still on disk), decrypts with its epoch's
    // contract key, with the IV the playlists named.
    const segments = new Map<string, Named>();
    for (const version of rec.published)
      for (const segment of named(version)) segments.set(segment.uri, segment);
    expect(segments.size).toBe(22);
    for (const segment of segments.values()) {
      expect(segment.keyUri).toBe(`blindcast://keys/live-1/${segment.sequence}`);
      await expectDecrypts(join(output, segment.uri), segment, encoder.segmentAt(segment.sequence).clear);
    }
  });

  it("a backlog of epochs (the watch started late): one request for all of them, before any is written", async () => {
    const proxy = await startProxy();
    // More epochs in one step than the watch otherwise holds keys (16): none is dropped before use.
    const encoder = createLiveEncoder({ dir: input, count: 21, window: 20 });
    for (let i = 0; i < 20; i++) await encoder.next();
    const rec = recorder(output);
    const watch = watchHls(watchOptions(proxy.url, { onEvent: rec.onEvent }));
    await until("the backlog published", () => rec.reached(19));
    // Epochs 0 to 19, and the four after them.
    expect(proxy.state.asked).toEqual([Array.from({ length: 24 }, (_, i) => i)]);
    await encoder.next();
    await until("sequence 20 published", () => rec.reached(20));
    await encoder.end();
    expect(await watch.done).toMatchObject({ ended: true, segments: 21 });
    expect(proxy.state.asked).toHaveLength(1);
    await expectAllDecrypt(encoder);
  });

  it.each<[string, Partial<WatchStreamOptions>, unknown]>([
    ["one epoch for the whole stream", { segmentsPerEpoch: undefined }, 0],
    ["the content key", { segmentsPerEpoch: undefined, contentKey: true }, "content"],
  ])("%s: one request for one key", async (_, extra, id) => {
    const proxy = await startProxy();
    const encoder = createLiveEncoder({ dir: input, count: 6, window: 3 });
    const rec = recorder(output);
    const watch = watchHls(watchOptions(proxy.url, { ...extra, onEvent: rec.onEvent }));
    for (let i = 0; i < 6; i++) {
      await encoder.next();
      await until(`sequence ${i} published`, () => rec.reached(i));
    }
    await encoder.end();
    expect(await watch.done).toMatchObject({ ended: true, segments: 6 });
    expect(proxy.state.asked).toEqual([[id]]);
    await expectAllDecrypt(encoder);
  });

  it("a key server down for a while: keys asked ahead carry on; a new epoch waits, writing nothing, until it is back", async () => {
    const proxy = await startProxy();
    const encoder = createLiveEncoder({ dir: input, count: 7, window: 4 });
    const rec = recorder(output);
    const watch = watchHls(
      watchOptions(proxy.url, { onEvent: rec.onEvent, stallTimeoutMs: 20_000 }, { retries: 0 }),
    );
    await encoder.next();
    await until("sequence 0 published", () => rec.reached(0));
    expect(proxy.state.asked).toEqual([[0, 1, 2, 3, 4]]);

    proxy.state.mode = "down";
    // Epochs 1 to 4 were asked with epoch 0: no request, nothing to wait for.
    for (let i = 1; i < 5; i++) {
      await encoder.next();
      await until(`sequence ${i} published`, () => rec.reached(i));
    }
    expect(rec.count("waiting")).toBe(0);
    const published = readFileSync(join(output, "index.m3u8"), "utf8");

    // Epoch 5 needs a request: the step fails before writing anything, and the watch waits.
    await encoder.next();
    await until("waiting for the key server", () => rec.count("waiting") > 0);
    const waiting = rec.events.find((e) => e.type === "waiting");
    expect(waiting).toMatchObject({ code: "KEY_SERVER_UNAVAILABLE" });
    expect(waiting?.type === "waiting" && waiting.message).toMatch(
      /key server http:\/\/127\.0\.0\.1:\d+\/keys could not give the keys of live-1: down for the test \(HTTP 503 unavailable\)/,
    );
    await new Promise((resolve) => setTimeout(resolve, 100)); // several polls
    expect(existsSync(join(output, "live5.ts"))).toBe(false);
    expect(readFileSync(join(output, "index.m3u8"), "utf8")).toBe(published);

    proxy.state.mode = "pass";
    await until("sequence 5 published once the key server is back", () => rec.reached(5));
    await encoder.next();
    await until("sequence 6 published", () => rec.reached(6));
    await encoder.end();
    expect(await watch.done).toMatchObject({ ended: true, segments: 7 });
    // Reported once, however many polls saw it.
    expect(rec.count("waiting")).toBe(1);
    expect(proxy.state.asked).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
    ]);
    await expectAllDecrypt(encoder);
  });

  it("a key server down for longer than the stall timeout fails the watch with KEY_SERVER_UNAVAILABLE", async () => {
    const proxy = await startProxy();
    proxy.state.mode = "down";
    const encoder = createLiveEncoder({ dir: input, count: 2 });
    await encoder.next();
    const watch = watchHls(watchOptions(proxy.url, { stallTimeoutMs: 300 }, { retries: 0 }));
    const error = await failure(watch.done);
    expect(error.code).toBe("KEY_SERVER_UNAVAILABLE");
    expect(error.message).toMatch(/down for the test .*\(still so after [0-9.]+ s\)$/);
    expect(existsSync(join(output, "index.m3u8"))).toBe(false);
  });

  it.each<[string, ProxyMode, number]>([
    ["a token that expired", "expired", 401],
    ["a token no longer a publisher's", "viewer", 403],
  ])(
    "%s fails the watch at once; the output stays valid and a new token continues it",
    async (_, mode, status) => {
      const proxy = await startProxy();
      const encoder = createLiveEncoder({ dir: input, count: 8, window: 4 });
      const rec = recorder(output);
      const watch = watchHls(watchOptions(proxy.url, { onEvent: rec.onEvent, stallTimeoutMs: 20_000 }));
      for (let i = 0; i < 5; i++) {
        await encoder.next();
        await until(`sequence ${i} published`, () => rec.reached(i));
      }
      const published = readFileSync(join(output, "index.m3u8"), "utf8");
      proxy.state.mode = mode;
      await encoder.next(); // sequence 5: epoch 5, not held
      const error = await failure(watch.done);
      expect(error.code).toBe("KEY_SERVER_UNAUTHORIZED");
      expect(error.keyServer?.status).toBe(status);
      for (const secret of [publisherToken, viewerToken, expiredToken])
        expect(error.message).not.toContain(secret);
      // The last published playlist is untouched, every segment it names on disk; live5.ts not written.
      expect(readFileSync(join(output, "index.m3u8"), "utf8")).toBe(published);
      expect(existsSync(join(output, "live5.ts"))).toBe(false);
      await expectAllDecrypt(encoder);

      proxy.state.mode = "pass";
      const rec2 = recorder(output);
      const watch2 = watchHls(watchOptions(proxy.url, { onEvent: rec2.onEvent }));
      await until("sequence 5 published", () => rec2.reached(5));
      for (let i = 6; i < 8; i++) {
        await encoder.next();
        await until(`sequence ${i} published`, () => rec2.reached(i));
      }
      await encoder.end();
      expect(await watch2.done).toMatchObject({ ended: true, segments: 3 });
      expect(rec2.events[0]).toEqual({ type: "resumed", segments: 4 });
      await expectAllDecrypt(encoder);
    },
  );
});

describe("keys from a KeySource of your own", () => {
  /** The master key as a source that keeps every key it gives, to look at them afterwards. */
  const recordingSource = () => {
    const given: [KeyId, Uint8Array][] = [];
    const inner = createMasterKeySource({ masterKey, salt });
    const source: KeySource = {
      description: "a recording source",
      async getKeys(contentId, ids) {
        const keys = await inner.getKeys(contentId, ids);
        for (const [id, key] of keys) given.push([id, key]);
        return keys;
      },
    };
    const zeroed = (id: KeyId) =>
      given.filter(([i]) => i === id).every(([, key]) => key.every((byte) => byte === 0));
    return { source, given, zeroed };
  };

  it("are zeroed once done with: those dropped as the watch goes on, the rest when it ends", async () => {
    const keys = recordingSource();
    const encoder = createLiveEncoder({ dir: input, count: 22, window: 4 });
    const rec = recorder(output);
    const watch = watchHls({ ...liveStream({ onEvent: rec.onEvent }), keys: keys.source });
    for (let i = 0; i < 22; i++) {
      await encoder.next();
      await until(`sequence ${i} published`, () => rec.reached(i));
    }
    // 25 keys got (epochs 0 to 24), 16 held at most: the oldest are zeroed already.
    expect(keys.given.map(([id]) => id)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(keys.zeroed(0)).toBe(true);
    expect(keys.zeroed(21)).toBe(false);
    await encoder.end();
    await watch.done;
    expect(keys.given.every(([id]) => keys.zeroed(id))).toBe(true);
    await expectAllDecrypt(encoder);
  });

  it("packageHls asks once for every key of a VOD stream and zeroes them when done", async () => {
    const keys = recordingSource();
    const result = await packageHls({
      input: join(new URL("../../../demo/sample/", import.meta.url).pathname, "index.m3u8"),
      output,
      contentId: "vod-1",
      keys: keys.source,
      segmentsPerEpoch: 2,
    });
    expect(result.keyUris).toHaveLength(4);
    expect(keys.given.map(([id]) => id)).toEqual([0, 1, 2, 3]);
    expect(keys.given.every(([id]) => keys.zeroed(id))).toBe(true);
  });
});

describe("blindcast-pack --watch --key-server", () => {
  it("follows a live stream with only a token: no MASTER_KEY, no SALT", async () => {
    const encoder = createLiveEncoder({ dir: input, count: 6, window: 3 });
    const child = spawn(
      process.execPath,
      [
        CLI,
        join(input, "index.m3u8"),
        output,
        "--content-id",
        "live-1",
        "--segments-per-epoch",
        "2",
        "--watch",
        "--poll-interval",
        "0.02",
        "--key-server",
        keyServer.keysUrl,
      ],
      {
        env: { PATH: process.env.PATH ?? "", BLINDCAST_TOKEN: publisherToken },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.push(child);
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exit = once(child, "exit");
    const names = (sequence: number) => () => {
      try {
        return named(readFileSync(join(output, "index.m3u8"), "utf8")).some((s) => s.sequence >= sequence);
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 6; i++) {
      await encoder.next();
      await until(`sequence ${i}`, names(i), 10_000);
    }
    await encoder.end();
    const [code] = await exit;
    expect(code).toBe(0);
    expect(stderr).toContain(
      `blindcast-pack: watching ${join(input, "index.m3u8")}, keys from key server ${keyServer.keysUrl}`,
    );
    expect(stderr).toContain("blindcast-pack: live5.ts (sequence 5, epoch 2)");
    expect(stderr).toMatch(
      /the input ended \(#EXT-X-ENDLIST\): wrote the final .*index.m3u8; 6 segment\(s\)/,
    );
    expect(stderr).not.toContain(publisherToken);
    const playlist = readFileSync(join(output, "index.m3u8"), "utf8");
    expect(playlist.trim().endsWith("#EXT-X-ENDLIST")).toBe(true);
    await expectAllDecrypt(encoder);
  });
});
