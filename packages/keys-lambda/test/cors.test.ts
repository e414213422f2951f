import type { LeaseStore } from "@blindcast/keys";
import { createLambdaKeyServer, type LambdaKeyServerOptions } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { describe, expect, it } from "vitest";
import { EVENT_KINDS, eventOf, jsonBody } from "./support/events.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

function server(corsOrigins: LambdaKeyServerOptions["corsOrigins"]) {
  return createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins,
    authenticate: () => ({ ok: true, viewerId: "viewer-1" }),
    leaseStore: createMemoryLeaseStore(),
    audit: false,
    logger: recordingLogger(),
  });
}

const APP = "https://app.example.com";
const OTHER = "https://admin.example.com:8443";
const LIST = `${APP}, ${OTHER}`;

describe.each(EVENT_KINDS)("CORS matrix (%s events)", (kind) => {
  const cases: {
    name: string;
    config: string;
    origin?: string;
    status: number;
    allowOrigin?: string;
  }[] = [
    { name: "listed origin is echoed", config: LIST, origin: APP, status: 200, allowOrigin: APP },
    { name: "second listed origin with port", config: LIST, origin: OTHER, status: 200, allowOrigin: OTHER },
    { name: "unlisted origin is refused", config: LIST, origin: "https://evil.example", status: 403 },
    { name: "scheme must match", config: LIST, origin: "http://app.example.com", status: 403 },
    { name: "port must match", config: LIST, origin: "https://app.example.com:444", status: 403 },
    {
      name: "suffix tricks refused",
      config: LIST,
      origin: "https://app.example.com.evil.example",
      status: 403,
    },
    { name: "null origin refused", config: LIST, origin: "null", status: 403 },
    { name: "no Origin (not a browser) gets no CORS headers", config: LIST, status: 200 },
    {
      name: "wildcard allows any origin",
      config: "*",
      origin: "https://anything.example",
      status: 200,
      allowOrigin: "*",
    },
    { name: "wildcard allows null", config: "*", origin: "null", status: 200, allowOrigin: "*" },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const headers: Record<string, string> = c.origin ? { Origin: c.origin } : {};
      const result = await server(c.config)(eventOf(kind, { path: "/keys/demo", headers, method: "GET" }));
      // With leases on, an allowed request without a lease gets 403 lease_required: still CORS-readable.
      if (c.status === 403) {
        expect(result.statusCode).toBe(403);
        expect(jsonBody(result)).toEqual({ error: "Origin not allowed", code: "origin_not_allowed" });
        expect(result.headers["access-control-allow-origin"]).toBeUndefined();
        return;
      }
      expect(jsonBody(result).code).toBe("lease_required");
      expect(result.headers["access-control-allow-origin"]).toBe(c.allowOrigin);
      if (c.allowOrigin) expect(result.headers.vary).toBe("Origin");
    });
  }

  it("answers a preflight with methods, headers and max-age", async () => {
    const result = await server(LIST)(
      eventOf(kind, {
        method: "OPTIONS",
        path: "/keys/leases",
        headers: {
          Origin: APP,
          "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": "content-type",
        },
      }),
    );
    expect(result.statusCode).toBe(204);
    expect(result.body).toBe("");
    expect(result.headers).toMatchObject({
      "access-control-allow-origin": APP,
      "access-control-allow-methods": "POST, DELETE, GET, OPTIONS",
      "access-control-allow-headers": "authorization, content-type, x-blindcast-lease",
      "access-control-max-age": "7200",
      vary: "Origin",
    });
  });

  it.each([
    ["/keys/demo", "GET, OPTIONS"],
    ["/keys/demo/4", "GET, OPTIONS"],
    // The one URL per title the player fetches every key through: one preflight per title.
    ["/keys/demo/keys", "POST, GET, OPTIONS"],
    ["/keys/leases/renew", "POST, DELETE, GET, OPTIONS"],
    ["/keys/leases/0123456789abcdef0123456789abcdef", "DELETE, GET, OPTIONS"],
  ])("preflight of %s allows %s", async (path, methods) => {
    const result = await server(LIST)(eventOf(kind, { method: "OPTIONS", path, headers: { Origin: APP } }));
    expect(result.statusCode).toBe(204);
    expect(result.headers["access-control-allow-methods"]).toBe(methods);
  });

  it("refuses a preflight from an unlisted origin without CORS headers", async () => {
    const result = await server(LIST)(
      eventOf(kind, { method: "OPTIONS", path: "/keys/demo", headers: { Origin: "https://evil.example" } }),
    );
    expect(result.statusCode).toBe(403);
    expect(Object.keys(result.headers).filter((h) => h.startsWith("access-control"))).toEqual([]);
  });

  it("answers 404 to a preflight of an unknown path", async () => {
    const result = await server(LIST)(
      eventOf(kind, { method: "OPTIONS", path: "/other", headers: { Origin: APP } }),
    );
    expect(result.statusCode).toBe(404);
    expect(result.headers["access-control-allow-origin"]).toBe(APP);
  });

  it("adds CORS headers to errors so the page can read the reason", async () => {
    const result = await server(LIST)(eventOf(kind, { path: "/keys/bad%2Fid", headers: { Origin: APP } }));
    expect(result.statusCode).toBe(400);
    expect(result.headers["access-control-allow-origin"]).toBe(APP);
  });
});

