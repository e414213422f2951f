import type { LeaseStore } from "@blindcast/keys";
import { createLambdaKeyServer, type KeyServerEvent } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { v1Event, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

// Property-based fuzzing of the Lambda handler over arbitrary events. An independent oracle
// (the tokens and leases below) decides whether a key may be served; the handler must agree.
const TOKENS: Record<string, string> = { "good-a": "viewer-a", "good-b": "viewer-b" };
const ORIGIN = "https://app.example.com";
const clock = { t: Date.parse("2026-11-28T12:00:00Z") };
const memory = createMemoryLeaseStore({ now: () => clock.t });
const leases: Record<string, { contentId: string; viewerId: string; live: boolean }> = {};

// A store that fails on demand: 5xx is allowed only for the requests during which it failed.
let storeFails = false;
let storeFailed = false;
const guard =
  <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
  (...args: A): Promise<R> => {
    if (storeFails) {
      storeFailed = true;
      return Promise.reject(new Error("store down"));
    }
    return fn(...args);
  };
const flaky: LeaseStore = {
  create: guard((input) => memory.create(input)),
  get: guard((id) => memory.get(id)),
  renew: guard((input) => memory.renew(input)),
  release: guard((input) => memory.release(input)),
};

const handler = createLambdaKeyServer({
  masterKey,
  salt,
  corsOrigins: ORIGIN,
  authenticate: (event) => {
    const token = event.headers?.authorization?.replace(/^Bearer /, "") ?? "";
    const viewerId = Object.hasOwn(TOKENS, token) ? TOKENS[token] : undefined;
    return viewerId ? { ok: true, viewerId } : { ok: false, status: 401, reason: "no" };
  },
  leaseStore: flaky,
  maxConcurrentLeases: 50,
  audit: false,
  logger: recordingLogger(),
});

beforeAll(async () => {
  for (const [contentId, viewerId, ttl] of [
    ["movie-42", "viewer-a", 600],
    ["demo", "viewer-b", 600],
    ["movie-42", "viewer-b", 600],
    ["movie-42", "viewer-a", 1],
  ] as const) {
    const created = await memory.create({ contentId, viewerId, ttlSeconds: ttl });
    if (!created.ok) throw new Error("setup");
    leases[created.lease.leaseId] = { contentId, viewerId, live: ttl > 1 };
  }
  clock.t += 5000; // the 1 s lease is now expired
});

const leaseIds = () => Object.keys(leases);
const segment = fc.oneof(
  fc.constantFrom(
    "movie-42",
    "demo",
    "leases",
    "renew",
    "..",
    ".",
    "%2F",
    "",
    "0",
    "7",
    "01",
    "-1",
    "4294967296",
  ),
  fc.string({ maxLength: 12 }),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,20}$/),
);
const path = fc
  .tuple(
    fc.constantFrom("", "/prod", "/a/b"),
    fc.constantFrom("/keys", "/key", ""),
    fc.array(segment, { maxLength: 3 }),
  )
  .map(([prefix, keys, parts]) => `${prefix}${keys}${parts.map((p) => `/${p}`).join("")}`);
const headerValue = (values: fc.Arbitrary<string>) => fc.option(values, { nil: undefined });
const headers = fc.record({
  authorization: headerValue(
    fc.oneof(
      fc.constantFrom(
        "Bearer good-a",
        "Bearer good-b",
        "Bearer bad",
        "Basic x",
        "Bearer good-a,Bearer good-b",
      ),
      fc.string(),
    ),
  ),
  "x-blindcast-lease": headerValue(fc.oneof(fc.constant("LEASE"), fc.string({ maxLength: 40 }))),
  origin: headerValue(fc.constantFrom(ORIGIN, "https://evil.example", "null", `${ORIGIN},${ORIGIN}`)),
  "content-type": headerValue(
    fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", ""),
  ),
});
const body = fc.option(
  fc.oneof(
    fc.json(),
    fc.string({ maxLength: 200 }),
    fc.constantFrom(
      '{"contentId":"movie-42"}',
      '{"contentId":"movie-42","keys":[0,"content"]}',
      '{"leaseId":"LEASE"}',
    ),
  ),
  { nil: undefined },
);
const httpEvent = fc
  .record({
    kind: fc.constantFrom("v1", "v2"),
    method: fc.constantFrom("GET", "POST", "DELETE", "OPTIONS", "PUT", "HEAD", "get", ""),
    path,
    headers,
    body,
    base64: fc.boolean(),
    leasePick: fc.nat(),
  })
  .map(({ kind, method, path: p, headers: h, body: b, base64, leasePick }) => {
    const id = leaseIds()[leasePick % leaseIds().length] ?? "";
    const withLease = Object.fromEntries(
      Object.entries(h)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, (v as string).replace("LEASE", id)]),
    );
    const spec = { method, path: p, headers: withLease, body: b?.replace("LEASE", id), base64 };
    return kind === "v1" ? v1Event(spec) : v2Event(spec);
  });
