import { createKeyDeriver } from "@blindcast/crypto";
import { KeyServerConfigError, MAX_FILES_PER_PRESIGN } from "@blindcast/keys";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { EnvConfigError, keyServerOptionsFromEnv } from "@blindcast/keys/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MASTER_KEY_HEX, masterKey, SALT_HEX, salt } from "./support/fixtures.js";
import {
  bearer,
  PUBLISH_SECRET,
  type PublishingServer,
  publisherToken,
  startPublishingServer,
  viewerToken,
} from "./support/publish.js";

const STORAGE = {
  bucket: "media",
  prefix: "streams",
  region: "eu-west-1",
  endpoint: "http://127.0.0.1:9000",
  credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
};

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

describe("publisher routes on a real node:http server", () => {
  let s: PublishingServer;
  beforeAll(async () => {
    s = await startPublishingServer({ publish: { storage: STORAGE, uploadUrlTtlSeconds: 600 } });
  });
  afterAll(() => s.server.close());

  it("hands a publisher the keys the viewer routes derive", async () => {
    const deriver = createKeyDeriver(masterKey, salt);
    const answer = await s.post(
      "/keys/publish/movie-1/keys",
      { keys: ["content", 0, 1, 7, 1, 4294967295] },
      await publisherToken(),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.contentId).toBe("movie-1");
    const expected = [
      { epoch: null, key: base64(await deriver.contentKey("movie-1")) },
      ...(await Promise.all(
        [0, 1, 7, 4294967295].map(async (epoch) => ({
          epoch,
          key: base64(await deriver.epochKey("movie-1", epoch)),
        })),
      )),
    ];
    expect(answer.body.keys).toEqual(expected);
    const audit = s.audits.at(-1);
    expect(audit).toMatchObject({
      route: "publish_keys",
      contentId: "movie-1",
      viewerId: "publisher-1",
      keys: [null, 0, 1, 7, 4294967295],
      status: 200,
    });
    expect(JSON.stringify(audit)).not.toContain(expected[1]?.key);
  });

  it("answers 1,024 keys in one request, and refuses 1,025", async () => {
    const epochs = Array.from({ length: 1024 }, (_, i) => i);
    const ok = await s.post("/keys/publish/movie-1/keys", { keys: epochs }, await publisherToken());
    expect(ok.status).toBe(200);
    expect(ok.body.keys).toHaveLength(1024);
    const tooMany = await s.post(
      "/keys/publish/movie-1/keys",
      { keys: [...epochs, 1024] },
      await publisherToken(),
    );
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatch(/1 to 1024/);
  });

  it("signs one upload URL per file, under {prefix}/{contentId}/{path}, with the type and size signed", async () => {
    const files = [
      { path: "index.m3u8", size: 300 },
      { path: "v0/index.m3u8", size: 2000 },
      { path: "v0/seg_0.ts", size: 1_000_000 },
      { path: "v0/init.mp4", size: 900 },
      { path: "v0/seg-1.m4s", size: 0 },
      { path: "audio/en.aac", size: 10 },
      { path: "subs/en.vtt", size: 10 },
    ];
    const before = Date.now();
    const answer = await s.post(
      "/keys/publish/movie-1/uploads",
      { files, head: true },
      await publisherToken(),
    );
    expect(answer.status).toBe(200);
    const expiresAt = Date.parse(answer.body.expiresAt);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);
    const types = [
      "application/vnd.apple.mpegurl",
      "application/vnd.apple.mpegurl",
      "video/mp2t",
      "video/mp4",
      "video/iso.segment",
      "audio/aac",
      "text/vtt",
    ];
    answer.body.uploads.forEach((upload, i) => {
      const file = files[i] as { path: string; size: number };
      expect(upload.path).toBe(file.path);
      expect(upload.method).toBe("PUT");
      expect(upload.headers).toEqual({ "content-length": String(file.size), "content-type": types[i] });
      const url = new URL(upload.url);
      expect(`${url.origin}${url.pathname}`).toBe(`http://127.0.0.1:9000/media/streams/movie-1/${file.path}`);
      expect(url.searchParams.get("X-Amz-SignedHeaders")).toBe("content-length;content-type;host");
      expect(url.searchParams.get("X-Amz-Expires")).toBe("600");
      const head = new URL(upload.head ?? "");
      expect(head.pathname).toBe(url.pathname);
      expect(head.searchParams.get("X-Amz-SignedHeaders")).toBe("host");
    });
    expect(s.audits.at(-1)).toMatchObject({
      route: "publish_uploads",
      contentId: "movie-1",
      viewerId: "publisher-1",
      files: 7,
      bytes: 1_003_220,
      status: 200,
    });
  });

  it("leaves out HEAD URLs unless asked", async () => {
    const answer = await s.post(
      "/keys/publish/movie-1/uploads",
      { files: [{ path: "a.ts", size: 1 }] },
      await publisherToken(),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.uploads[0]?.head).toBeUndefined();
  });

  it.each([
    ["../escape.ts", /\. or \.\./],
    ["v0/../../escape.ts", /\. or \.\./],
    ["./index.m3u8", /\. or \.\./],
    ["/abs.ts", /relative/],
    ["v0//seg.ts", /empty segment/],
    ["v0/", /empty segment/],
    [".hidden.ts", /not starting with \./],
    ["v0/.DS_Store", /not starting with \./],
    ["seg%2e%2e.ts", /A-Z a-z 0-9/],
    ["seg 1.ts", /A-Z a-z 0-9/],
    ["v0\\seg.ts", /A-Z a-z 0-9/],
    ["séance.ts", /A-Z a-z 0-9/],
    ["index.html", /not a file type/],
    ["player.js", /not a file type/],
    ["movie.key", /not a file type/],
    ["noextension", /not a file type/],
    ["v0.ts/noext", /not a file type/],
    ["x.constructor", /not a file type/],
    ["x.__proto__", /not a file type/],
    [`${"a".repeat(257)}.ts`, /longer than 256/],
  ])("refuses the path %j with its reason", async (path, reason) => {
    const answer = await s.post(
      "/keys/publish/movie-1/uploads",
      {
        files: [
          { path: "ok.ts", size: 1 },
          { path, size: 1 },
        ],
      },
      await publisherToken(),
    );
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("bad_request");
    expect(answer.body.error).toMatch(reason);
  });

  it.each<[string, unknown, RegExp]>([
    ["no files", {}, /files must be an array of 1 to 1000/],
    ["an empty list", { files: [] }, /files must be an array of 1 to 1000/],
    ["a string", { files: "index.m3u8" }, /files must be an array/],
    [
      "a path twice",
      {
        files: [
          { path: "a.ts", size: 1 },
          { path: "a.ts", size: 2 },
        ],
      },
      /listed twice/,
    ],
    ["a negative size", { files: [{ path: "a.ts", size: -1 }] }, /byte count/],
    ["a fractional size", { files: [{ path: "a.ts", size: 1.5 }] }, /byte count/],
    ["a size as text", { files: [{ path: "a.ts", size: "1" }] }, /byte count/],
    ["no size", { files: [{ path: "a.ts" }] }, /byte count/],
    [
      "a size over S3's single PUT",
      { files: [{ path: "a.ts", size: 5 * 1024 ** 3 + 1 }] },
      /over this server's limit/,
    ],
    ["a null entry", { files: [null] }, /path must be a non-empty string/],
    ["head as text", { files: [{ path: "a.ts", size: 1 }], head: "yes" }, /head must be true or false/],
  ])("refuses %s", async (_, body, reason) => {
    const answer = await s.post("/keys/publish/movie-1/uploads", body, await publisherToken());
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(reason);
  });

  it("takes 1,000 files in one request (a body far over the viewer routes' 4 KiB), and refuses 1,001", async () => {
    const files = Array.from({ length: MAX_FILES_PER_PRESIGN }, (_, i) => ({
      path: `rendition_${i % 4}/segment_${String(i).padStart(6, "0")}.ts`,
      size: 2_000_000,
    }));
    const ok = await s.post("/keys/publish/movie-1/uploads", { files }, await publisherToken());
    expect(ok.status).toBe(200);
    expect(ok.body.uploads).toHaveLength(1000);
    const over = await s.post(
      "/keys/publish/movie-1/uploads",
      { files: [...files, { path: "one-more.ts", size: 1 }] },
      await publisherToken(),
    );
    expect(over.status).toBe(400);
  });

  it("refuses a publish body over 512 KiB with the reason, and a viewer route body over 4 KiB", async () => {
    const padded = JSON.stringify({ files: [{ path: "a.ts", size: 1 }], pad: "x".repeat(600 * 1024) });
    const big = await s.post("/keys/publish/movie-1/uploads", padded, await publisherToken());
    expect(big.status).toBe(400);
    expect(big.body.error).toBe("Request body is over 524288 bytes");
    const lease = await s.post(
      "/keys/leases",
      { contentId: "movie-1", pad: "x".repeat(5000) },
      await viewerToken(),
    );
    expect(lease.status).toBe(400);
    expect(lease.body.error).toBe("Request body is over 4096 bytes");
  });

  it("refuses a viewer's token with 403 on both routes, and a caller without a token with 401", async () => {
    for (const path of ["/keys/publish/movie-1/keys", "/keys/publish/movie-1/uploads"]) {
      const body = { keys: [0], files: [{ path: "a.ts", size: 1 }] };
      const viewer = await s.post(path, body, await viewerToken());
      expect(viewer.status).toBe(403);
      expect(viewer.body.code).toBe("publisher_required");
      expect(JSON.stringify(viewer.body)).not.toContain("X-Amz");
      const nobody = await s.post(path, body);
      expect(nobody.status).toBe(401);
      const forged = await s.post(
        path,
        body,
        await bearer("x", { scope: "blindcast:publish" }).then((t) => `${t}x`),
      );
      expect(forged.status).toBe(401);
    }
    expect(s.audits.filter((a) => a.status === 403 && a.route.startsWith("publish_"))).toHaveLength(2);
  });

  it("does not answer publisher routes to GET, and does not mistake them for key routes", async () => {
    const answer = await fetch(`${s.url}/keys/publish/movie-1/keys`, {
      headers: { authorization: await publisherToken() },
    });
    expect(answer.status).toBe(405);
    expect(answer.headers.get("allow")).toBe("POST, OPTIONS");
  });

  it("refuses a bad contentId", async () => {
    const answer = await s.post("/keys/publish/..%2F/keys", { keys: [0] }, await publisherToken());
    expect(answer.status).toBe(400);
  });
});

