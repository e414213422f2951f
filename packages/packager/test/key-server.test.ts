import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bytesToHex,
  decryptSegment,
  deriveContentKey,
  deriveEpochKey,
  encryptSegment,
  hexToBytes,
} from "@blindcast/crypto";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { type RunningKeyServer, startKeyServer } from "@blindcast/keys/node";
import {
  createKeyServerKeySource,
  type KeyServerKeySourceOptions,
  type KeySource,
  type PackageResult,
  PackagerError,
  type PackageStreamOptions,
  packageHls,
} from "@blindcast/packager";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type KeyedSegment, keyedSegments } from "./support/keyed-segments.js";
import { hs256Token } from "./support/publisher.js";

const SAMPLE = new URL("../../../demo/sample/", import.meta.url).pathname;
const FMP4 = new URL("./fixtures/fmp4/", import.meta.url).pathname;
const masterKey = new Uint8Array(32).map((_, i) => 0x40 + i);
const salt = new Uint8Array(16).map((_, i) => 0xc0 + i);
const jwtSecret = "a test secret of at least thirty-two bytes";

const token = (scope?: string, expiresIn = "5m") => hs256Token(jwtSecret, { scope, expires: expiresIn });

let publisherToken: string;
let viewerToken: string;
let keyServer: RunningKeyServer;
let withoutPublishing: RunningKeyServer;

