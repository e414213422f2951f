import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bytesToHex } from "@blindcast/crypto";
import type { LambdaHttpResult } from "@blindcast/keys/lambda";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { albEvent, httpApiEvent, restApiEvent } from "../packages/keys-lambda/test/support/aws-events.js";
import { headersOf, type RequestSpec, v2Event } from "../packages/keys-lambda/test/support/events.js";
import { pythonWithBoto3 } from "../packages/keys-lambda/test/support/python.js";
import { LAMBDA_NODE_MAJOR, lambdaNodePath } from "../scripts/lambda-node.mjs";
import { type Cluster, startCluster } from "../scripts/pg-cluster.mjs";
import { LambdaProcess } from "./support/lambda-process.js";

// The deployable bundles, built as `pnpm build:lambda` builds them and run as Lambda runs them:
// in their own process, on the Node major of the templates' runtime (not the Node running
// these tests), with nothing but the function's environment, invoked event after event.

const root = fileURLToPath(new URL("..", import.meta.url));
const vectors = JSON.parse(
  readFileSync(new URL("./vectors/key-derivation-vectors.json", import.meta.url), "utf8"),
) as { masterKey: string; salt: string; contentId: string; epoch?: number; key: string }[];
const vector = vectors.find((v) => v.contentId === "movie-42" && v.epoch === 7)!;

const JWT_SECRET = "test-only-jwt-secret-0123456789abcdef";
const ORIGIN = "https://app.example.com";
const ENV = {
  MASTER_KEY: vector.masterKey,
  SALT: vector.salt,
  CORS_ORIGINS: ORIGIN,
  JWT_SECRET,
};
// The templates' function timeout: no invocation may take longer.
const FUNCTION_TIMEOUT_MS = 10_000;

const dir = mkdtempSync(join(tmpdir(), "blindcast-bundle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Builds deploy/handlers/<variant>.ts with scripts/build-lambda.mjs, as the deploy docs do. */
function build(variant: string, entry = `${root}deploy/handlers/${variant}.ts`): string {
  const outfile = join(dir, variant, "index.mjs");
  execFileSync(process.execPath, [`${root}scripts/build-lambda.mjs`, entry, outfile]);
  return outfile;
}

/** Every file of a bundle's folder: the entry point and its chunks. */
function bundleFiles(bundle: string): string[] {
  const folder = dirname(bundle);
  return readdirSync(folder, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".mjs"))
    .map((name) => join(folder, name));
}

/** The files a cold start reads: the entry point and the chunks it imports statically. */
function loadedAtStart(bundle: string): string[] {
  const files: string[] = [];
  const visit = (file: string) => {
    if (files.includes(file)) return;
    files.push(file);
    // Static imports only (`import{…}from"./chunks/…"`), not `import("./chunks/…")`.
    for (const match of readFileSync(file, "utf8").matchAll(
      /\bimport\s*(?:\{[^}]*\}\s*from\s*)?["'](\.[^"']+)["']/g,
    )) {
      visit(resolve(dirname(file), match[1] as string));
    }
  };
  visit(bundle);
  return files;
}

function start(bundle: string, env: Record<string, string>): Promise<LambdaProcess> {
  return LambdaProcess.start({ node: lambdaNodePath(), bundle, env, timeoutMs: FUNCTION_TIMEOUT_MS });
}

function token(viewer: string, secret = JWT_SECRET): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(viewer)
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(secret));
}

/** An HTTP API (payload 2.0) event from the player's page. */
function request(spec: RequestSpec & { token?: string }) {
  return v2Event({
    ...spec,
    headers: {
      origin: ORIGIN,
      ...(spec.token ? { authorization: `Bearer ${spec.token}` } : {}),
      ...(spec.body === undefined ? {} : { "content-type": "application/json" }),
      ...spec.headers,
    },
  });
}

function keyHex(result: LambdaHttpResult): string {
  expect(result.statusCode).toBe(200);
  expect(result.isBase64Encoded).toBe(true);
  expect(result.headers["content-type"]).toBe("application/octet-stream");
  return bytesToHex(new Uint8Array(Buffer.from(result.body, "base64")));
}

function json(result: LambdaHttpResult): Record<string, unknown> {
  expect(result.isBase64Encoded).toBe(false);
  return JSON.parse(result.body) as Record<string, unknown>;
}

/** The audit records the function printed; the log must hold no key bytes and no token. */
function auditOf(lambda: LambdaProcess, secrets: string[]): { route: string; status: number }[] {
  for (const secret of secrets) expect(lambda.log + lambda.errors).not.toContain(secret);
  return lambda.log
    .split("\n")
    .filter((line) => line.startsWith('{"type":"blindcast.keys.request"'))
    .map((line) => JSON.parse(line) as { route: string; status: number });
}