describe("publishing switched off or partial", () => {
  it("answers 404 publishing_disabled without publish, even to a publisher", async () => {
    const s = await startPublishingServer();
    try {
      const answer = await s.post("/keys/publish/movie-1/keys", { keys: [0] }, await publisherToken());
      expect(answer.status).toBe(404);
      expect(answer.body.code).toBe("publishing_disabled");
    } finally {
      await s.server.close();
    }
  });

  it("serves keys but answers 404 uploads_disabled without storage", async () => {
    const s = await startPublishingServer({ publish: {} });
    try {
      expect((await s.post("/keys/publish/m/keys", { keys: [0] }, await publisherToken())).status).toBe(200);
      const answer = await s.post(
        "/keys/publish/m/uploads",
        { files: [{ path: "a.ts", size: 1 }] },
        await publisherToken(),
      );
      expect(answer.status).toBe(404);
      expect(answer.body.code).toBe("uploads_disabled");
    } finally {
      await s.server.close();
    }
  });

  it("lets authorizePublish decide instead of the token's scope, and answers 500 when it throws", async () => {
    const s = await startPublishingServer({
      publish: {},
      authorizePublish: (_event, { viewerId, publisher, contentId, action }) => {
        if (viewerId === "boom") throw new Error("secret detail");
        // An editor may publish their own titles only, and only keys for "m"; the scope is not asked.
        return (
          viewerId === "editor" &&
          !publisher &&
          (contentId === "m" || (contentId === "m2" && action === "uploads"))
        );
      },
    });
    try {
      expect((await s.post("/keys/publish/m/keys", { keys: [0] }, await bearer("editor"))).status).toBe(200);
      expect((await s.post("/keys/publish/other/keys", { keys: [0] }, await bearer("editor"))).status).toBe(
        403,
      );
      expect((await s.post("/keys/publish/m2/keys", { keys: [0] }, await bearer("editor"))).status).toBe(403);
      // The scope alone no longer makes a publisher: the callback decides.
      expect((await s.post("/keys/publish/m/keys", { keys: [0] }, await publisherToken())).status).toBe(403);
      const boom = await s.post("/keys/publish/m/keys", { keys: [0] }, await bearer("boom"));
      expect(boom.status).toBe(500);
      expect(JSON.stringify(boom.body)).not.toContain("secret detail");
    } finally {
      await s.server.close();
    }
  });
});