beforeAll(async () => {
  publisherToken = await token("openid blindcast:publish");
  viewerToken = await token("openid");
  const common = {
    port: 0,
    masterKey,
    salt,
    corsOrigins: "*",
    audit: false as const,
    authenticate: createJwtAuthenticator({ secret: jwtSecret, publisherScope: "blindcast:publish" }),
  };
  keyServer = await startKeyServer({ ...common, publish: {} });
  withoutPublishing = await startKeyServer(common);
});
afterAll(async () => {
  await keyServer?.close();
  await withoutPublishing?.close();
});

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "blindcast-pack-keys-"));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** A real HTTP server on 127.0.0.1 that records what it is sent and answers with `handler`. */
interface Recorded {
  path: string;
  authorization: string | undefined;
  body: string;
  at: number;
}
async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string, n: number) => void) {
  const requests: Recorded[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    requests.push({ path: req.url ?? "", authorization: req.headers.authorization, body, at: Date.now() });
    handler(req, res, body, requests.length);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`;
  return {
    url,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Passes requests on to the real key server, so tests see what the packager sends. */
const forward = (req: IncomingMessage, res: ServerResponse, body: string) => {
  const target = `${keyServer.keysUrl}${(req.url ?? "").replace(/^\/keys/, "")}`;
  fetch(target, {
    method: req.method ?? "GET",
    headers: {
      authorization: req.headers.authorization ?? "",
      "content-type": req.headers["content-type"] ?? "",
    },
    body,
  }).then(
    async (answer) => {
      res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "" });
      res.end(Buffer.from(await answer.arrayBuffer()));
    },
    () => res.destroy(),
  );
};

const answer =
  (status: number, json: unknown, headers: Record<string, string> = {}) =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(typeof json === "string" ? json : JSON.stringify(json));
  };

const stream = (extra: Partial<PackageStreamOptions> = {}): PackageStreamOptions => ({
  input: join(SAMPLE, "master.m3u8"),
  output: join(work, "out"),
  contentId: "demo-sample",
  ...extra,
});

const source = (options: Partial<KeyServerKeySourceOptions> = {}): KeySource =>
  createKeyServerKeySource({ url: keyServer.keysUrl, token: publisherToken, ...options });

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

const listFiles = (dir: string) => (readdirSync(dir, { recursive: true }) as string[]).sort();
const maskIvs = (playlist: string) => playlist.replace(/,IV=0x[0-9a-f]{32}$/gm, ",IV=0x…");

/** The key a blindcast:// URI names, derived here with the contract from the server's master key. */
function contractKey(keyUri: string): Promise<Uint8Array> {
  const [contentId = "", epoch] = keyUri.replace("blindcast://keys/", "").split("/");
  return epoch === undefined
    ? deriveContentKey(masterKey, salt, contentId)
    : deriveEpochKey(masterKey, salt, contentId, Number(epoch));
}

describe("packaging with keys from the key server's publisher route", () => {
  it.each<[string, Partial<PackageStreamOptions>, string]>([
    ["the sample, epochs of 2 segments", { segmentsPerEpoch: 2 }, SAMPLE],
    ["the sample, with the content key", { contentKey: true }, SAMPLE],
    ["fMP4, an epoch per segment", { input: join(FMP4, "index.m3u8"), segmentsPerEpoch: 1 }, FMP4],
  ])("%s: the same output as with the master key, but for the random IVs", async (_, extra, inputDir) => {
    const viaMaster = join(work, "master");
    const viaServer = join(work, "server");
    const a = await packageHls({ ...stream({ ...extra, output: viaMaster }), masterKey, salt });
    const b = await packageHls({ ...stream({ ...extra, output: viaServer }), keys: source() });
    expect(b).toEqual<PackageResult>(a);

    expect(listFiles(viaServer)).toEqual(listFiles(viaMaster));
    for (const playlist of [a.playlist, ...a.mediaPlaylists]) {
      const server = readFileSync(join(viaServer, playlist), "utf8");
      expect(maskIvs(server)).toBe(maskIvs(readFileSync(join(viaMaster, playlist), "utf8")));
    }
    let checked = 0;
    for (const media of a.mediaPlaylists) {
      const fromServer = keyedSegments(readFileSync(join(viaServer, media), "utf8"));
      const fromMaster = keyedSegments(readFileSync(join(viaMaster, media), "utf8"));
      expect(fromServer.map((s) => [s.uri, s.keyUri])).toEqual(fromMaster.map((s) => [s.uri, s.keyUri]));
      for (const [i, segment] of fromServer.entries()) {
        const clear = readFileSync(join(inputDir, segment.uri));
        const key = await contractKey(segment.keyUri);
        for (const [dir, { iv }] of [
          [viaServer, segment],
          [viaMaster, fromMaster[i] as KeyedSegment],
        ] as const) {
          const encrypted = readFileSync(join(dir, segment.uri));
          // Both decrypt with the contract's key; and each is exactly the encryption of the clear
          // segment under that key and its own IV, so the IV is the only difference.
          const ivBytes = hexToBytes(iv);
          expect(Buffer.from(await decryptSegment(key, ivBytes, encrypted)).equals(clear)).toBe(true);
          expect(Buffer.from(await encryptSegment(key, ivBytes, clear)).equals(encrypted)).toBe(true);
        }
        checked++;
      }
    }
    expect(checked).toBe(a.segments);
    // Files that are not segments (init sections, the multivariant playlist) are identical.
    const segmentFiles = new Set(
      a.mediaPlaylists.flatMap((m) =>
        keyedSegments(readFileSync(join(viaMaster, m), "utf8")).map((s) => s.uri),
      ),
    );
    for (const file of listFiles(viaMaster).filter(
      (f) => !segmentFiles.has(f) && !a.mediaPlaylists.includes(f),
    )) {
      expect(readFileSync(join(viaServer, file)).equals(readFileSync(join(viaMaster, file)))).toBe(true);
    }
  });

  it("asks for at most 1024 keys per request: 1031 keys take two, and the server gives them all", async () => {
    const proxy = await serve(forward);
    try {
      // Through the KeySource itself: packaging 1030 one-epoch segments would test the same
      // requests, only slower.
      const ids = ["content" as const, ...Array.from({ length: 1030 }, (_, i) => i)];
      const keys = await source({ url: proxy.url }).getKeys("demo-sample", [...ids, 5, "content"]);
      expect(keys.size).toBe(1031);
      const asked = proxy.requests.map((r) => (JSON.parse(r.body) as { keys: unknown[] }).keys);
      expect(asked.map((k) => k.length)).toEqual([1024, 7]);
      expect(asked.flat()).toEqual(ids);
      expect(proxy.requests.every((r) => r.path === "/keys/publish/demo-sample/keys")).toBe(true);
      for (const id of ["content" as const, 0, 1, 500, 1022, 1023, 1024, 1029]) {
        const expected = await contractKey(`blindcast://keys/demo-sample${id === "content" ? "" : `/${id}`}`);
        expect(bytesToHex(keys.get(id) ?? new Uint8Array())).toBe(bytesToHex(expected));
      }
    } finally {
      await proxy.close();
    }
  });

  it("takes the key server's base URL as well as its keys URL", async () => {
    const base = keyServer.keysUrl.replace(/\/keys$/, "");
    const result = await packageHls({ ...stream({ segmentsPerEpoch: 4 }), keys: source({ url: base }) });
    expect(result.keyUris).toEqual(["blindcast://keys/demo-sample/0", "blindcast://keys/demo-sample/1"]);
    const [segment] = keyedSegments(readFileSync(join(work, "out/index.m3u8"), "utf8"));
    const clear = await decryptSegment(
      await contractKey(segment?.keyUri ?? ""),
      hexToBytes(segment?.iv ?? ""),
      readFileSync(join(work, "out", segment?.uri ?? "")),
    );
    expect(Buffer.from(clear).equals(readFileSync(join(SAMPLE, segment?.uri ?? "")))).toBe(true);
  });

  it("honours keysPerRequest", async () => {
    const proxy = await serve(forward);
    try {
      await packageHls({
        ...stream({ segmentsPerEpoch: 1 }),
        keys: source({ url: proxy.url, keysPerRequest: 3 }),
      });
      expect(proxy.requests.map((r) => JSON.parse(r.body))).toEqual([
        { keys: [0, 1, 2] },
        { keys: [3, 4, 5] },
        { keys: [6, 7] },
      ]);
    } finally {
      await proxy.close();
    }
  });

  it("retries a 503 after its Retry-After, then packages", async () => {
    const proxy = await serve((req, res, body, n) =>
      n === 1
        ? answer(
            503,
            { error: "Lease store unavailable", code: "store_unavailable" },
            { "retry-after": "1" },
          )(req, res)
        : forward(req, res, body),
    );
    try {
      await packageHls({ ...stream(), keys: source({ url: proxy.url, retryDelayMs: 0 }) });
      expect(proxy.requests).toHaveLength(2);
      const [first, second] = proxy.requests;
      expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(990);
      expect(readdirSync(join(work, "out"))).toContain("index.m3u8");
    } finally {
      await proxy.close();
    }
  });

  it("retries 429 and 5xx a bounded number of times, then fails with the server's reason", async () => {
    const proxy = await serve(answer(429, { error: "Slow down", code: "rate_limited" }));
    try {
      const error = await failure(
        packageHls({ ...stream(), keys: source({ url: proxy.url, retries: 2, retryDelayMs: 1 }) }),
      );
      expect(error.code).toBe("KEY_SERVER_UNAVAILABLE");
      expect(error.message).toMatch(/Slow down \(HTTP 429 rate_limited\) \(3 attempts\)/);
      expect(error.keyServer).toEqual({ status: 429, serverCode: "rate_limited", reason: "Slow down" });
      expect(proxy.requests).toHaveLength(3);
    } finally {
      await proxy.close();
    }
  });

  it("fails at once when Retry-After asks for longer than maxRetryDelayMs", async () => {
    const proxy = await serve(answer(503, { error: "Down for maintenance" }, { "retry-after": "3600" }));
    try {
      const error = await failure(packageHls({ ...stream(), keys: source({ url: proxy.url }) }));
      expect(error.code).toBe("KEY_SERVER_UNAVAILABLE");
      expect(error.message).toMatch(/Down for maintenance \(HTTP 503\); it asks to retry after 3600 s/);
      expect(proxy.requests).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });
});

