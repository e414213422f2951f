import {
  BlindcastPlayerError,
  createBlindcastLoader,
  createKeySession,
  type KeySession,
  type LoaderClass,
} from "@blindcast/player";
import type { HlsConfig, Loader, LoaderCallbacks, LoaderConfiguration, LoaderContext } from "hls.js";
import Hls, { M3U8Parser } from "hls.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createKeyServerMock, KEY_SERVER } from "./support/key-server.js";

// hls.js' default loader needs XMLHttpRequest, which Node lacks: this stand-in records what it
// is handed, so routing can be checked without a browser.
const delegated: { context: LoaderContext; callbacks: LoaderCallbacks<LoaderContext> }[] = [];
class RecordingLoader implements Loader<LoaderContext> {
  context: LoaderContext | null = null;
  stats = new Hls.DefaultConfig.loader(Hls.DefaultConfig as HlsConfig).stats;
  load(context: LoaderContext, _config: LoaderConfiguration, callbacks: LoaderCallbacks<LoaderContext>) {
    this.context = context;
    delegated.push({ context, callbacks });
  }
  abort() {}
  destroy() {}
}

let mock: ReturnType<typeof createKeyServerMock>;
let session: KeySession;
let BlindcastLoader: LoaderClass;

const loaderConfig = {
  loadPolicy: Hls.DefaultConfig.keyLoadPolicy.default,
  timeout: 0,
  maxRetry: 0,
  retryDelay: 0,
  maxRetryDelay: 0,
} as LoaderConfiguration;

function keyContext(url: string): LoaderContext {
  // Shaped as hls.js' KeyLoaderContext; keyInfo and frag are hls.js' own and must come back untouched.
  return {
    type: "key",
    url,
    responseType: "arraybuffer",
    keyInfo: { marker: 1 },
    frag: { sn: 3 },
  } as unknown as LoaderContext;
}

function callbacks() {
  const calls = { success: vi.fn(), error: vi.fn(), timeout: vi.fn(), abort: vi.fn() };
  const cb: LoaderCallbacks<LoaderContext> = {
    onSuccess: calls.success,
    onError: calls.error,
    onTimeout: calls.timeout,
    onAbort: calls.abort,
  };
  return { cb, calls };
}

beforeEach(() => {
  delegated.length = 0;
  mock = createKeyServerMock({ leases: false });
  mock.server.listen({ onUnhandledRequest: "error" });
  session = createKeySession({ keyServerUrl: KEY_SERVER, getToken: () => "token-1", leases: false });
  BlindcastLoader = createBlindcastLoader(session, RecordingLoader as unknown as LoaderClass);
});
afterEach(async () => {
  await session.destroy();
  mock.server.close();
});

