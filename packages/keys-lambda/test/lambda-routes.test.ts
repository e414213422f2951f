import { bytesToHex } from "@blindcast/crypto";
import { type AuditRecord, type AuthResult, jsonLinesAudit, type RouteName } from "@blindcast/keys";
import {
  createLambdaKeyServer,
  type KeyServerEvent,
  type LambdaKeyServerOptions,
} from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { EVENT_KINDS, eventOf, jsonBody, keyBytes, v1Event, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt, vectorFor } from "./support/fixtures.js";

function server(extra: Partial<LambdaKeyServerOptions> = {}) {
  return createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "https://app.example.com",
    authenticate: () => ({ ok: true, viewerId: "viewer-1" }),
    audit: false,
    logger: recordingLogger(),
    ...extra,
  });
}

describe.each(EVENT_KINDS)("%s events", (kind) => {
  it("GET /keys/:contentId answers the contract's content key as 16 raw bytes", async () => {
    const result = await server()(eventOf(kind, { path: "/keys/movie-42" }));
    const key = keyBytes(result);
    expect(key).toHaveLength(16);
    expect(bytesToHex(key)).toBe(vectorFor("movie-42"));
    expect(result.headers["cache-control"]).toBe("no-store");
  });

  it("GET /keys/:contentId/:epoch answers the contract's epoch key", async () => {
    for (const epoch of [0, 1, 7, 4294967295]) {
      const result = await server()(eventOf(kind, { path: `/keys/demo/${epoch}` }));
      expect(bytesToHex(keyBytes(result))).toBe(vectorFor("demo", epoch));
    }
  });

  it("POST /keys/:contentId/keys answers the keys asked for as JSON, the body base64 or not", async () => {
    for (const base64 of [false, true]) {
      const result = await server()(
        eventOf(kind, {
          method: "POST",
          path: "/prod/keys/movie-42/keys",
          stage: "prod",
          headers: { "Content-Type": "application/json", Origin: "https://app.example.com" },
          body: '{"keys":[1,"content"]}',
          base64,
        }),
      );
      expect(result.statusCode).toBe(200);
      expect(result.headers["access-control-allow-origin"]).toBe("https://app.example.com");
      const { keys } = jsonBody(result) as { keys: { epoch: number | null; key: string }[] };
      expect(keys.map((k) => [k.epoch, Buffer.from(k.key, "base64").toString("hex")])).toEqual([
        [1, vectorFor("movie-42", 1)],
        [null, vectorFor("movie-42")],
      ]);
    }
  });

  it("matches routes behind any stage or base path", async () => {
    const result = await server()(eventOf(kind, { path: "/prod/api/v1/keys/movie-42", stage: "prod" }));
    expect(bytesToHex(keyBytes(result))).toBe(vectorFor("movie-42"));
  });

  it("unknown path answers 404 with a reason", async () => {
    for (const path of ["/", "/nope", "/keys", "/keys/", "/keys/a/1/extra", "/keys//1", "/keys/a/"]) {
      const result = await server()(eventOf(kind, { path }));
      expect(result.statusCode, path).toBe(404);
      expect(jsonBody(result)).toEqual({ error: "Not found", code: "not_found" });
    }
  });

  it("wrong method answers 405 with Allow", async () => {
    const cases: [string, string, string][] = [
      ["POST", "/keys/movie-42", "GET, OPTIONS"],
      ["PUT", "/keys/movie-42/3", "GET, OPTIONS"],
      ["GET", "/keys/leases/renew", ""],
      ["PATCH", "/keys/leases", "POST, DELETE, GET, OPTIONS"],
      ["GET", "/keys/leases/x", ""],
      ["HEAD", "/keys/a", "GET, OPTIONS"],
    ];
    for (const [method, path, allow] of cases) {
      const result = await server()(eventOf(kind, { method, path }));
      if (allow === "") {
        // GET on these shapes is a (possibly invalid) epoch key request, not a 405.
        expect(result.statusCode, `${method} ${path}`).toBe(400);
        continue;
      }
      expect(result.statusCode, `${method} ${path}`).toBe(405);
      expect(result.headers.allow).toBe(allow);
      expect(jsonBody(result).code).toBe("method_not_allowed");
    }
  });

  it("lease routes answer 404 when no lease store is configured", async () => {
    const result = await server()(
      eventOf(kind, {
        method: "POST",
        path: "/keys/leases",
        headers: { "Content-Type": "application/json" },
        body: '{"contentId":"a"}',
      }),
    );
    expect(result.statusCode).toBe(404);
    expect(jsonBody(result).code).toBe("leases_disabled");
  });

  it("decodes base64 request bodies", async () => {
    const handler = server({ leaseStore: createMemoryLeaseStore() });
    const result = await handler(
      eventOf(kind, {
        method: "POST",
        path: "/keys/leases",
        headers: { "Content-Type": "application/json" },
        body: '{"contentId":"movie-42"}',
        base64: true,
      }),
    );
    expect(result.statusCode).toBe(201);
    expect(jsonBody(result).contentId).toBe("movie-42");
  });

  it("passes the event to authenticate with lowercase header names, and answers its refusal", async () => {
    const seen: unknown[] = [];
    const handler = server({
      authenticate: (event) => {
        seen.push(event.headers?.authorization);
        return event.headers?.authorization === "Bearer good"
          ? { ok: true }
          : { ok: false, status: 401, reason: "Missing token" };
      },
    });
    const refused = await handler(eventOf(kind, { path: "/keys/demo" }));
    expect(refused.statusCode).toBe(401);
    expect(jsonBody(refused)).toEqual({ error: "Missing token" });
    const allowed = await handler(
      eventOf(kind, { path: "/keys/demo", headers: { Authorization: "Bearer good" } }),
    );
    expect(bytesToHex(keyBytes(allowed))).toBe(vectorFor("demo"));
    expect(seen).toEqual([undefined, "Bearer good"]);
  });
});