describe("key server refusals are PackagerErrors with the server's reason, never the token, and nothing written", () => {
  const refused = async (keys: KeySource) => {
    const error = await failure(packageHls({ ...stream(), keys }));
    expect(error.message).not.toContain(publisherToken);
    expect(error.message).not.toContain(viewerToken);
    expect(() => readdirSync(join(work, "out"))).toThrow();
    return error;
  };

  it("a viewer's token (403), asked once", async () => {
    const proxy = await serve(forward);
    try {
      const error = await refused(source({ url: proxy.url, token: viewerToken }));
      expect(error.code).toBe("KEY_SERVER_UNAUTHORIZED");
      expect(error.keyServer).toMatchObject({ status: 403, serverCode: "publisher_required" });
      expect(error.keyServer?.reason).toBeTruthy();
      expect(error.message).toContain(error.keyServer?.reason);
      expect(error.message).toMatch(/HTTP 403 publisher_required/);
      expect(proxy.requests).toHaveLength(1);
      expect(proxy.requests[0]?.authorization).toBe(`Bearer ${viewerToken}`);
    } finally {
      await proxy.close();
    }
  });

  it("an expired token (401)", async () => {
    const error = await refused(source({ token: await token("blindcast:publish", "-5m") }));
    expect(error.code).toBe("KEY_SERVER_UNAUTHORIZED");
    expect(error.keyServer?.status).toBe(401);
    expect(error.message).toMatch(/expired/i);
  });

  it("a server without publishing (404 publishing_disabled)", async () => {
    const error = await refused(source({ url: withoutPublishing.keysUrl }));
    expect(error.code).toBe("KEY_SERVER_ERROR");
    expect(error.keyServer).toMatchObject({ status: 404, serverCode: "publishing_disabled" });
    expect(error.message).toContain(error.keyServer?.reason);
  });

  it("a reason that echoes the token has it blanked", async () => {
    const server = await serve((req, res) =>
      answer(400, { error: `token ${req.headers.authorization?.slice(7)} is odd`, code: "bad_request" })(
        req,
        res,
      ),
    );
    try {
      const error = await refused(source({ url: server.url }));
      expect(error.code).toBe("KEY_SERVER_ERROR");
      expect(error.message).toContain("token [token] is odd (HTTP 400 bad_request)");
    } finally {
      await server.close();
    }
  });

  it("a redirect is not followed: the token stays where it was sent", async () => {
    const target = await serve(forward);
    const server = await serve(answer(307, "", { location: `${target.url}/publish/demo-sample/keys` }));
    try {
      const error = await refused(source({ url: server.url }));
      expect(error.code).toBe("KEY_SERVER_ERROR");
      expect(error.message).toMatch(/redirected to .* \(HTTP 307\), not followed/);
      expect(target.requests).toHaveLength(0);
    } finally {
      await server.close();
      await target.close();
    }
  });

  it("a server that is down: connection refused, after the retries", async () => {
    const gone = await serve(() => {});
    await gone.close();
    const error = await refused(source({ url: gone.url, retries: 2, retryDelayMs: 1 }));
    expect(error.code).toBe("KEY_SERVER_UNAVAILABLE");
    expect(error.message).toMatch(/unreachable \(.*ECONNREFUSED.*\) \(3 attempts\)/);
  });

  it("a server that never answers: each request bounded by timeoutMs", async () => {
    const silent = await serve(() => {});
    try {
      const error = await refused(source({ url: silent.url, timeoutMs: 200, retries: 1, retryDelayMs: 1 }));
      expect(error.code).toBe("KEY_SERVER_UNAVAILABLE");
      expect(error.message).toMatch(/no complete answer within 200 ms \(2 attempts\)/);
      expect(silent.requests).toHaveLength(2);
    } finally {
      await silent.close();
    }
  });

  const KEY = Buffer.alloc(16, 7).toString("base64");
  it.each<[string, unknown, RegExp]>([
    ["not JSON", "<html>oops</html>", /no JSON object with a keys list/],
    ["keys not a list", { contentId: "demo-sample", keys: { 0: KEY } }, /no JSON object with a keys list/],
    ["another content", { contentId: "other", keys: [{ epoch: 0, key: KEY }] }, /another contentId/],
    ["no keys", { contentId: "demo-sample", keys: [] }, /no key for epoch 0/],
    [
      "a key not asked",
      {
        contentId: "demo-sample",
        keys: [
          { epoch: 0, key: KEY },
          { epoch: 1, key: KEY },
        ],
      },
      /epoch 1, which was not asked/,
    ],
    [
      "the content key, not asked",
      { contentId: "demo-sample", keys: [{ epoch: null, key: KEY }] },
      /the content key, which was not asked/,
    ],
    [
      "a key twice",
      {
        contentId: "demo-sample",
        keys: [
          { epoch: 0, key: KEY },
          { epoch: 0, key: KEY },
        ],
      },
      /epoch 0 twice/,
    ],
    [
      "an epoch as text",
      { contentId: "demo-sample", keys: [{ epoch: "0", key: KEY }] },
      /entry 0 without an epoch/,
    ],
    [
      "a 15-byte key",
      { contentId: "demo-sample", keys: [{ epoch: 0, key: Buffer.alloc(15).toString("base64") }] },
      /epoch 0 not 16 bytes/,
    ],
    [
      "a 17-byte key",
      { contentId: "demo-sample", keys: [{ epoch: 0, key: Buffer.alloc(17).toString("base64") }] },
      /epoch 0 not 16 bytes/,
    ],
    [
      "a hex key",
      { contentId: "demo-sample", keys: [{ epoch: 0, key: "07".repeat(16) }] },
      /epoch 0 not 16 bytes/,
    ],
    [
      "an endless body",
      `{"contentId":"demo-sample","keys":[${'{"epoch":0,"key":"x"},'.repeat(20_000)}]}`,
      /more than 262144 bytes/,
    ],
  ])("a malformed answer: %s", async (_, body, message) => {
    const server = await serve(answer(200, body));
    try {
      const error = await refused(source({ url: server.url }));
      expect(error.code).toBe("KEY_SERVER_INVALID_RESPONSE");
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain(KEY);
      // Not retried: a wrong answer will not get right by asking again.
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it("a KeySource of your own that gives a short key", async () => {
    const short: KeySource = {
      description: "my vault",
      getKeys: async (_, ids) => new Map(ids.map((id) => [id, new Uint8Array(8)])),
    };
    const error = await refused(short);
    expect(error).toMatchObject({
      code: "KEY_SERVER_INVALID_RESPONSE",
      message: "my vault gave no 16-byte key for epoch 0",
    });
  });
});

describe("options are checked before any request", () => {
  it.each<[Partial<KeyServerKeySourceOptions>, RegExp]>([
    [{ url: "http://keys.example.com/keys" }, /must be https:\/\/ .*cross the network in clear/],
    [{ url: "http://10.0.0.1:8787/keys" }, /must be https:\/\//],
    [{ url: "ftp://keys.example.com/keys" }, /must be an https:\/\/ URL/],
    [{ url: "keys.example.com" }, /must be an https:\/\/ URL/],
    [{ url: "https://user:hunter2@keys.example.com/keys" }, /no user name, password, query or fragment/],
    [{ url: "https://keys.example.com/keys?token=hunter2" }, /no user name, password, query or fragment/],
    [{ token: "" }, /token is required/],
    [{ token: "hunter2 \r\nX-Injected: 1" }, /token is not a bearer token/],
    [{ timeoutMs: 0 }, /timeoutMs must be an integer from 100/],
    [{ retries: 11 }, /retries must be an integer from 0 to 10/],
    [{ keysPerRequest: 1025 }, /keysPerRequest must be an integer from 1 to 1024/],
  ])("%j", (options, message) => {
    let error: unknown;
    try {
      createKeyServerKeySource({ url: "https://keys.example.com/keys", token: "abc", ...options });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PackagerError);
    expect(error).toMatchObject({ code: "INVALID_OPTIONS", message: expect.stringMatching(message) });
    expect((error as Error).message).not.toContain("hunter2");
  });

  it.each([
    ["http://127.0.0.1:1/keys", "http://127.0.0.1:1/keys"],
    ["http://localhost:1/keys", "http://localhost:1/keys"],
    ["http://[::1]:1/keys", "http://[::1]:1/keys"],
    ["https://keys.example.com/keys/", "https://keys.example.com/keys"],
    // The base URL the routes are under: /keys is added.
    ["https://keys.example.com", "https://keys.example.com/keys"],
    ["https://api.example.com/prod/", "https://api.example.com/prod/keys"],
  ])("accepts %s as %s", (url, keysUrl) => {
    expect(createKeyServerKeySource({ url, token: "abc" }).description).toBe(`key server ${keysUrl}`);
  });

  it("refuses keys together with masterKey", async () => {
    const options = { ...stream(), keys: source(), masterKey, salt } as unknown as Parameters<
      typeof packageHls
    >[0];
    await expect(packageHls(options)).rejects.toMatchObject({
      code: "INVALID_OPTIONS",
      message: "give either keys or masterKey and salt, not both",
    });
  });
});

describe("blindcast-pack --key-server", () => {
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
  const args = () => [
    join(SAMPLE, "master.m3u8"),
    join(work, "out"),
    "--content-id",
    "demo-sample",
    "--segments-per-epoch",
    "2",
  ];

  it("packages with a publisher's token from BLINDCAST_TOKEN", async () => {
    const { code, stderr } = await run([...args(), "--key-server", keyServer.keysUrl], {
      BLINDCAST_TOKEN: publisherToken,
    });
    expect(stderr).not.toContain(publisherToken);
    expect(stderr).toMatch(
      /wrote .*master.m3u8: 8 segments, 4 key\(s\) from key server http:\/\/127\.0\.0\.1:\d+\/keys/,
    );
    expect(code).toBe(0);
    for (const segment of keyedSegments(readFileSync(join(work, "out/index.m3u8"), "utf8"))) {
      const clear = await decryptSegment(
        await contractKey(segment.keyUri),
        hexToBytes(segment.iv),
        readFileSync(join(work, "out", segment.uri)),
      );
      expect(Buffer.from(clear).equals(readFileSync(join(SAMPLE, segment.uri)))).toBe(true);
    }
  });

  it("a viewer's token: exit 1 with the server's reason, never the token", async () => {
    const { code, stderr } = await run([...args(), "--key-server", keyServer.keysUrl], {
      BLINDCAST_TOKEN: viewerToken,
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/refused the keys of demo-sample: .*\(HTTP 403 publisher_required\)/);
    expect(stderr).not.toContain(viewerToken);
    expect(() => readdirSync(join(work, "out"))).toThrow();
  });

  it.each<[string, string[], Record<string, string>, RegExp]>([
    [
      "no token",
      ["--key-server", "https://keys.example.com/keys"],
      {},
      /needs a publisher's token in the environment variable BLINDCAST_TOKEN/,
    ],
    [
      "MASTER_KEY as well",
      ["--key-server", "https://keys.example.com/keys"],
      { BLINDCAST_TOKEN: "abc", MASTER_KEY: bytesToHex(masterKey) },
      /MASTER_KEY is set and --key-server is given: choose one/,
    ],
    [
      "MASTER_KEY and SALT as well",
      ["--key-server", "https://keys.example.com/keys"],
      { BLINDCAST_TOKEN: "abc", MASTER_KEY: bytesToHex(masterKey), SALT: bytesToHex(salt) },
      /MASTER_KEY and SALT are set and --key-server is given/,
    ],
    [
      "an http URL elsewhere",
      ["--key-server", "http://keys.example.com/keys"],
      { BLINDCAST_TOKEN: "abc" },
      /--key-server: the key server URL must be https:\/\//,
    ],
    [
      "neither keys nor a key server",
      [],
      {},
      /MASTER_KEY is not set .*or give --key-server <url> with BLINDCAST_TOKEN/,
    ],
  ])("%s: exit 2", async (_, extra, env, message) => {
    const { code, stderr } = await run([...args(), ...extra], env);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(() => readdirSync(join(work, "out"))).toThrow();
  });
});