describe("the keys bundle (deploy/handlers/keys.ts) on the Lambda runtime's Node", () => {
  let lambda: LambdaProcess;
  let bundle: string;
  beforeAll(async () => {
    bundle = build("keys");
    lambda = await start(bundle, ENV);
  }, 60_000);
  afterAll(() => lambda?.close());

  it("imports no Node module but node:crypto, in any of its files", () => {
    // On Node 24, importing node:http (once here for STATUS_CODES) loads over a hundred internal
    // modules, undici and http2 among them: most of the bundle's cold start. (No node:module
    // either: nothing in this variant calls require, so the build leaves its banner out.)
    const imported = new Set(
      bundleFiles(bundle).flatMap((file) =>
        [...readFileSync(file, "utf8").matchAll(/(?:from\s*|import\s*\(\s*|require\(\s*)["']([^"']+)["']/g)]
          .map((m) => m[1] as string)
          .filter((name) => !name.startsWith("./")),
      ),
    );
    expect([...imported].sort()).toEqual(["node:crypto"]);
  });

  it("leaves the upload signer and the JWKS fetcher out of what a cold start loads", () => {
    // They are files of their own, imported on first use: the upload signer (aws4fetch) at the
    // first upload request, jose's JWKS code at the first token of a jwksUrl authenticator. A
    // cold start reads index.mjs alone.
    expect(loadedAtStart(bundle)).toEqual([bundle]);
    const atStart = loadedAtStart(bundle)
      .map((file) => readFileSync(file, "utf8"))
      .join("\n");
    const all = bundleFiles(bundle)
      .map((file) => readFileSync(file, "utf8"))
      .join("\n");
    for (const marker of ["AWS4-HMAC-SHA256", "JSON Web Key Set HTTP response"]) {
      expect(atStart).not.toContain(marker);
      expect(all).toContain(marker);
    }
  });

  it("runs on that Node major, not the tests' own", () => {
    expect(lambda.version).toMatch(new RegExp(`^v${LAMBDA_NODE_MAJOR}\\.`));
  });

  it("verifies the bearer JWT and answers with the contract's key", async () => {
    const path = "/keys/movie-42/7";
    expect((await lambda.invoke(request({ path }))).statusCode).toBe(401);
    expect((await lambda.invoke(request({ path, token: "not.a.jwt" }))).statusCode).toBe(401);
    const forged = await token("viewer-1", "another-secret-0123456789abcdef0123");
    expect((await lambda.invoke(request({ path, token: forged }))).statusCode).toBe(401);

    const valid = await token("viewer-1");
    const result = await lambda.invoke(request({ path, token: valid }));
    expect(keyHex(result)).toBe(vector.key);
    expect(result.headers["access-control-allow-origin"]).toBe(ORIGIN);

    const preflight = await lambda.invoke(
      request({ method: "OPTIONS", path, headers: { "access-control-request-method": "GET" } }),
    );
    expect(preflight.statusCode).toBe(204);

    const audit = auditOf(lambda, [valid, vector.key, Buffer.from(vector.key, "hex").toString("base64")]);
    expect(audit.map((r) => r.status)).toEqual([401, 401, 401, 200, 204]);
  });
});

describe("the keys bundle with PUBLISH_BUCKET (the template's PublishBucket) on the runtime's Node", () => {
  // What Lambda puts in a function's environment: its region and its role's temporary credentials.
  const ROLE = {
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "ASIAEXAMPLEROLEKEY01",
    AWS_SECRET_ACCESS_KEY: "role-secret/For+Tests=0123456789abcdef",
    AWS_SESSION_TOKEN: "IQoJb3JpZ2luX2VjEXAMPLE/+session==",
  };
  let lambda: LambdaProcess;
  beforeAll(async () => {
    lambda = await start(build("keys"), {
      ...ENV,
      ...ROLE,
      PUBLISH_BUCKET: "media-bucket",
      PUBLISH_PREFIX: "streams",
    });
  }, 60_000);
  afterAll(() => lambda?.close());

  const publisher = () =>
    new SignJWT({ scope: "blindcast:publish" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("publisher-1")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(JWT_SECRET));

  it("signs uploads with the role's credentials (equal to botocore's URL), and refuses viewers", async () => {
    const body = JSON.stringify({ files: [{ path: "v0/seg0.ts", size: 1234 }] });
    const path = "/keys/publish/movie-42/uploads";
    const answer = await lambda.invoke(request({ method: "POST", path, token: await publisher(), body }));
    expect(answer.statusCode).toBe(200);
    const upload = (json(answer).uploads as { url: string }[])[0] as { url: string };
    const amzDate = new URL(upload.url).searchParams.get("X-Amz-Date");
    const oracle = execFileSync(
      pythonWithBoto3(),
      [`${root}packages/keys-lambda/test/support/botocore-presign.py`],
      {
        encoding: "utf8",
        timeout: 60_000,
        input: JSON.stringify([
          {
            bucket: "media-bucket",
            key: "streams/movie-42/v0/seg0.ts",
            region: "eu-west-1",
            endpoint: null,
            pathStyle: false,
            accessKeyId: ROLE.AWS_ACCESS_KEY_ID,
            secretAccessKey: ROLE.AWS_SECRET_ACCESS_KEY,
            sessionToken: ROLE.AWS_SESSION_TOKEN,
            method: "PUT",
            contentType: "video/mp2t",
            contentLength: 1234,
            expires: 900,
            amzDate,
          },
        ]),
      },
    );
    expect([upload.url]).toEqual(JSON.parse(oracle));

    const viewer = await token("viewer-1");
    const refused = await lambda.invoke(request({ method: "POST", path, token: viewer, body }));
    expect(refused.statusCode).toBe(403);
    expect(json(refused).code).toBe("publisher_required");
    const keys = await lambda.invoke(
      request({ method: "POST", path: "/keys/publish/movie-42/keys", token: viewer, body: '{"keys":[7]}' }),
    );
    expect(keys.statusCode).toBe(403);
    const packaging = await lambda.invoke(
      request({
        method: "POST",
        path: "/keys/publish/movie-42/keys",
        token: await publisher(),
        body: '{"keys":[7]}',
      }),
    );
    expect(packaging.statusCode).toBe(200);
    const [first] = json(packaging).keys as { key: string }[];
    expect(bytesToHex(new Uint8Array(Buffer.from(first?.key ?? "", "base64")))).toBe(vector.key);
    auditOf(lambda, [ROLE.AWS_SECRET_ACCESS_KEY, vector.key]);
  });

  it("leaves publishing off without PUBLISH_BUCKET (404 publishing_disabled)", async () => {
    const off = await start(build("keys"), ENV);
    try {
      const answer = await off.invoke(
        request({
          method: "POST",
          path: "/keys/publish/m/keys",
          token: await publisher(),
          body: '{"keys":[0]}',
        }),
      );
      expect(answer.statusCode).toBe(404);
      expect(json(answer).code).toBe("publishing_disabled");
    } finally {
      off.close();
    }
  });
});

describe("a bundled handler with a JWKS authenticator (jose's JWKS fetcher in a file of its own)", () => {
  const ISSUER = "https://id.example";
  const AUDIENCE = "blindcast";
  let jwks: Server;
  let lambda: LambdaProcess;
  let bundle: string;
  let sign: (viewer: string) => Promise<string>;
  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    jwks = createServer((_, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    sign = (viewer) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(viewer)
        .setExpirationTime("5m")
        .sign(privateKey);
    bundle = build("jwks", `${root}test/fixtures/jwks-handler.ts`);
    lambda = await start(bundle, {
      ...ENV,
      JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
    });
  }, 60_000);
  afterAll(async () => {
    lambda?.close();
    await new Promise((resolve) => jwks?.close(resolve));
  });

  it("loads the JWKS code only at the first token, and verifies the provider's tokens with it", async () => {
    expect(loadedAtStart(bundle)).toEqual([bundle]);
    expect(readFileSync(bundle, "utf8")).not.toContain("JSON Web Key Set HTTP response");
    const path = "/keys/movie-42/7";
    expect(keyHex(await lambda.invoke(request({ path, token: await sign("viewer-1") })))).toBe(vector.key);
    // A token signed with a shared secret (HS256) is refused: only the provider's keys count.
    expect((await lambda.invoke(request({ path, token: await token("viewer-1") }))).statusCode).toBe(401);
    expect((await lambda.invoke(request({ path, token: await sign("viewer-2") }))).statusCode).toBe(200);
  });
});

describe("the keys bundle answers every event source AWS sends, on the runtime's Node", () => {
  let lambda: LambdaProcess;
  beforeAll(async () => {
    lambda = await start(build("keys"), ENV);
  }, 60_000);
  afterAll(() => lambda?.close());

  it("REST behind a base path named keys, an ALB target group with multi-value headers, an HTTP API stage keys", async () => {
    const valid = await token("viewer-1");
    const spec = { path: "/keys/movie-42/7", headers: { Origin: ORIGIN, Authorization: `Bearer ${valid}` } };
    const results = [
      await lambda.invoke(restApiEvent(spec, { basePath: "keys" }, { binary: true })),
      await lambda.invoke(albEvent(spec, true)),
      await lambda.invoke(httpApiEvent(spec, { stage: "keys" })),
    ];
    for (const result of results) {
      expect(result.statusCode).toBe(200);
      expect(result.isBase64Encoded).toBe(true);
      expect(bytesToHex(new Uint8Array(Buffer.from(result.body, "base64")))).toBe(vector.key);
      expect(headersOf(result)["access-control-allow-origin"]).toBe(ORIGIN);
    }
    expect(results[1]).toMatchObject({ statusDescription: "200 OK" });
    expect(results[1]).toHaveProperty("multiValueHeaders");
  });
});

describe("the keys-postgres bundle (deploy/handlers/keys-postgres.ts) against a real PostgreSQL", () => {
  // Its own cluster: the test stops it.
  let cluster: Cluster;
  let lambda: LambdaProcess;
  beforeAll(async () => {
    const bundle = build("keys-postgres");
    cluster = await startCluster();
    lambda = await start(bundle, {
      ...ENV,
      DATABASE_URL: cluster.url,
      MAX_CONCURRENT_LEASES: "2",
      LEASE_TTL_SECONDS: "60",
    });
  }, 60_000);
  afterAll(() => {
    lambda?.close();
    cluster?.destroy();
  });

  it("loads on the Lambda runtime's Node major (pg is CommonJS inside the ES module)", () => {
    expect(lambda.version).toMatch(new RegExp(`^v${LAMBDA_NODE_MAJOR}\\.`));
  });

  it("serves a lease with its first key, a key, a renewal and a release; 503 while the database is down, and recovers", async () => {
    const viewer = await token("viewer-1");
    const other = await token("viewer-2");
    const leases = "/keys/leases";
    const key = (lease: string, as = viewer) =>
      lambda.invoke(
        request({ path: "/keys/movie-42/7", token: as, headers: { "x-blindcast-lease": lease } }),
      );
    const createLease = () =>
      lambda.invoke(
        request({ method: "POST", path: leases, token: viewer, body: '{"contentId":"movie-42","keys":[7]}' }),
      );

    // A lease, with the first key in the same answer.
    const created = await createLease();
    expect(created.statusCode).toBe(201);
    const lease = json(created) as {
      leaseId: string;
      ttlSeconds: number;
      keys: { epoch: number; key: string }[];
    };
    expect(lease.ttlSeconds).toBe(60);
    expect(
      lease.keys.map((k) => [k.epoch, bytesToHex(new Uint8Array(Buffer.from(k.key, "base64")))]),
    ).toEqual([[7, vector.key]]);

    // Keys need the lease, and only its viewer may use it.
    expect(keyHex(await key(lease.leaseId))).toBe(vector.key);
    const refused = async (result: Promise<LambdaHttpResult>) => {
      const answer = await result;
      return [answer.statusCode, json(answer).code];
    };
    expect(await refused(lambda.invoke(request({ path: "/keys/movie-42/7", token: viewer })))).toEqual([
      403,
      "lease_required",
    ]);
    expect(await refused(key(lease.leaseId, other))).toEqual([403, "lease_forbidden"]);
    expect((await lambda.invoke(request({ path: "/keys/movie-42/7" }))).statusCode).toBe(401);

    const renewed = await lambda.invoke(
      request({
        method: "POST",
        path: `${leases}/renew`,
        token: viewer,
        body: JSON.stringify({ leaseId: lease.leaseId }),
      }),
    );
    expect(renewed.statusCode).toBe(200);
    expect(json(renewed).leaseId).toBe(lease.leaseId);

    const released = await lambda.invoke(
      request({ method: "DELETE", path: `${leases}/${lease.leaseId}`, token: viewer }),
    );
    expect(released.statusCode).toBe(204);
    expect(await refused(key(lease.leaseId))).toEqual([403, "lease_not_found"]);

    // MAX_CONCURRENT_LEASES=2 from the environment.
    const live = json(await createLease()).leaseId as string;
    expect((await createLease()).statusCode).toBe(201);
    expect((await createLease()).statusCode).toBe(429);

    // The database goes away under the warm function: fail closed, quickly, with a retry hint.
    cluster.stop();
    for (const response of [await key(live), await createLease()]) {
      expect(response.statusCode).toBe(503);
      expect(response.headers["retry-after"]).toBe("1");
      expect(json(response)).toEqual({
        error: "Lease store unavailable, try again shortly",
        code: "store_unavailable",
      });
    }

    // Back: the same environment serves again, and the committed lease survived.
    cluster.start();
    expect(keyHex(await key(live))).toBe(vector.key);
    expect((await createLease()).statusCode).toBe(429);

    const audit = auditOf(lambda, [viewer, other, vector.key, lease.leaseId]);
    expect(audit.filter((r) => r.status === 503)).toHaveLength(2);
    // What the store logs about the outage names no host.
    expect(lambda.log + lambda.errors).not.toMatch(/password|127\.0\.0\.1/);
  }, 60_000);
});