// Well-formed key requests with valid and invalid credentials mixed, so that the property is
// tested where keys are actually served, not only where everything is refused.
const keyRequest = fc
  .record({
    kind: fc.constantFrom("v1", "v2"),
    prefix: fc.constantFrom("", "/prod"),
    contentId: fc.constantFrom("movie-42", "demo"),
    epoch: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
    token: fc.constantFrom("good-a", "good-b", "bad"),
    leasePick: fc.nat(),
    origin: fc.option(fc.constantFrom(ORIGIN, "https://evil.example"), { nil: undefined }),
  })
  .map(({ kind, prefix, contentId, epoch, token, leasePick, origin }) => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      "x-blindcast-lease": leaseIds()[leasePick % leaseIds().length] ?? "",
    };
    if (origin) headers.origin = origin;
    const spec = { path: `${prefix}/keys/${contentId}${epoch === undefined ? "" : `/${epoch}`}`, headers };
    return kind === "v1" ? v1Event(spec) : v2Event(spec);
  });
const anyEvent = fc.oneof(
  { weight: 6, arbitrary: httpEvent },
  { weight: 4, arbitrary: keyRequest },
  { weight: 1, arbitrary: fc.anything() },
);

/** Whether the oracle allows serving the key at `path` for this event. */
function mayServeKey(event: KeyServerEvent, contentId: string): boolean {
  const lower = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const token = lower.authorization?.replace(/^Bearer /, "") ?? "";
  const viewerId = Object.hasOwn(TOKENS, token) ? TOKENS[token] : undefined;
  const lease = leases[lower["x-blindcast-lease"] ?? ""];
  const origin = lower.origin;
  return Boolean(
    viewerId &&
      lease?.live &&
      lease.viewerId === viewerId &&
      lease.contentId === contentId &&
      (origin === undefined || origin === ORIGIN),
  );
}

describe("fuzzing the handler with arbitrary events", () => {
  it("never throws, never answers 5xx unless the store failed, and serves keys only to authenticated holders of a live lease", async () => {
    let served = 0;
    let storeFailures = 0;
    await fc.assert(
      fc.asyncProperty(anyEvent, fc.boolean(), fc.nat(19), async (event, _, failRoll) => {
        storeFails = failRoll === 0;
        storeFailed = false;
        const result = await handler(event as KeyServerEvent);
        storeFails = false;
        expect(typeof result.statusCode).toBe("number");
        if (result.statusCode >= 500) {
          expect(storeFailed).toBe(true);
          expect(result.statusCode).toBe(503);
          storeFailures++;
        }
        if (result.isBase64Encoded) {
          // Key bytes: only on the key routes, only for the oracle's allowed requests.
          expect(result.statusCode).toBe(200);
          const httpPath =
            (event as { rawPath?: string; path?: string }).rawPath ?? (event as { path: string }).path;
          const parts = httpPath.split("/");
          const contentId = parts[parts.indexOf("keys") + 1] ?? "";
          expect(mayServeKey(event as KeyServerEvent, contentId)).toBe(true);
          served++;
        }
        if (result.body.includes('"keys"')) {
          expect(result.statusCode).toBe(201);
        }
      }),
      { numRuns: 4000 },
    );
    // The generators must reach the interesting cases, or the property says little.
    expect(served).toBeGreaterThan(10);
    expect(storeFailures).toBeGreaterThan(10);
  }, 60_000);
});
