import {
  createKeySession,
  createPlayer,
  formatKeyUri,
  isSupported,
  keyUrl,
  parseKeyUri,
} from "@blindcast/player";
import { describe, expect, it } from "vitest";
import { createPlayerWith } from "../src/player.js";

describe("key URIs", () => {
  it.each([
    ["blindcast://keys/movie-42", { contentId: "movie-42" }],
    ["blindcast://keys/movie-42/0", { contentId: "movie-42", epoch: 0 }],
    ["blindcast://keys/A.b_c~d-9/4294967295", { contentId: "A.b_c~d-9", epoch: 4294967295 }],
  ])("parses %s and formats it back", (uri, ref) => {
    expect(parseKeyUri(uri)).toEqual(ref);
    expect(formatKeyUri(ref)).toBe(uri);
  });

  it("resolves against keyServerUrl", () => {
    expect(keyUrl("https://k.test/prod/keys", { contentId: "m", epoch: 3 })).toBe(
      "https://k.test/prod/keys/m/3",
    );
    expect(keyUrl("https://k.test/keys", { contentId: "m" })).toBe("https://k.test/keys/m");
  });

  it.each([
    "https://keys.test/keys/m",
    "blindcast://keys/",
    "blindcast://keys/a/b/c",
    "blindcast://keys/a/01",
    "blindcast://keys/a/-1",
    "blindcast://keys/a/4294967296",
    "blindcast://keys/../1",
    "blindcast://keys/a%2Fb",
    "blindcast://keys/a?x=1",
    "blindcast://key/a",
  ])("refuses %s", (uri) => {
    expect(() => parseKeyUri(uri)).toThrow(expect.objectContaining({ code: "INVALID_KEY_URI" }));
  });
});

describe("options", () => {
  it.each<[unknown, RegExp]>([
    [undefined, /options are required/],
    [{}, /keyServerUrl must be an http\(s\) URL .* \(got undefined\)/],
    [{ keyServerUrl: "not a url" }, /keyServerUrl must be an http\(s\) URL .* \(got "not a url"\)/],
    [{ keyServerUrl: "ftp://k.test/keys" }, /keyServerUrl must be an http\(s\) URL/],
    [{ keyServerUrl: "https://k.test/keys?x" }, /without query or fragment/],
    [{ keyServerUrl: "https://k.test/keys#x" }, /without query or fragment/],
    [{ keyServerUrl: "https://k.test/keys", getToken: "abc" }, /getToken must be a function/],
    [{ keyServerUrl: "https://k.test/keys", leases: "yes" }, /leases must be/],
    [{ keyServerUrl: "https://k.test/keys", leases: null }, /leases must be/],
    [{ keyServerUrl: "https://k.test/keys", leases: { renewAt: 0.95 } }, /renewAt/],
    [{ keyServerUrl: "https://k.test/keys", retry: { maxRetries: -1 } }, /retry.maxRetries/],
    [{ keyServerUrl: "https://k.test/keys", retry: { timeoutMs: 10 } }, /timeoutMs/],
    [{ keyServerUrl: "https://k.test/keys", prefetchKeys: 1.5 }, /prefetchKeys/],
  ])("refuses %j with INVALID_OPTIONS", (options, message) => {
    expect(() => createKeySession(options as never)).toThrow(
      expect.objectContaining({ code: "INVALID_OPTIONS", message: expect.stringMatching(message) }),
    );
  });

  it("accepts a trailing slash on keyServerUrl", async () => {
    const session = createKeySession({ keyServerUrl: "https://k.test/keys/", leases: false });
    await session.destroy();
  });
});

describe("createPlayer without Media Source Extensions", () => {
  // Node has no MediaSource, like iOS Safari before 17.1: the player must say so, not fall back.
  const video = { canPlayType: () => "", pause() {} } as unknown as HTMLVideoElement;

  it("reports MSE_UNSUPPORTED clearly", () => {
    expect(isSupported()).toBe(false);
    expect(() => createPlayer(video, { keyServerUrl: "https://k.test/keys" })).toThrow(
      expect.objectContaining({
        code: "MSE_UNSUPPORTED",
        message: expect.stringMatching(/Media Source Extensions/),
      }),
    );
  });

  it("refuses something that is not a video element first", () => {
    expect(() => createPlayer({} as HTMLVideoElement, { keyServerUrl: "https://k.test/keys" })).toThrow(
      expect.objectContaining({ code: "INVALID_OPTIONS" }),
    );
  });
});

describe("load's options", () => {
  // hls.js stands in for itself here (Node has no Media Source Extensions); load checks its
  // options before hls.js sees anything.
  class StandInHls {
    static isSupported = () => true;
    static DefaultConfig = { loader: class {} };
    static Events = {};
    static ErrorDetails = {};
    on() {}
    attachMedia() {}
    loadSource() {}
    destroy() {}
  }
  const video = { canPlayType: () => "", pause() {} } as unknown as HTMLVideoElement;

  it.each<[string, unknown]>([
    ["a path", "a/b"],
    ["'..'", ".."],
    ["a number", 5],
    ["a BigInt", 10n],
    ["a Symbol", Symbol("s")],
  ])("refuses %s as contentId with INVALID_OPTIONS", (_, contentId) => {
    const player = createPlayerWith(StandInHls as never, video, { keyServerUrl: "https://k.test/keys" });
    expect(() => player.load("https://media.test/index.m3u8", { contentId: contentId as string })).toThrow(
      expect.objectContaining({
        code: "INVALID_OPTIONS",
        message: expect.stringMatching(/invalid contentId/),
      }),
    );
  });
});