describe("publish configuration is checked at start", () => {
  const base = { masterKey, salt, corsOrigins: "*", logger: { warn() {}, error() {} } };
  const auth = createJwtAuthenticator({ secret: PUBLISH_SECRET, publisherScope: "blindcast:publish" });
  it.each<[string, object, RegExp]>([
    ["publish without authenticate", { publish: {} }, /publish needs authenticate/],
    [
      "authorizePublish without publish",
      { authenticate: auth, authorizePublish: () => true },
      /publish is not/,
    ],
    [
      "a bucket name S3 refuses",
      { authenticate: auth, publish: { storage: { ...STORAGE, bucket: "My_Bucket" } } },
      /bucket/,
    ],
    [
      "a region with a slash",
      { authenticate: auth, publish: { storage: { ...STORAGE, region: "eu/west" } } },
      /region/,
    ],
    [
      "an endpoint with a path",
      { authenticate: auth, publish: { storage: { ...STORAGE, endpoint: "https://s3.example/x" } } },
      /endpoint/,
    ],
    [
      "an endpoint that is no URL",
      { authenticate: auth, publish: { storage: { ...STORAGE, endpoint: "minio:9000" } } },
      /endpoint/,
    ],
    [
      "a prefix with ..",
      { authenticate: auth, publish: { storage: { ...STORAGE, prefix: "a/../b" } } },
      /prefix/,
    ],
    [
      "no credentials",
      { authenticate: auth, publish: { storage: { ...STORAGE, credentials: {} } } },
      /credentials/,
    ],
    [
      "a URL lifetime of a day",
      { authenticate: auth, publish: { uploadUrlTtlSeconds: 86400 } },
      /uploadUrlTtlSeconds/,
    ],
    ["a zero file limit", { authenticate: auth, publish: { maxFileBytes: 0 } }, /maxFileBytes/],
  ])("refuses %s", (_, options, message) => {
    expect(() => createLambdaKeyServer({ ...base, ...options } as never)).toThrow(KeyServerConfigError);
    expect(() => createLambdaKeyServer({ ...base, ...options } as never)).toThrow(message);
  });

  it("refuses a publisherClaim without publisherScope, and a scope with spaces", () => {
    expect(() => createJwtAuthenticator({ secret: PUBLISH_SECRET, publisherClaim: "roles" })).toThrow(
      /publisherScope/,
    );
    expect(() => createJwtAuthenticator({ secret: PUBLISH_SECRET, publisherScope: "a b" })).toThrow(
      /one word/,
    );
  });
});