describe.each(EVENT_KINDS)("headers the player reads cross-origin (%s events)", (kind) => {
  // The player honours Retry-After; a browser shows a page on another origin only the
  // CORS-safelisted response headers plus those in Access-Control-Expose-Headers.
  const store = createMemoryLeaseStore();
  let storeDown = false;
  const flaky: LeaseStore = {
    create: (input) => (storeDown ? Promise.reject(new Error("down")) : store.create(input)),
    get: (leaseId) => (storeDown ? Promise.reject(new Error("down")) : store.get(leaseId)),
    renew: (input) => store.renew(input),
    release: (input) => store.release(input),
  };
  const handler = createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: APP,
    authenticate: (event) => {
      const auth = event.headers?.authorization;
      if (auth === "Bearer crash") throw new Error("boom");
      return auth === "Bearer v1" ? { ok: true, viewerId: "v1" } : { ok: false, status: 401, reason: "No" };
    },
    leaseStore: flaky,
    maxConcurrentLeases: 1,
    audit: false,
    logger: recordingLogger(),
  });
  const call = (method: string, path: string, extra: Record<string, string> = {}, body?: string) =>
    handler(
      eventOf(kind, {
        method,
        path,
        headers: { Origin: APP, Authorization: "Bearer v1", "Content-Type": "application/json", ...extra },
        ...(body === undefined ? {} : { body }),
      }),
    );

  it("exposes Retry-After on every kind of answer", async () => {
    const statuses: number[] = [];
    const check = async (answer: ReturnType<typeof call>) => {
      const result = await answer;
      statuses.push(result.statusCode);
      expect(result.headers["access-control-allow-origin"]).toBe(APP);
      expect(result.headers["access-control-expose-headers"]?.split(/,\s*/)).toContain("retry-after");
      return result;
    };
    const created = jsonBody(
      await check(call("POST", "/keys/leases", {}, '{"contentId":"demo","keys":[0]}')),
    );
    const lease = { "X-Blindcast-Lease": String(created.leaseId) };
    await check(call("GET", "/keys/demo/1", lease));
    await check(call("GET", "/keys/demo", lease));
    await check(call("POST", "/keys/leases/renew", {}, JSON.stringify({ leaseId: created.leaseId })));
    await check(call("POST", "/keys/leases", {}, '{"contentId":"demo"}'));
    await check(call("GET", "/keys/demo/1"));
    await check(call("GET", "/keys/bad%2Fid", lease));
    await check(call("GET", "/keys/demo/1", { Authorization: "Bearer nobody" }));
    await check(call("GET", "/keys/demo/1", { Authorization: "Bearer crash" }));
    await check(call("PUT", "/keys/demo/1", lease));
    await check(call("GET", "/nowhere", lease));
    storeDown = true;
    const down = await check(call("GET", "/keys/demo/1", lease));
    expect(down.headers["retry-after"]).toBe("1");
    await check(call("POST", "/keys/leases", {}, '{"contentId":"demo"}'));
    storeDown = false;
    await check(call("DELETE", `/keys/leases/${created.leaseId}`));
    expect(statuses).toEqual([201, 200, 200, 200, 429, 403, 400, 401, 500, 405, 404, 503, 503, 204]);
  });
});

describe("corsOrigins configuration", () => {
  it.each([
    ["", /empty/],
    [" , ", /empty/],
    ["https://app.example.com/", /no path or trailing slash/],
    ["https://app.example.com/path", /no path/],
    ["app.example.com", /not an origin|scheme/],
    ["ftp://app.example.com", /scheme/],
    ["*, https://app.example.com", /cannot be combined/],
    ["https://a.example,,https://b.example", /empty entry/],
  ])("refuses %j at construction", (corsOrigins, message) => {
    expect(() => server(corsOrigins)).toThrow(message);
  });

  it("accepts an array and normalises default ports and case", async () => {
    const handler = server(["HTTPS://App.Example.com:443"]);
    const result = await handler(eventOf("v2", { path: "/keys/demo", headers: { origin: APP } }));
    expect(result.headers["access-control-allow-origin"]).toBe(APP);
  });
});
