import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { bytesToHex } from "@blindcast/crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  documentedFiles,
  extractSnippets,
  isBrowserSnippet,
  placeholdersOf,
  withPlaceholders,
} from "./doc-snippets.mjs";

// Every ```ts block in the README, docs/ and the package READMEs must compile as a user's code
// would (strict, ESM, importing the packages by name) and, where it can run alone, run unchanged.
// test/outside-in/run.mjs compiles the same blocks again against the packed tarballs.
const root = new URL("..", import.meta.url).pathname;
const examples = extractSnippets(root, documentedFiles(root));

const vectors = JSON.parse(readFileSync(join(root, "test/vectors/key-derivation-vectors.json"), "utf8")) as {
  masterKey: string;
  salt: string;
  contentId: string;
  epoch?: number;
  key: string;
}[];
const demoKey = vectors.find((v) => v.contentId === "demo" && v.epoch === undefined)!;

// Test-only value, never a deployment's: the examples read JWT_SECRET from the environment.
const TEST_JWT_SECRET = "docs-examples-test-secret-0123456789abcdef";

// An identity provider of our own for examples that verify RS256 tokens against a JWKS URL.
const ISSUER = "https://id.example";
const AUDIENCE = "blindcast";
const provider = await generateKeyPair("RS256");
let jwksServer: Server | undefined;

/** A token for viewer-1 as the example's identity provider would sign it. */
function viewerToken(code: string): Promise<string> {
  const jwt = new SignJWT({}).setSubject("viewer-1").setIssuedAt().setExpirationTime("5m");
  if (code.includes("JWKS_URL")) {
    return jwt
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .sign(provider.privateKey);
  }
  return jwt.setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

describe("documentation examples", () => {
  beforeAll(async () => {
    const jwk = { ...(await exportJWK(provider.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    jwksServer = createServer((_, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer?.listen(0, "127.0.0.1", resolve));
    const { port } = jwksServer.address() as AddressInfo;
    Object.assign(process.env, {
      JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
    });
  });
  afterAll(() => jwksServer?.close());

  const dir = join(root, ".docs-check");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        skipLibCheck: true,
        lib: ["ES2022", "DOM"],
        types: ["node"],
        outDir: "out",
        rootDir: ".",
      },
      include: ["*.ts"],
    }),
  );
  for (const example of examples) {
    writeFileSync(join(dir, `${example.file}.ts`), withPlaceholders(example.code));
  }

  it("finds the examples", () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });

  // One tsc run over every block: about 10 s of CPU, which a loaded 2-core machine stretches
  // past vitest's default timeout; bounded by its own.
  it("all compile with strict TypeScript against the published types", { timeout: 120_000 }, () => {
    const tsc = join(root, "node_modules/.bin/tsc");
    let output = "";
    try {
      execFileSync(tsc, ["-p", dir], { encoding: "utf8", timeout: 110_000 });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout ?? error);
    }
    expect(output).toBe("");
  });

  // Compiled all; run those that stand alone in Node: not test suites (they register tests),
  // not browser code, not the packager (it needs a stream to package).
  const runnable = examples.filter(
    (e) =>
      !/\bdeclare\b/.test(e.code) &&
      !e.code.includes('from "vitest"') &&
      !isBrowserSnippet(e.code) &&
      !e.code.includes('from "@blindcast/packager"') &&
      placeholdersOf(e.code).length === 0,
  );
  it.each(runnable.map((e) => [e.name, e] as const))("%s runs unchanged", async (_, example) => {
    Object.assign(process.env, {
      MASTER_KEY: demoKey.masterKey,
      SALT: demoKey.salt,
      CORS_ORIGINS: "https://app.example.com",
      JWT_SECRET: TEST_JWT_SECRET,
    });
    const logged: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => logged.push(args.join(" "));
    let module: {
      handler?: (event: unknown) => Promise<Answer>;
      app?: RequestListener;
    };
    try {
      module = await import(join(dir, "out", `${example.file}.js`));
    } finally {
      console.log = log;
    }
    // A `console.log(x) // value` line documents its output: check it.
    for (const [, expected] of example.code.matchAll(/console\.log\(.*\)\s*\/\/\s*(\S+)/g)) {
      expect(logged).toContain(expected);
    }
    // A Lambda `handler` is invoked with events; an Express `app` is served on loopback and
    // asked over HTTP, its key routes mounted at /keys as the README's example mounts them.
    const { handler, app } = module;
    let send: Send | undefined;
    let server: Server | undefined;
    if (handler) {
      send = (path, method, headers, body) =>
        handler({
          version: "2.0",
          rawPath: path,
          headers,
          requestContext: {
            http: { method },
            stage: "$default",
            // Where API Gateway verified the token (an authorizer in front), the event carries
            // what it found; a caller without a token has none.
            ...(headers.authorization
              ? { authorizer: { jwt: { claims: { sub: "viewer-1" }, scopes: [] } } }
              : {}),
          },
          ...(body ? { body } : {}),
        });
    } else if (typeof app === "function") {
      const listening = createServer(app);
      server = listening;
      await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
      const { port } = listening.address() as AddressInfo;
      send = async (path, method, headers, body) => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body });
        const bytes = Buffer.from(await response.arrayBuffer());
        const binary = response.headers.get("content-type") === "application/octet-stream";
        return { statusCode: response.status, body: bytes.toString(binary ? "base64" : "utf8") };
      };
    }
    try {
      if (send) await checkServesKeys(send, await viewerToken(example.code));
    } finally {
      server?.closeAllConnections();
      server?.close();
    }
  });
});

interface Answer {
  statusCode: number;
  /** Keys base64-encoded, as a Lambda answers them. */
  body: string;
}

type Send = (path: string, method: string, headers: Record<string, string>, body?: string) => Promise<Answer>;

/** Safe as written and working: no key without a token, the demo key with one (and a lease). */
async function checkServesKeys(send: Send, token: string): Promise<void> {
  const stranger = await send("/keys/demo", "GET", {});
  expect(stranger.statusCode).toBe(401);
  const request = (path: string, method = "GET", headers: Record<string, string> = {}, body?: string) =>
    send(path, method, { authorization: `Bearer ${token}`, ...headers }, body);
  let result = await request("/keys/demo");
  if (result.statusCode === 403 && result.body.includes("lease_required")) {
    // With leases on, as a player does: create one, then ask again with it.
    const lease = await request(
      "/keys/leases",
      "POST",
      { "content-type": "application/json" },
      '{"contentId":"demo"}',
    );
    expect(lease.statusCode).toBe(201);
    const { leaseId } = JSON.parse(lease.body) as { leaseId: string };
    result = await request("/keys/demo", "GET", { "x-blindcast-lease": leaseId });
  }
  expect(result.statusCode).toBe(200);
  expect(bytesToHex(new Uint8Array(Buffer.from(result.body, "base64")))).toBe(demoKey.key);
}