describe("authenticate", () => {
  it("may be async and may refuse with any 4xx status", async () => {
    const handler = server({
      authenticate: async () => ({ ok: false, status: 403, reason: "Plan expired" }),
    });
    const result = await handler(v2Event({ path: "/keys/demo" }));
    expect(result.statusCode).toBe(403);
    expect(jsonBody(result)).toEqual({ error: "Plan expired" });
  });

  it("answers a generic 500 when it throws, never the exception text", async () => {
    const logger = recordingLogger();
    const handler = server({
      logger,
      authenticate: () => {
        throw new Error("jwt secret s3cr3t-value rejected token eyJhbGciOi");
      },
    });
    const result = await handler(v2Event({ path: "/keys/demo" }));
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toContain("s3cr3t");
    expect(jsonBody(result)).toEqual({ error: "Internal server error", code: "internal" });
    expect(logger.errors.join("\n")).not.toContain("s3cr3t");
    expect(logger.errors).toHaveLength(1);
  });

  // Synchronous and asynchronous answers take different paths (a synchronous one is not awaited).
  it("answers the same generic 500 when an async authenticate rejects or answers nonsense", async () => {
    for (const authenticate of [
      async () => {
        throw new Error("jwt secret s3cr3t-value rejected");
      },
      async () => null as unknown as AuthResult,
      () => ({ okay: true }) as unknown as AuthResult,
    ]) {
      const logger = recordingLogger();
      const result = await server({ logger, authenticate })(v2Event({ path: "/keys/demo" }));
      expect(result.statusCode).toBe(500);
      expect(jsonBody(result)).toEqual({ error: "Internal server error", code: "internal" });
      expect(logger.errors.join("\n")).not.toContain("s3cr3t");
      expect(logger.errors).toHaveLength(1);
    }
  });

  it("names the viewer the same way whether it answers at once or later", async () => {
    for (const authenticate of [
      () => ({ ok: true as const, viewerId: "viewer-7" }),
      async () => ({ ok: true as const, viewerId: "viewer-7" }),
    ]) {
      const records: AuditRecord[] = [];
      const handler = server({ authenticate, audit: (record) => records.push(record) });
      const result = await handler(v2Event({ path: "/keys/demo" }));
      expect(bytesToHex(keyBytes(result))).toBe(vectorFor("demo"));
      expect(records[0]?.viewerId).toBe("viewer-7");
    }
  });

  it("treats a refusal with an impossible status as 401", async () => {
    const handler = server({ authenticate: () => ({ ok: false, status: 200, reason: "nope" }) });
    const result = await handler(v2Event({ path: "/keys/demo" }));
    expect(result.statusCode).toBe(401);
  });

  it("runs before any key is derived or lease created", async () => {
    const store = createMemoryLeaseStore();
    const handler = server({
      leaseStore: store,
      authenticate: () => ({ ok: false, status: 401, reason: "no" }),
    });
    const result = await handler(
      v2Event({
        method: "POST",
        path: "/keys/leases",
        headers: { "content-type": "application/json" },
        body: '{"contentId":"a"}',
      }),
    );
    expect(result.statusCode).toBe(401);
  });
});

describe("events", () => {
  it("refuses a non-HTTP event with 400", async () => {
    const handler = server();
    for (const event of [{}, { version: "2.0" }, { Records: [] }, null, "GET /keys/a"]) {
      const result = await handler(event as unknown as KeyServerEvent);
      expect(result.statusCode).toBe(400);
      expect(jsonBody(result).error).toMatch(/Unsupported event/);
    }
  });

  it("does not confuse a stage named like a route with the route", async () => {
    const result = await server()(v2Event({ path: "/keys/demo/1", stage: "keys" }));
    expect(bytesToHex(keyBytes(result))).toBe(vectorFor("demo", 1));
  });

  it("refuses repeated identity headers in a REST API event", async () => {
    const event = v1Event({ path: "/keys/demo", headers: { Authorization: "Bearer a" } });
    event.multiValueHeaders = { Authorization: ["Bearer a", "Bearer b"] };
    const result = await server()(event);
    expect(result.statusCode).toBe(400);
    expect(jsonBody(result).error).toBe("Header authorization must appear once");
  });

  it("refuses a body flagged base64 that is not base64", async () => {
    const event = v2Event({
      method: "POST",
      path: "/keys/leases",
      headers: { "content-type": "application/json" },
    });
    event.body = "{not base64}";
    event.isBase64Encoded = true;
    const result = await server({ leaseStore: createMemoryLeaseStore() })(event);
    expect(result.statusCode).toBe(400);
    expect(jsonBody(result).error).toMatch(/base64/);
  });
});