describe("createJwtAuthenticator({ publisherScope })", () => {
  const call = async (
    authenticate: ReturnType<typeof createJwtAuthenticator>,
    claims: Record<string, unknown>,
  ) => authenticate({ headers: { authorization: await bearer("p", claims) } });
  const scoped = createJwtAuthenticator({ secret: PUBLISH_SECRET, publisherScope: "blindcast:publish" });
  const byRole = createJwtAuthenticator({
    secret: PUBLISH_SECRET,
    publisherScope: "publisher",
    publisherClaim: "roles",
  });
  it.each<[string, ReturnType<typeof createJwtAuthenticator>, Record<string, unknown>, boolean]>([
    ["scope string", scoped, { scope: "openid blindcast:publish" }, true],
    ["scp array (Okta, Azure AD)", scoped, { scp: ["read", "blindcast:publish"] }, true],
    ["scp string", scoped, { scp: "blindcast:publish" }, true],
    ["a scope that only starts the same", scoped, { scope: "blindcast:publisher" }, false],
    ["no scope", scoped, {}, false],
    ["scope as a number", scoped, { scope: 1 }, false],
    ["custom claim array", byRole, { roles: ["viewer", "publisher"] }, true],
    ["custom claim, scope ignored", byRole, { scope: "publisher" }, false],
  ])("%s → publisher %s", async (_, authenticate, claims, publisher) => {
    const result = await call(authenticate, claims);
    expect(result).toEqual(
      publisher ? { ok: true, viewerId: "p", publisher: true } : { ok: true, viewerId: "p" },
    );
  });
});

