import { bytesToHex } from "@blindcast/crypto";
import type { AuditRecord, LeaseStore } from "@blindcast/keys";
import { createLambdaKeyServer, type LambdaKeyServerOptions } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { jsonBody, keyBytes, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt, vectorFor } from "./support/fixtures.js";

// The viewer is named by a header here so one server can serve several viewers.
function server(extra: Partial<LambdaKeyServerOptions> = {}) {
  return createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    authenticate: (event) =>
      event.headers?.authorization ? { ok: true } : { ok: false, status: 401, reason: "Missing token" },
    getViewerId: (event) => event.headers?.authorization?.split(" ")[1],
    leaseStore: createMemoryLeaseStore(),
    leaseTtlSeconds: 30,
    audit: false,
    logger: recordingLogger(),
    ...extra,
  });
}

type Handler = ReturnType<typeof server>;
const as = (viewer: string) => ({ authorization: `Bearer ${viewer}`, "content-type": "application/json" });

async function createLease(handler: Handler, contentId: string, viewer = "alice") {
  const result = await handler(
    v2Event({
      method: "POST",
      path: "/keys/leases",
      headers: as(viewer),
      body: JSON.stringify({ contentId }),
    }),
  );
  return { status: result.statusCode, body: jsonBody(result) };
}

const renew = (handler: Handler, leaseId: unknown, viewer = "alice") =>
  handler(
    v2Event({
      method: "POST",
      path: "/keys/leases/renew",
      headers: as(viewer),
      body: JSON.stringify({ leaseId }),
    }),
  );

const key = (handler: Handler, path: string, leaseId: unknown, viewer = "alice") =>
  handler(v2Event({ path, headers: { ...as(viewer), "x-blindcast-lease": String(leaseId) } }));