describe("audit", () => {
  it("writes one record per request with route, ids, status and duration, never secrets", async () => {
    const records: AuditRecord[] = [];
    const handler = server({ audit: (r) => records.push(r), getViewerId: () => "viewer-7" });
    await handler(v2Event({ path: "/keys/demo/7", headers: { authorization: "Bearer tok-123" } }));
    await handler(v2Event({ path: "/keys/bad!id" }));
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      type: "blindcast.keys.request",
      route: "epoch_key",
      method: "GET",
      contentId: "demo",
      epoch: 7,
      viewerId: "viewer-7",
      status: 200,
      requestId: "req-v2",
    });
    expect(records[0]?.durationMs).toBeGreaterThanOrEqual(0);
    expect(records[1]).toMatchObject({
      route: "content_key",
      status: 400,
      reason: expect.stringMatching(/contentId/),
    });
    const text = JSON.stringify(records);
    expect(text).not.toContain("tok-123");
    expect(text).not.toContain(vectorFor("demo", 7));
    expect(text).not.toContain(bytesToHex(masterKey));
  });

  it("names a CORS preflight as such, and a preflight of an unknown path as unmatched", async () => {
    const records: AuditRecord[] = [];
    const handler = server({ audit: (r) => records.push(r) });
    const preflight = (path: string) =>
      handler(
        v2Event({
          method: "OPTIONS",
          path,
          headers: { origin: "https://app.example.com", "access-control-request-method": "GET" },
        }),
      );
    expect((await preflight("/keys/demo/7")).statusCode).toBe(204);
    expect((await preflight("/nothing/here")).statusCode).toBe(404);
    expect(records.map((r) => [r.route, r.status])).toEqual([
      ["preflight", 204],
      ["unmatched", 404],
    ]);
  });

  it("defaults to JSON lines written straight to stdout (no console prefix on Lambda)", async () => {
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => lines.push(chunk) > 0) as typeof process.stdout.write;
    try {
      const handler = createLambdaKeyServer({ masterKey, salt, corsOrigins: "*", logger: recordingLogger() });
      await handler(v2Event({ path: "/keys/demo" }));
    } finally {
      process.stdout.write = write;
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith("\n")).toBe(true);
    expect(JSON.parse(lines[0] ?? "")).toMatchObject({
      route: "content_key",
      status: 200,
      contentId: "demo",
    });
  });

  it("writes every record as exactly the JSON that JSON.stringify would (any text a request can carry)", () => {
    const routes: (RouteName | "unmatched")[] = [
      "content_key",
      "epoch_key",
      "title_keys",
      "lease_create",
      "lease_renew",
      "lease_release",
      "unmatched",
    ];
    const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
    const record: fc.Arbitrary<AuditRecord> = fc.record({
      type: fc.constant("blindcast.keys.request" as const),
      time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      requestId: optional(fc.string({ unit: "binary" })),
      method: fc.string({ unit: "binary" }),
      route: fc.constantFrom(...routes),
      contentId: optional(fc.string({ unit: "binary" })),
      epoch: optional(fc.integer({ min: 0, max: 4294967295 })),
      viewerId: optional(fc.string({ unit: "binary" })),
      keys: optional(fc.array(fc.option(fc.integer({ min: 0, max: 4294967295 }), { nil: null }))),
      status: fc.integer({ min: 100, max: 599 }),
      reason: optional(fc.string({ unit: "binary" })),
      durationMs: fc.oneof(
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.constantFrom(Number.NaN, Infinity),
      ),
    });
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      fc.assert(
        fc.property(record, (r) => {
          log.mockClear();
          jsonLinesAudit(r);
          expect(log.mock.calls).toEqual([[JSON.stringify(r)]]);
        }),
        { numRuns: 500 },
      );
    } finally {
      log.mockRestore();
    }
  });

  it("keeps answering when the audit sink throws", async () => {
    const logger = recordingLogger();
    const handler = server({
      logger,
      audit: () => {
        throw new Error("sink down");
      },
    });
    expect((await handler(v2Event({ path: "/keys/demo" }))).statusCode).toBe(200);
    expect(logger.errors).toEqual(["audit sink threw Error"]);
  });
});