describe("publishing from the environment (blindcast-keys)", () => {
  const env = {
    MASTER_KEY: MASTER_KEY_HEX,
    SALT: SALT_HEX,
    CORS_ORIGINS: "*",
    LEASES: "off",
    JWT_SECRET: PUBLISH_SECRET,
    PORT: "0",
  };
  it.each<[string, Record<string, string>, RegExp]>([
    ["PUBLISH without tokens", { JWT_SECRET: "", PUBLISH: "on" }, /Publishing needs bearer tokens/],
    ["PUBLISH=yes", { PUBLISH: "yes" }, /PUBLISH must be/],
    ["a bucket without credentials", { PUBLISH_BUCKET: "media" }, /AWS_ACCESS_KEY_ID/],
    ["a bucket with PUBLISH=off", { PUBLISH_BUCKET: "media", PUBLISH: "off" }, /PUBLISH=off/],
    ["S3_FORCE_PATH_STYLE=1", { PUBLISH: "on", S3_FORCE_PATH_STYLE: "1" }, /S3_FORCE_PATH_STYLE/],
    ["a TTL in words", { PUBLISH: "on", UPLOAD_URL_TTL_SECONDS: "ten" }, /whole number/],
  ])("refuses %s", async (_, extra, message) => {
    await expect(keyServerOptionsFromEnv({ ...env, ...extra })).rejects.toThrow(EnvConfigError);
    await expect(keyServerOptionsFromEnv({ ...env, ...extra })).rejects.toThrow(message);
  });

  it("turns publishing on from PUBLISH_BUCKET, with tokens carrying blindcast:publish as publishers", async () => {
    const config = await keyServerOptionsFromEnv({
      ...env,
      PUBLISH_BUCKET: "media",
      PUBLISH_PREFIX: "/streams/",
      S3_ENDPOINT: "http://127.0.0.1:9000",
      S3_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "AKIDTEST",
      AWS_SECRET_ACCESS_KEY: "test-secret",
    });
    expect(config.summary.join("\n")).toContain(
      "uploads to http://127.0.0.1:9000 bucket media/streams (us-east-1)",
    );
    expect(config.summary.join("\n")).not.toContain("test-secret");
    const handler = createLambdaKeyServer({ ...config.options, audit: false });
    const event = async (path: string, body: unknown, claims: Record<string, unknown>) =>
      handler({
        version: "2.0",
        rawPath: path,
        routeKey: "$default",
        headers: { authorization: await bearer("p", claims), "content-type": "application/json" },
        body: JSON.stringify(body),
        isBase64Encoded: false,
        requestContext: { http: { method: "POST", path }, stage: "$default" },
      } as never);
    const ok = (await event(
      "/keys/publish/m/uploads",
      { files: [{ path: "a.ts", size: 3 }] },
      { scope: "blindcast:publish" },
    )) as {
      statusCode: number;
      body: string;
    };
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(ok.body).uploads[0].url as string).toMatch(
      /^http:\/\/127\.0\.0\.1:9000\/media\/streams\/m\/a\.ts\?/,
    );
    const viewer = (await event("/keys/publish/m/keys", { keys: [0] }, {})) as { statusCode: number };
    expect(viewer.statusCode).toBe(403);
    await config.close();
  });
});

describe("with leases off", () => {
  it("still needs a publisher for publisher routes", async () => {
    const s = await startPublishingServer({ leaseStore: undefined, publish: {} });
    try {
      expect((await s.post("/keys/publish/m/keys", { keys: [0] }, await viewerToken())).status).toBe(403);
      expect((await s.post("/keys/publish/m/keys", { keys: [0] }, await publisherToken())).status).toBe(200);
    } finally {
      await s.server.close();
    }
  });
  it("keeps a memory lease store import used", () => {
    expect(typeof createMemoryLeaseStore).toBe("function");
  });
});
