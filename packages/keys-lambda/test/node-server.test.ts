import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex } from "@blindcast/crypto";
import type { AuditRecord } from "@blindcast/keys";
import { type ApiGatewayV2Event, createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import {
  EnvConfigError,
  keyServerOptionsFromEnv,
  type RunningKeyServer,
  startKeyServer,
  toNodeListener,
} from "@blindcast/keys/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCliToExit, startCli } from "./support/cli.js";
import { MASTER_KEY_HEX, masterKey, recordingLogger, SALT_HEX, salt, vectorFor } from "./support/fixtures.js";
import { databaseUrl } from "./support/postgres.js";

const ORIGIN = "http://localhost:5173";

describe("the key server over real HTTP (node:http adapter)", () => {
  let server: RunningKeyServer;

  beforeAll(async () => {
    server = await startKeyServer({
      masterKey,
      salt,
      corsOrigins: ORIGIN,
      port: 0,
      authenticate: (event) =>
        event.headers?.authorization === "Bearer viewer-token"
          ? { ok: true, viewerId: "viewer-1" }
          : { ok: false, status: 401, reason: "Missing token" },
      leaseStore: createMemoryLeaseStore(),
      audit: false,
      logger: recordingLogger(),
    });
  });
  afterAll(() => server.close());

  const auth = { authorization: "Bearer viewer-token" };

  it("binds to loopback and reports the keys URL", () => {
    expect(server.keysUrl).toBe(`http://127.0.0.1:${server.port}/keys`);
  });

  it("runs a whole session: lease, content key, epoch keys, renew, release", async () => {
    const created = await fetch(`${server.keysUrl}/leases`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json", origin: ORIGIN },
      body: JSON.stringify({ contentId: "movie-42" }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const lease = (await created.json()) as { leaseId: string; ttlSeconds: number };
    expect(lease.ttlSeconds).toBe(60);

    const withLease = { ...auth, "x-blindcast-lease": lease.leaseId, origin: ORIGIN };
    const content = await fetch(`${server.keysUrl}/movie-42`, { headers: withLease });
    expect(content.status).toBe(200);
    expect(content.headers.get("content-type")).toBe("application/octet-stream");
    expect(content.headers.get("cache-control")).toBe("no-store");
    expect(content.headers.get("content-length")).toBe("16");
    expect(content.headers.get("transfer-encoding")).toBeNull();
    expect(bytesToHex(new Uint8Array(await content.arrayBuffer()))).toBe(vectorFor("movie-42"));

    for (const epoch of [0, 1, 7]) {
      const response = await fetch(`${server.keysUrl}/movie-42/${epoch}`, { headers: withLease });
      expect(bytesToHex(new Uint8Array(await response.arrayBuffer()))).toBe(vectorFor("movie-42", epoch));
    }

    const renewed = await fetch(`${server.keysUrl}/leases/renew`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ leaseId: lease.leaseId }),
    });
    expect(renewed.status).toBe(200);

    const released = await fetch(`${server.keysUrl}/leases/${lease.leaseId}`, {
      method: "DELETE",
      headers: auth,
    });
    expect(released.status).toBe(204);
    const after = await fetch(`${server.keysUrl}/movie-42`, { headers: withLease });
    expect(after.status).toBe(403);
    expect(await after.json()).toEqual({ error: "Lease not found", code: "lease_not_found" });
  });

  it("answers a browser preflight", async () => {
    const response = await fetch(`${server.keysUrl}/movie-42/3`, {
      method: "OPTIONS",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization,x-blindcast-lease",
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-headers")).toContain("x-blindcast-lease");
  });

  it("refuses without a token, and from another origin", async () => {
    expect((await fetch(`${server.keysUrl}/movie-42`)).status).toBe(401);
    const foreign = await fetch(`${server.keysUrl}/movie-42`, {
      headers: { ...auth, origin: "http://evil.localhost" },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("refuses a repeated Authorization header, which node:http alone would silently drop", async () => {
    const status = await rawRequest(server.port, "GET", "/keys/movie-42", [
      ["authorization", "Bearer viewer-token"],
      ["authorization", "Bearer someone-else"],
    ]);
    expect(status.code).toBe(400);
    expect(status.body).toContain("Header authorization must appear once");
  });

  it("takes a SigV4 Authorization (commas and all) as one header, and two Origins as a repeat", async () => {
    const sigv4 =
      "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261129/us-east-1/execute-api/aws4_request, " +
      "SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    // The server's authenticate knows only the bearer token: a SigV4 caller reaches it (401), not 400.
    const signed = await rawRequest(server.port, "GET", "/keys/movie-42", [["authorization", sigv4]]);
    expect(signed.code).toBe(401);
    expect(signed.body).toContain("Missing token");
    const origins = await rawRequest(server.port, "GET", "/keys/movie-42", [
      ["origin", ORIGIN],
      ["origin", ORIGIN],
      ["authorization", "Bearer viewer-token"],
    ]);
    expect(origins.code).toBe(400);
    expect(origins.body).toContain("Header origin must appear once");
  });

  it("hands authenticate the API Gateway v2 event the Lambda would receive", async () => {
    const seen: ApiGatewayV2Event[] = [];
    const local = await startKeyServer({
      masterKey,
      salt,
      corsOrigins: ORIGIN,
      port: 0,
      authenticate: (event) => {
        seen.push(event as ApiGatewayV2Event);
        return { ok: true };
      },
      audit: false,
      logger: recordingLogger(),
    });
    try {
      const response = await fetch(`${local.keysUrl}/movie-42/3?via=test&x=1`, {
        headers: { Authorization: "Bearer t", cookie: "a=1; b=2", origin: ORIGIN },
      });
      expect(response.status).toBe(200);
      expect(seen).toHaveLength(1);
      const event = seen[0];
      expect(event).toMatchObject({
        version: "2.0",
        routeKey: "$default",
        rawPath: "/keys/movie-42/3",
        rawQueryString: "via=test&x=1",
        queryStringParameters: { via: "test", x: "1" },
        cookies: ["a=1", "b=2"],
        isBase64Encoded: false,
        requestContext: {
          http: { method: "GET", path: "/keys/movie-42/3", protocol: "HTTP/1.1", sourceIp: "127.0.0.1" },
          stage: "$default",
          domainName: `127.0.0.1:${local.port}`,
        },
      });
      expect(event?.headers).toMatchObject({ authorization: "Bearer t", origin: ORIGIN });
      expect(event?.headers?.cookie).toBeUndefined();
      expect(event?.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await local.close();
    }
  });

  it("refuses an oversized body with 400 without reading it all", async () => {
    const response = await fetch(`${server.keysUrl}/leases`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ contentId: "a", pad: "x".repeat(200_000) }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: "Request body is over 4096 bytes", code: "bad_request" });
  });
});

describe("toNodeListener: any Lambda handler on node:http", () => {
  it("hands the handler the API Gateway event and writes its result, body and all", async () => {
    const lambda = createLambdaKeyServer({
      masterKey,
      salt,
      corsOrigins: "*",
      leaseStore: createMemoryLeaseStore(),
      audit: false,
      logger: recordingLogger(),
    });
    const seen: string[] = [];
    const server = createServer(
      toNodeListener((event) => {
        seen.push((event as ApiGatewayV2Event).rawPath);
        return lambda(event);
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const created = await fetch(`http://127.0.0.1:${port}/keys/leases`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ contentId: "movie-42", keys: [1] }),
      });
      expect(created.status).toBe(201);
      const lease = (await created.json()) as { leaseId: string; keys: { epoch: number; key: string }[] };
      expect(bytesToHex(Buffer.from(lease.keys[0]?.key ?? "", "base64"))).toBe(vectorFor("movie-42", 1));
      const key = await fetch(`http://127.0.0.1:${port}/keys/movie-42/7`, {
        headers: { "x-blindcast-lease": lease.leaseId },
      });
      expect(key.status).toBe(200);
      expect(bytesToHex(new Uint8Array(await key.arrayBuffer()))).toBe(vectorFor("movie-42", 7));
      expect(seen).toEqual(["/keys/leases", "/keys/movie-42/7"]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** Sends exact bytes over TCP, so repeated headers reach the server as a browser or proxy could send them. */
async function rawRequest(port: number, method: string, path: string, headers: [string, string][]) {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  const lines = [
    `${method} ${path} HTTP/1.1`,
    "host: 127.0.0.1",
    "connection: close",
    ...headers.map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join("\r\n")}\r\n\r\n`);
  let text = "";
  socket.setEncoding("utf8");
  for await (const chunk of socket) text += chunk;
  const code = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]);
  return { code, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

describe("configuration from the environment", () => {
  const base = { MASTER_KEY: MASTER_KEY_HEX, SALT: SALT_HEX, CORS_ORIGINS: ORIGIN };

  it("reads the Lambda's variables plus PORT and lease settings", async () => {
    const { options, summary } = await keyServerOptionsFromEnv({
      ...base,
      PORT: "9000",
      LEASE_TTL_SECONDS: "45",
      MAX_CONCURRENT_LEASES: "3",
    });
    expect(options).toMatchObject({
      port: 9000,
      hostname: "127.0.0.1",
      leaseTtlSeconds: 45,
      maxConcurrentLeases: 3,
      corsOrigins: ORIGIN,
    });
    expect(bytesToHex(options.masterKey)).toBe(MASTER_KEY_HEX);
    expect(options.leaseStore).toBeDefined();
    expect(summary).toContain(
      "leases: in memory (lost when this process stops; set SQLITE_PATH or DATABASE_URL to keep them)",
    );
  });

  it.each<[Record<string, string>, RegExp]>([
    [{ MASTER_KEY: "" }, /MASTER_KEY is not set/],
    [{ MASTER_KEY: "abc" }, /MASTER_KEY: Hex string has odd length/],
    [{ SALT: "zz".repeat(16) }, /SALT: Hex string has a non-hex character/],
    [{ CORS_ORIGINS: " " }, /CORS_ORIGINS is not set/],
    [{ PORT: "http" }, /PORT must be an integer from 0 to 65535/],
    [{ PORT: "70000" }, /PORT must be/],
    [{ LEASE_TTL_SECONDS: "5" }, /LEASE_TTL_SECONDS must be an integer from 10/],
    [{ LEASES: "maybe" }, /LEASES must be "on" or "off"/],
    [{ LEASES: "off", MAX_CONCURRENT_LEASES: "2" }, /MAX_CONCURRENT_LEASES needs leases/],
    [{ DATABASE_URL: "postgres://a@b/c", SQLITE_PATH: "/tmp/x.db" }, /not both/],
    [{ DATABASE_URL: "not a url" }, /DATABASE_URL is not a URL/],
    [{ SQLITE_PATH: "/nonexistent-dir/leases.db" }, /SQLITE_PATH: cannot open/],
    [{ HEADERS_TIMEOUT_MS: "50" }, /HEADERS_TIMEOUT_MS must be an integer from 100 to 600000/],
    [{ REQUEST_TIMEOUT_MS: "10s" }, /REQUEST_TIMEOUT_MS must be an integer from 100 to 600000/],
    [{ KEEP_ALIVE_TIMEOUT_MS: "0" }, /KEEP_ALIVE_TIMEOUT_MS must be an integer from 100 to 600000/],
    [{ MAX_CONNECTIONS: "0" }, /MAX_CONNECTIONS must be an integer from 1 to 1000000/],
    [{ SHUTDOWN_TIMEOUT_MS: "-1" }, /SHUTDOWN_TIMEOUT_MS must be an integer from 0 to 600000/],
    [{ HEADERS_TIMEOUT_MS: "20000" }, /HEADERS_TIMEOUT_MS must not be more than REQUEST_TIMEOUT_MS/],
    [{ AUDIT_BUFFER_BYTES: "1000" }, /AUDIT_BUFFER_BYTES must be an integer from 65536 to 1073741824/],
    [{ HOST: "0.0.0.0" }, /HOST must be a loopback address .* while MASTER_KEY is the public demo key/],
    [{ HOST: "::" }, /HOST must be a loopback address/],
  ])("refuses %j", async (override, message) => {
    await expect(keyServerOptionsFromEnv({ ...base, ...override })).rejects.toThrow(EnvConfigError);
    await expect(keyServerOptionsFromEnv({ ...base, ...override })).rejects.toThrow(message);
  });

  it("reads the node:http limits and the audit buffer", async () => {
    const { options } = await keyServerOptionsFromEnv({
      ...base,
      HEADERS_TIMEOUT_MS: "2000",
      REQUEST_TIMEOUT_MS: "3000",
      KEEP_ALIVE_TIMEOUT_MS: "1000",
      MAX_CONNECTIONS: "64",
      SHUTDOWN_TIMEOUT_MS: "0",
      AUDIT_BUFFER_BYTES: "1048576",
    });
    expect(options).toMatchObject({
      headersTimeoutMs: 2000,
      requestTimeoutMs: 3000,
      keepAliveTimeoutMs: 1000,
      maxConnections: 64,
      shutdownTimeoutMs: 0,
      auditBufferBytes: 1_048_576,
    });
    const defaults = await keyServerOptionsFromEnv(base);
    expect(defaults.options.requestTimeoutMs).toBeUndefined();
    expect(defaults.options.auditBufferBytes).toBeUndefined();
  });

  it("takes the public demo key on loopback only, and puts a warning in the summary", async () => {
    const loopback = await keyServerOptionsFromEnv({ ...base, HOST: "localhost" });
    expect(loopback.summary[1]).toContain("WARNING: MASTER_KEY IS THE PUBLIC DEMO KEY");
    const own = await keyServerOptionsFromEnv({ ...base, MASTER_KEY: "ab".repeat(32), HOST: "0.0.0.0" });
    expect(own.options.hostname).toBe("0.0.0.0");
    expect(own.summary.join("\n")).not.toContain("PUBLIC DEMO KEY");
  });

  it("chooses the lease store from DATABASE_URL or SQLITE_PATH, and says which", async () => {
    const memory = await keyServerOptionsFromEnv(base);
    expect(memory.summary).toContain(
      "leases: in memory (lost when this process stops; set SQLITE_PATH or DATABASE_URL to keep them)",
    );
    const postgres = await keyServerOptionsFromEnv({
      ...base,
      DATABASE_URL: "postgres://user:s3cret@db.internal:5432/keys",
    });
    expect(postgres.summary).toContain("leases: PostgreSQL at db.internal:5432/keys");
    expect(postgres.summary.join("\n")).not.toContain("s3cret");
    await postgres.close();
  });
});

describe("the blindcast-keys CLI", () => {
  const env = { MASTER_KEY: MASTER_KEY_HEX, SALT: SALT_HEX, CORS_ORIGINS: "*", PORT: "0" };

  async function createLease(url: string) {
    const response = await fetch(`${url}/leases`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contentId: "demo" }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { leaseId: string }).leaseId;
  }

  it("serves the contract's keys over HTTP", async () => {
    const server = await startCli({ ...env, LEASES: "off" });
    try {
      expect(server.stderr()).toContain("leases: off");
      expect(server.stderr()).toContain("auth: none");
      expect(server.stderr()).toContain("no authenticate option");
      expect(server.stderr()).not.toContain(MASTER_KEY_HEX);
      const response = await fetch(`${server.url}/demo/1`);
      expect(bytesToHex(new Uint8Array(await response.arrayBuffer()))).toBe(vectorFor("demo", 1));
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it("writes one audit line per request to stdout, none lost when stopped", async () => {
    const server = await startCli({ ...env, LEASES: "off" });
    const requests = 300;
    const statuses: number[] = [];
    for (let i = 0; i < requests; i++) {
      const response = await fetch(`${server.url}/demo/${i}`);
      await response.arrayBuffer();
      statuses.push(response.status);
    }
    expect(await server.stop()).toBe(0);
    const records = server
      .stdout()
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as AuditRecord);
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(records).toHaveLength(requests);
    expect(records.map((r) => r.epoch)).toEqual(Array.from({ length: requests }, (_, i) => i));
    expect(new Set(records.map((r) => r.requestId)).size).toBe(requests);
    expect(records[0]).toMatchObject({ route: "epoch_key", contentId: "demo", status: 200, method: "GET" });
    expect(server.stdout()).not.toContain(MASTER_KEY_HEX);
  });

  it.each([
    [
      "SQLITE_PATH",
      () => ({ SQLITE_PATH: join(mkdtempSync(join(tmpdir(), "blindcast-cli-")), "leases.db") }),
      "SQLite at",
    ],
    ["DATABASE_URL", () => ({ DATABASE_URL: databaseUrl() }), "PostgreSQL at 127.0.0.1"],
  ])("keeps leases across a restart of the server with %s", async (_, store, description) => {
    const vars = { ...env, ...store() };
    const first = await startCli(vars);
    expect(first.stderr()).toContain(`leases: ${description}`);
    const leaseId = await createLease(first.url);
    expect(await first.stop()).toBe(0);

    const second = await startCli(vars);
    try {
      const response = await fetch(`${second.url}/demo/7`, { headers: { "x-blindcast-lease": leaseId } });
      expect(response.status).toBe(200);
      expect(bytesToHex(new Uint8Array(await response.arrayBuffer()))).toBe(vectorFor("demo", 7));
    } finally {
      await second.stop();
    }
  });

  it("loses in-memory leases on restart, as it says at start-up", async () => {
    const first = await startCli(env);
    expect(first.stderr()).toContain("leases: in memory (lost when this process stops");
    const leaseId = await createLease(first.url);
    await first.stop();
    const second = await startCli(env);
    try {
      const response = await fetch(`${second.url}/demo/7`, { headers: { "x-blindcast-lease": leaseId } });
      expect(response.status).toBe(403);
    } finally {
      await second.stop();
    }
  });

  it("answers --help and --version without configuration, and refuses unknown arguments with exit 2", async () => {
    const help = await runCliToExit({}, ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("usage: blindcast-keys");
    expect(help.stdout).toContain("JWT_JWKS_URL");
    expect(help.stderr).toBe("");
    const version = await runCliToExit({}, ["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const unknown = await runCliToExit({}, ["--port", "9000"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown argument "--port": configure with environment variables');
  });

  it("exits 2 with a clear message when configuration is missing", async () => {
    const { code, stderr } = await runCliToExit({ SALT: SALT_HEX, CORS_ORIGINS: "*" });
    expect(code).toBe(2);
    expect(stderr).toContain("blindcast-keys: MASTER_KEY is not set");
  });

  // Addresses this machine cannot bind, so that without the check the test fails without ever
  // serving on another interface; the wildcards (0.0.0.0, ::) are refused in the tests of the
  // environment above and of isLoopbackHost.
  it.each(["192.0.2.10", "keys.example.com"])(
    "refuses to serve the public demo key on HOST=%s, with exit code 2",
    async (host) => {
      const { code, stderr } = await runCliToExit({ ...env, HOST: host });
      expect(code).toBe(2);
      expect(stderr).toContain(
        "blindcast-keys: HOST must be a loopback address (127.0.0.1, ::1 or localhost) while MASTER_KEY is the public demo key",
      );
      expect(stderr).not.toContain("listening on");
    },
  );

  it("says loudly that it serves the public demo key, on loopback only", async () => {
    for (const host of ["127.0.0.1", "localhost", "::1"]) {
      const server = await startCli({ ...env, HOST: host, LEASES: "off" });
      try {
        expect(new URL(server.url).hostname).toMatch(/^(127\.0\.0\.1|\[::1\])$/);
        // Right under "listening on", where nobody misses it.
        const lines = server.stderr().split("\n");
        const listening = lines.findIndex((line) => line.startsWith("blindcast-keys: listening on "));
        expect(lines[listening + 1]).toBe(
          "blindcast-keys: WARNING: MASTER_KEY IS THE PUBLIC DEMO KEY. It is published with Blindcast: anyone can derive",
        );
        const response = await fetch(`${server.url}/demo/1`);
        expect(bytesToHex(new Uint8Array(await response.arrayBuffer()))).toBe(vectorFor("demo", 1));
      } finally {
        expect(await server.stop()).toBe(0);
      }
    }
    // A key of one's own: no warning.
    const own = await startCli({ ...env, MASTER_KEY: bytesToHex(randomBytes(32)), LEASES: "off" });
    try {
      expect(own.stderr()).not.toContain("PUBLIC DEMO KEY");
    } finally {
      await own.stop();
    }
  });

  it("npm start (scripts/start-keys.mjs): the demo key, on loopback, and never elsewhere", async () => {
    const script = new URL("../../../scripts/start-keys.mjs", import.meta.url).pathname;
    const run = (vars: Record<string, string>) =>
      spawn(process.execPath, [script], {
        env: { PATH: process.env.PATH ?? "", ...vars },
        stdio: ["ignore", "ignore", "pipe"],
      });
    const refused = run({ HOST: "192.0.2.10", PORT: "0" });
    let refusal = "";
    refused.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      refusal += chunk;
    });
    const timer = setTimeout(() => refused.kill("SIGTERM"), 10_000);
    const [code] = await once(refused, "exit");
    clearTimeout(timer);
    expect(code).toBe(2);
    expect(refusal).toContain("HOST must be a loopback address");

    const started = run({ PORT: "0" });
    let stderr = "";
    started.stderr.setEncoding("utf8");
    try {
      const url = await new Promise<string>((resolve, reject) => {
        started.stderr.on("data", (chunk: string) => {
          stderr += chunk;
          const match = /listening on (http:\/\/\S+)[\s\S]*PUBLIC DEMO KEY/.exec(stderr);
          if (match?.[1]) resolve(match[1]);
        });
        started.once("exit", (exit) => reject(new Error(`exited ${exit}: ${stderr}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/keys$/);
    } finally {
      started.kill("SIGTERM");
      await once(started, "exit");
    }
  });
});