describe("the hls.js loader", () => {
  it.each(["manifest", "level", "media-fragment", "audioTrack"])(
    "hands %s requests to the default loader untouched",
    (type) => {
      const context = { type, url: "https://cdn.test/a.m3u8", responseType: "text" } as LoaderContext;
      const { cb } = callbacks();
      new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(context, loaderConfig, cb);
      expect(delegated).toHaveLength(1);
      expect(delegated[0]?.context).toBe(context);
      expect(delegated[0]?.callbacks).toBe(cb);
      expect(mock.log).toEqual([]);
    },
  );

  it("hands keys that are not blindcast:// (plain https key URIs) to the default loader", () => {
    const context = keyContext("https://other.test/key.bin");
    new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(context, loaderConfig, callbacks().cb);
    expect(delegated[0]?.context).toBe(context);
  });

  it("answers a blindcast key with 16 bytes, passing back the very context it got", async () => {
    const context = keyContext("blindcast://keys/movie-42/7");
    const snapshot = JSON.stringify(context);
    const { cb, calls } = callbacks();
    new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(context, loaderConfig, cb);
    await vi.waitFor(() => expect(calls.success).toHaveBeenCalledTimes(1));
    const [response, , passedContext, details] = calls.success.mock.calls[0] ?? [];
    expect(passedContext).toBe(context);
    expect(JSON.stringify(context)).toBe(snapshot);
    expect(response.url).toBe("blindcast://keys/movie-42/7");
    expect(response.data).toBeInstanceOf(ArrayBuffer);
    expect(response.data.byteLength).toBe(16);
    expect(details).toBeNull();
    expect(delegated).toEqual([]);
    expect(mock.log.map((r) => [r.path, r.body])).toEqual([["/movie-42/keys", '{"keys":[7]}']]);
  });

  it("destroy overwrites the key it handed to hls.js, which hls.js keeps as a view on it", async () => {
    const { cb, calls } = callbacks();
    new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(
      keyContext("blindcast://keys/movie-42/7"),
      loaderConfig,
      cb,
    );
    await vi.waitFor(() => expect(calls.success).toHaveBeenCalledTimes(1));
    // What hls.js' key loader does with the answer: decryptdata.key = new Uint8Array(data).
    const hlsKey = new Uint8Array(calls.success.mock.calls[0]?.[0].data as ArrayBuffer);
    expect(hlsKey).toHaveLength(16);
    expect(hlsKey.some((b) => b !== 0)).toBe(true);
    await session.destroy();
    expect(hlsKey).toEqual(new Uint8Array(16));
  });

  it("loads a real playlist's key: the URI hls.js resolves is the one we route", async () => {
    const playlist = [
      "#EXTM3U",
      "#EXT-X-VERSION:3",
      "#EXT-X-TARGETDURATION:4",
      '#EXT-X-KEY:METHOD=AES-128,URI="blindcast://keys/movie-42/0",IV=0x00000000000000000000000000000001',
      "#EXTINF:4,",
      "seg0.ts",
      "#EXT-X-ENDLIST",
    ].join("\n");
    const details = M3U8Parser.parseLevelPlaylist(
      playlist,
      "https://cdn.test/movie/v/index.m3u8",
      0,
      "main" as never,
      0,
      null,
    );
    const uri = details.fragments[0]?.levelkeys?.identity?.uri;
    expect(uri).toBe("blindcast://keys/movie-42/0");
    const { cb, calls } = callbacks();
    new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(keyContext(uri ?? ""), loaderConfig, cb);
    await vi.waitFor(() => expect(calls.success).toHaveBeenCalled());
    expect(mock.log.map((r) => [r.path, r.body])).toEqual([["/movie-42/keys", '{"keys":[0]}']]);
  });

  it("reports a key that is not 16 bytes as an error with the reason", async () => {
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/demo/keys`, () =>
        mock.HttpResponse.json({ keys: [{ epoch: 1, key: Buffer.alloc(32, 1).toString("base64") }] }),
      ),
    );
    const context = keyContext("blindcast://keys/demo/1");
    const { cb, calls } = callbacks();
    new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(context, loaderConfig, cb);
    await vi.waitFor(() => expect(calls.error).toHaveBeenCalled());
    const [error, passedContext] = calls.error.mock.calls[0] ?? [];
    expect(passedContext).toBe(context);
    expect(error.text).toBe("Key server answered no 16-byte key for demo/1");
    expect(calls.success).not.toHaveBeenCalled();
  });

  it("reports a malformed blindcast URI without calling the server", async () => {
    const { cb, calls } = callbacks();
    new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(
      keyContext("blindcast://keys/a/b/c"),
      loaderConfig,
      cb,
    );
    await vi.waitFor(() => expect(calls.error).toHaveBeenCalled());
    expect(calls.error.mock.calls[0]?.[0].text).toMatch(/not of the form/);
    expect(mock.log).toEqual([]);
  });

  it("passes the server status on to hls.js", async () => {
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/demo/keys`, () =>
        mock.HttpResponse.json({ error: "No" }, { status: 403 }),
      ),
    );
    const { cb, calls } = callbacks();
    new BlindcastLoader(Hls.DefaultConfig as HlsConfig).load(
      keyContext("blindcast://keys/demo"),
      loaderConfig,
      cb,
    );
    await vi.waitFor(() => expect(calls.error).toHaveBeenCalled());
    expect(calls.error.mock.calls[0]?.[0]).toEqual({ code: 403, text: "No (HTTP 403)" });
    expect(session.failure).toBeInstanceOf(BlindcastPlayerError);
  });

  it("after abort, reports the abort and never a late success", async () => {
    const context = keyContext("blindcast://keys/demo/2");
    const { cb, calls } = callbacks();
    const loader = new BlindcastLoader(Hls.DefaultConfig as HlsConfig);
    loader.load(context, loaderConfig, cb);
    loader.abort();
    expect(calls.abort).toHaveBeenCalledWith(expect.objectContaining({ aborted: true }), context, null);
    await session.key({ contentId: "demo", epoch: 2 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls.success).not.toHaveBeenCalled();
    // The shared fetch still completed once and is cached for the next request.
    expect(mock.log.map((r) => [r.path, r.body])).toEqual([["/demo/keys", '{"keys":[2]}']]);
  });
});