describe("leases", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-11-28T12:00:00Z"));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("creates a lease: 201 with leaseId, contentId, expiresAt and ttlSeconds", async () => {
    const { status, body } = await createLease(server(), "movie-42");
    expect(status).toBe(201);
    expect(body).toEqual({
      leaseId: expect.stringMatching(/^[0-9a-f]{32}$/),
      contentId: "movie-42",
      expiresAt: "2026-11-28T12:00:30.000Z",
      ttlSeconds: 30,
    });
  });

  it("serves content and epoch keys to the lease holder for that content only", async () => {
    const handler = server();
    const { body } = await createLease(handler, "movie-42");
    expect(bytesToHex(keyBytes(await key(handler, "/keys/movie-42", body.leaseId)))).toBe(
      vectorFor("movie-42"),
    );
    expect(bytesToHex(keyBytes(await key(handler, "/keys/movie-42/7", body.leaseId)))).toBe(
      vectorFor("movie-42", 7),
    );

    const otherContent = await key(handler, "/keys/demo", body.leaseId);
    expect(otherContent.statusCode).toBe(403);
    expect(jsonBody(otherContent)).toEqual({ error: "Lease is for other content", code: "lease_forbidden" });

    const otherViewer = await key(handler, "/keys/movie-42", body.leaseId, "mallory");
    expect(otherViewer.statusCode).toBe(403);
    expect(jsonBody(otherViewer).code).toBe("lease_forbidden");
  });

  it("sends keys asked for with a new lease, and audits which", async () => {
    const records: AuditRecord[] = [];
    const handler = server({ audit: (r) => records.push(r) });
    const result = await handler(
      v2Event({
        method: "POST",
        path: "/keys/leases",
        headers: as("alice"),
        body: JSON.stringify({ contentId: "movie-42", keys: [0, 7, "content"] }),
      }),
    );
    expect(result.statusCode).toBe(201);
    const body = jsonBody(result) as { keys: { epoch: number | null; key: string }[] };
    expect(body.keys.map(({ epoch, key }) => [epoch, Buffer.from(key, "base64").toString("hex")])).toEqual([
      [0, vectorFor("movie-42", 0)],
      [7, vectorFor("movie-42", 7)],
      [null, vectorFor("movie-42")],
    ]);
    expect(records[0]).toMatchObject({ route: "lease_create", status: 201, keys: [0, 7, null] });
    expect(JSON.stringify(records)).not.toContain(body.keys[0]?.key);
  });

  it("serves any keys of the title through POST /keys/:contentId/keys, to its lease holder only", async () => {
    const records: AuditRecord[] = [];
    const handler = server({ audit: (r) => records.push(r) });
    const { body: lease } = await createLease(handler, "movie-42");
    const keys = (contentId: string, wanted: unknown, leaseId: unknown, viewer = "alice") =>
      handler(
        v2Event({
          method: "POST",
          path: `/keys/${contentId}/keys`,
          headers: { ...as(viewer), "x-blindcast-lease": String(leaseId) },
          body: JSON.stringify({ keys: wanted }),
        }),
      );
    const served = await keys("movie-42", [7, "content", 0, 4294967295, 7], lease.leaseId);
    expect(served.statusCode).toBe(200);
    expect(served.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(served.headers["cache-control"]).toBe("no-store");
    const body = jsonBody(served) as { contentId: string; keys: { epoch: number | null; key: string }[] };
    expect(body.contentId).toBe("movie-42");
    // In the order asked, each once.
    expect(body.keys.map(({ epoch, key }) => [epoch, Buffer.from(key, "base64").toString("hex")])).toEqual([
      [7, vectorFor("movie-42", 7)],
      [null, vectorFor("movie-42")],
      [0, vectorFor("movie-42", 0)],
      [4294967295, vectorFor("movie-42", 4294967295)],
    ]);
    // An empty list checks the token and lease, and derives nothing.
    const empty = await keys("movie-42", [], lease.leaseId);
    expect([empty.statusCode, jsonBody(empty)]).toEqual([200, { contentId: "movie-42", keys: [] }]);

    // The same lease checks as the GET routes, keys audited even when refused.
    const refusals = [
      [await keys("demo", [1], lease.leaseId), "Lease is for other content"],
      [await keys("movie-42", [1], lease.leaseId, "mallory"), "Lease belongs to another viewer"],
      [await keys("movie-42", [1], "f".repeat(32)), "Lease not found"],
      [await keys("movie-42", [1], ""), "A lease is required: send its id in the X-Blindcast-Lease header"],
    ] as const;
    for (const [result, reason] of refusals) {
      expect(result.statusCode, reason).toBe(403);
      expect(jsonBody(result).error).toBe(reason);
    }
    vi.advanceTimersByTime(30_000);
    const expired = await keys("movie-42", [1], lease.leaseId);
    expect([expired.statusCode, jsonBody(expired).code]).toEqual([403, "lease_expired"]);

    expect(records.slice(1).map((r) => [r.route, r.contentId, r.keys, r.status])).toEqual([
      ["title_keys", "movie-42", [7, null, 0, 4294967295], 200],
      ["title_keys", "movie-42", [], 200],
      ["title_keys", "demo", [1], 403],
      ["title_keys", "movie-42", [1], 403],
      ["title_keys", "movie-42", [1], 403],
      ["title_keys", "movie-42", [1], 403],
      ["title_keys", "movie-42", [1], 403],
    ]);
    expect(JSON.stringify(records)).not.toContain(body.keys[0]?.key);
  });

  it.each([
    [undefined, /array of at most 8/],
    [{}, /array of at most 8/],
    [[0, 1, 2, 3, 4, 5, 6, 7, 8], /at most 8/],
    [[-1], /epochs/],
    [["1"], /epochs/],
    [[null], /epochs/],
  ])("refuses title keys %j with 400, before the lease is looked at", async (wanted, reason) => {
    const handler = server();
    const result = await handler(
      v2Event({
        method: "POST",
        path: "/keys/movie-42/keys",
        headers: as("alice"),
        body: JSON.stringify({ keys: wanted }),
      }),
    );
    expect(result.statusCode).toBe(400);
    expect(String(jsonBody(result).error)).toMatch(reason);
  });

  it.each([
    [[0, 1, 2, 3, 4], /at most 4/],
    ["0", /array/],
    [[-1], /epochs/],
    [[1.5], /epochs/],
    [["1"], /epochs/],
    [[4294967296], /epochs/],
  ])("refuses keys %j with 400, creating no lease", async (keys, reason) => {
    const store = createMemoryLeaseStore();
    const handler = server({ leaseStore: store, maxConcurrentLeases: 1 });
    const result = await handler(
      v2Event({
        method: "POST",
        path: "/keys/leases",
        headers: as("alice"),
        body: JSON.stringify({ contentId: "a", keys }),
      }),
    );
    expect(result.statusCode).toBe(400);
    expect(String(jsonBody(result).error)).toMatch(reason);
    expect((await createLease(handler, "a")).status).toBe(201);
  });

  it("renews before expiry, answers 410 after, 404 for unknown, 403 for another viewer", async () => {
    const handler = server();
    const { body } = await createLease(handler, "demo");
    vi.advanceTimersByTime(20_000);
    const renewed = await renew(handler, body.leaseId);
    expect(renewed.statusCode).toBe(200);
    expect(jsonBody(renewed)).toMatchObject({
      leaseId: body.leaseId,
      contentId: "demo",
      expiresAt: "2026-11-28T12:00:50.000Z",
      ttlSeconds: 30,
    });

    expect((await renew(handler, body.leaseId, "mallory")).statusCode).toBe(403);
    expect((await renew(handler, "0".repeat(32))).statusCode).toBe(404);

    vi.advanceTimersByTime(29_999);
    expect((await key(handler, "/keys/demo", body.leaseId)).statusCode).toBe(200);
    vi.advanceTimersByTime(1);
    const late = await key(handler, "/keys/demo", body.leaseId);
    expect(late.statusCode).toBe(403);
    expect(jsonBody(late)).toEqual({ error: "Lease expired", code: "lease_expired" });
    const gone = await renew(handler, body.leaseId);
    expect(gone.statusCode).toBe(410);
    expect(jsonBody(gone)).toEqual({ error: "Lease expired", code: "lease_expired" });
  });

  it("releases a lease: 204, then keys and renewals refuse it", async () => {
    const handler = server();
    const { body } = await createLease(handler, "demo");
    const path = `/keys/leases/${body.leaseId}`;
    expect((await handler(v2Event({ method: "DELETE", path, headers: as("mallory") }))).statusCode).toBe(403);
    const released = await handler(v2Event({ method: "DELETE", path, headers: as("alice") }));
    expect(released.statusCode).toBe(204);
    expect(released.body).toBe("");
    expect((await handler(v2Event({ method: "DELETE", path, headers: as("alice") }))).statusCode).toBe(404);
    expect((await key(handler, "/keys/demo", body.leaseId)).statusCode).toBe(403);
    expect((await renew(handler, body.leaseId)).statusCode).toBe(404);
  });

  it("caps concurrent leases per viewer with 429, and frees a slot on release or expiry", async () => {
    const handler = server({ maxConcurrentLeases: 2 });
    const first = await createLease(handler, "a");
    await createLease(handler, "b");
    const third = await createLease(handler, "c");
    expect(third.status).toBe(429);
    expect(third.body).toEqual({
      error: "Too many concurrent streams: this viewer already holds 2 of 2 allowed",
      code: "lease_limit",
    });
    expect((await createLease(handler, "c", "bob")).status).toBe(201);

    await handler(
      v2Event({ method: "DELETE", path: `/keys/leases/${first.body.leaseId}`, headers: as("alice") }),
    );
    expect((await createLease(handler, "c")).status).toBe(201);
    expect((await createLease(handler, "d")).status).toBe(429);
    vi.advanceTimersByTime(30_000);
    expect((await createLease(handler, "d")).status).toBe(201);
  });

  it("identifies the viewer through authenticate when getViewerId is absent", async () => {
    const handler = server({
      getViewerId: undefined,
      authenticate: (event) => ({
        ok: true,
        viewerId: event.headers?.authorization?.split(" ")[1] ?? "nobody",
      }),
    });
    const { body } = await createLease(handler, "demo", "carol");
    expect((await key(handler, "/keys/demo", body.leaseId, "carol")).statusCode).toBe(200);
    expect((await key(handler, "/keys/demo", body.leaseId, "dave")).statusCode).toBe(403);
  });

  it("releases a lease named in the X-Blindcast-Lease header, keeping its id out of the URL", async () => {
    const handler = server();
    const { body } = await createLease(handler, "demo");
    const release = (headers: Record<string, string>) =>
      handler(v2Event({ method: "DELETE", path: "/keys/leases", headers: { ...as("alice"), ...headers } }));
    expect((await release({ "x-blindcast-lease": String(body.leaseId) })).statusCode).toBe(204);
    expect((await key(handler, "/keys/demo", String(body.leaseId))).statusCode).toBe(403);
    const missing = await release({});
    expect(missing.statusCode).toBe(400);
    expect(jsonBody(missing).error).toMatch(/X-Blindcast-Lease header/);
  });

  it("refuses getViewerId without authenticate at start: it would trust an unverified request", () => {
    expect(() => server({ authenticate: undefined })).toThrow(/getViewerId needs authenticate/);
    expect(() => server({ authenticate: undefined, getViewerId: undefined, maxConcurrentLeases: 2 })).toThrow(
      /maxConcurrentLeases needs authenticate/,
    );
  });

  it("fails every request loudly (500, logged) when leases are on and authenticate names no viewer", async () => {
    const logger = recordingLogger();
    const handler = server({ getViewerId: undefined, authenticate: () => ({ ok: true }), logger });
    const created = await handler(
      v2Event({ method: "POST", path: "/keys/leases", headers: as("x"), body: '{"contentId":"demo"}' }),
    );
    expect(created.statusCode).toBe(500);
    expect((await key(handler, "/keys/demo", "0".repeat(32))).statusCode).toBe(500);
    expect(logger.errors).toHaveLength(2);
    expect(logger.errors[0]).toMatch(/without naming its viewer/);
  });

  it("caps each viewer at 16 live leases by default once viewers are told apart", async () => {
    const handler = server({
      getViewerId: undefined,
      authenticate: (e) => ({ ok: true, viewerId: e.headers?.authorization ?? "" }),
    });
    for (let i = 0; i < 16; i++) expect((await createLease(handler, `c${i}`, "erin")).status).toBe(201);
    const refused = await createLease(handler, "one-more", "erin");
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe("lease_limit");
    expect((await createLease(handler, "c0", "frank")).status).toBe(201);
  });

  it("answers 401 when getViewerId throws or names nobody", async () => {
    for (const getViewerId of [
      () => {
        throw new TypeError("Cannot read properties of undefined");
      },
      () => undefined,
      () => "",
    ]) {
      const result = await server({ getViewerId })(v2Event({ path: "/keys/demo", headers: as("x") }));
      expect(result.statusCode).toBe(401);
      expect(jsonBody(result)).toEqual({ error: "Viewer could not be identified", code: "unauthenticated" });
    }
  });

  it("fails closed with 503 when the lease store fails, never a key", async () => {
    const logger = recordingLogger();
    const broken: LeaseStore = {
      create: () => Promise.reject(new Error("connect ECONNREFUSED 10.0.0.5:5432 password=hunter2")),
      get: () => Promise.reject(new Error("down")),
      renew: () => Promise.reject(new Error("down")),
      release: () => Promise.reject(new Error("down")),
    };
    const handler = server({ leaseStore: broken, logger });
    const keyResult = await key(handler, "/keys/demo", "0".repeat(32));
    expect(keyResult.statusCode).toBe(503);
    expect(keyResult.headers["retry-after"]).toBe("1");
    expect(jsonBody(keyResult)).toEqual({
      error: "Lease store unavailable, try again shortly",
      code: "store_unavailable",
    });
    const created = await createLease(handler, "demo");
    expect(created.status).toBe(503);
    expect(JSON.stringify(created.body)).not.toContain("hunter2");
    expect(logger.errors.join("\n")).not.toContain("hunter2");
  });
});
