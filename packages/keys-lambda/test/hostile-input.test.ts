import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer, type KeyServerEvent } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { type RequestSpec, v1Event, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

// Hostile input against the Lambda handler, configured as deployed: JWT auth, leases, one
// allowed origin. Every row must answer its 4xx with its reason; none may answer 5xx.
const SECRET = "hostile-input-test-secret-0123456789abcdef";
const ORIGIN = "https://app.example.com";
const store = createMemoryLeaseStore();
const handler = createLambdaKeyServer({
  masterKey,
  salt,
  corsOrigins: ORIGIN,
  authenticate: createJwtAuthenticator({ secret: SECRET }),
  leaseStore: store,
  maxConcurrentLeases: 5,
  audit: false,
  logger: recordingLogger(),
});

let token = "";
let lease = "";
beforeAll(async () => {
  token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("viewer-1")
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
  const created = await store.create({ contentId: "movie-42", viewerId: "viewer-1", ttlSeconds: 600 });
  if (!created.ok) throw new Error("no lease");
  lease = created.lease.leaseId;
});

type Case = [name: string, event: () => KeyServerEvent | unknown, status: number, reason: RegExp];
const auth = () => ({ authorization: `Bearer ${token}` });
const withLease = () => ({ ...auth(), "x-blindcast-lease": lease });
const get =
  (path: string, headers: () => Record<string, string> = withLease) =>
  () =>
    v2Event({ path, headers: headers() });
const post =
  (path: string, body: string, extra: Record<string, string> = {}, base64 = false) =>
  () =>
    v2Event({
      method: "POST",
      path,
      headers: { ...auth(), "content-type": "application/json", ...extra },
      body,
      base64,
    });
const unsignedJwt = (claims: object) =>
  `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`;

const cases: Case[] = [
  // Paths: traversal, encoding tricks, shapes.
  ["path traversal with dot segments (no path resolution)", get("/keys/../keys/movie-42"), 404, /Not found/],
  ["dot-dot as the contentId", get("/keys/../1"), 400, /'\.'/],
  ["traversal as the epoch", get("/keys/movie-42/.."), 400, /canonical decimal/],
  ["percent-encoded slash in contentId", get("/keys/movie%2F42"), 400, /may contain only/],
  ["percent-encoded dot-dot", get("/keys/%2e%2e/1"), 400, /may contain only/],
  ["double-encoded slash", get("/keys/movie%252F42"), 400, /may contain only/],
  ["backslash in contentId", get("/keys/movie\\42"), 400, /may contain only/],
  ["NUL byte in contentId", get("/keys/movie%0042"), 400, /may contain only/],
  ["raw NUL in contentId", get("/keys/movie\u000042"), 400, /may contain only/],
  ["over-long contentId (129)", get(`/keys/${"a".repeat(129)}`), 400, /at most 128/],
  ["very long contentId (64 KiB)", get(`/keys/${"a".repeat(65536)}`), 400, /at most 128/],
  ["non-ASCII contentId", get("/keys/film\u00e9"), 400, /may contain only/],
  ["emoji contentId", get("/keys/\u{1F3AC}"), 400, /may contain only/],
  ["homoglyph contentId (Cyrillic a)", get("/keys/movie-42\u0430"), 400, /may contain only/],
  ["too many segments", get("/keys/movie-42/1/2"), 404, /Not found/],
  ["empty segment", get("/keys//1"), 404, /Not found/],
  ["trailing slash", get("/keys/movie-42/"), 404, /Not found/],
  ["no /keys at all", get("/admin"), 404, /Not found/],
  // Epochs.
  ["negative epoch", get("/keys/movie-42/-1"), 400, /canonical decimal/],
  ["epoch 2^32", get("/keys/movie-42/4294967296"), 400, /canonical decimal/],
  ["epoch of 400 digits", get(`/keys/movie-42/${"9".repeat(400)}`), 400, /canonical decimal/],
  ["fractional epoch", get("/keys/movie-42/1.5"), 400, /canonical decimal/],
  ["epoch with leading zeros", get("/keys/movie-42/007"), 400, /canonical decimal/],
  ["hex epoch", get("/keys/movie-42/0x10"), 400, /canonical decimal/],
  ["exponent epoch", get("/keys/movie-42/1e2"), 400, /canonical decimal/],
  ["epoch Infinity", get("/keys/movie-42/Infinity"), 400, /canonical decimal/],
  ["epoch NaN", get("/keys/movie-42/NaN"), 400, /canonical decimal/],
  ["full-width digits epoch", get("/keys/movie-42/\uFF11"), 400, /canonical decimal/],
  // Methods.
  [
    "PUT on a key",
    () => v2Event({ method: "PUT", path: "/keys/movie-42", headers: withLease() }),
    405,
    /Method PUT not allowed/,
  ],
  [
    "TRACE on leases",
    () => v2Event({ method: "TRACE", path: "/keys/leases", headers: auth() }),
    405,
    /not allowed/,
  ],
  [
    "lowercase-method junk",
    () => v2Event({ method: "G E T", path: "/keys/movie-42", headers: withLease() }),
    405,
    /not allowed/,
  ],
  // Headers.
  ["no Authorization", get("/keys/movie-42", () => ({ "x-blindcast-lease": lease })), 401, /Missing token/],
  [
    // HTTP APIs join repeats with commas, and a SigV4 Authorization holds commas of its own, so a
    // joined value cannot be told from one value: the token check refuses it instead.
    "duplicate Authorization (v2 joined)",
    get("/keys/movie-42", () => ({
      authorization: `Bearer ${token},Bearer ${token}`,
      "x-blindcast-lease": lease,
    })),
    401,
    /Malformed Authorization header/,
  ],
  [
    "duplicate Authorization (v1 multi-value)",
    () => {
      const event = v1Event({ path: "/keys/movie-42", headers: withLease() });
      event.multiValueHeaders = { Authorization: [`Bearer ${token}`, "Bearer other"] };
      return event;
    },
    400,
    /authorization must appear once/,
  ],
  [
    "duplicate lease header",
    get("/keys/movie-42", () => ({ ...auth(), "x-blindcast-lease": `${lease},${lease}` })),
    400,
    /x-blindcast-lease must appear once/,
  ],
  [
    "duplicate Origin",
    get("/keys/movie-42", () => ({ ...withLease(), origin: `${ORIGIN},${ORIGIN}` })),
    400,
    /origin must appear once/,
  ],
  ["no lease header", get("/keys/movie-42", auth), 403, /lease is required/],
  ["lease of another content", get("/keys/other", withLease), 403, /other content/],
  [
    "lease id SQL-ish",
    get("/keys/movie-42", () => ({ ...auth(), "x-blindcast-lease": "' OR 1=1 --" })),
    403,
    /Lease not found/,
  ],
  [
    "lease id overlong",
    get("/keys/movie-42", () => ({ ...auth(), "x-blindcast-lease": "a".repeat(10_000) })),
    403,
    /Lease not found/,
  ],
  // Tokens.
  [
    "token that is not a JWT",
    get("/keys/movie-42", () => ({ authorization: "Bearer hello", "x-blindcast-lease": lease })),
    401,
    /Invalid token/,
  ],
  [
    "alg=none JWT",
    get("/keys/movie-42", () => ({
      authorization: `Bearer ${unsignedJwt({ sub: "viewer-1" })}`,
      "x-blindcast-lease": lease,
    })),
    401,
    /Invalid token/,
  ],
  [
    "Basic scheme",
    get("/keys/movie-42", () => ({ authorization: "Basic dmlld2VyOnB3", "x-blindcast-lease": lease })),
    401,
    /Malformed Authorization/,
  ],
  [
    "Bearer without token",
    get("/keys/movie-42", () => ({ authorization: "Bearer ", "x-blindcast-lease": lease })),
    401,
    /Malformed Authorization/,
  ],
  [
    "token with a newline",
    get("/keys/movie-42", () => ({ authorization: `Bearer ${token}\nX: y`, "x-blindcast-lease": lease })),
    401,
    /Malformed Authorization/,
  ],
  // Origins.
  [
    "hostile origin",
    get("/keys/movie-42", () => ({ ...withLease(), origin: "https://evil.example" })),
    403,
    /Origin not allowed/,
  ],
  [
    "null origin",
    get("/keys/movie-42", () => ({ ...withLease(), origin: "null" })),
    403,
    /Origin not allowed/,
  ],
  [
    "origin with a path",
    get("/keys/movie-42", () => ({ ...withLease(), origin: `${ORIGIN}/x` })),
    403,
    /Origin not allowed/,
  ],
  [
    "origin suffix attack",
    get("/keys/movie-42", () => ({ ...withLease(), origin: `${ORIGIN}.evil.example` })),
    403,
    /Origin not allowed/,
  ],
  [
    "origin in another case",
    get("/keys/movie-42", () => ({ ...withLease(), origin: "HTTPS://APP.EXAMPLE.COM" })),
    403,
    /Origin not allowed/,
  ],
  // Bodies.
  ["malformed JSON", post("/keys/leases", '{"contentId":'), 400, /not valid JSON/],
  ["JSON string body", post("/keys/leases", '"movie-42"'), 400, /JSON object/],
  [
    "huge body",
    post("/keys/leases", JSON.stringify({ contentId: "a", pad: "x".repeat(100_000) })),
    400,
    /over 4096 bytes/,
  ],
  [
    "huge base64 body",
    post("/keys/leases", JSON.stringify({ contentId: "a", pad: "x".repeat(100_000) }), {}, true),
    400,
    /over 4096 bytes/,
  ],
  [
    "body flagged base64 but not",
    () => ({
      ...v2Event({
        method: "POST",
        path: "/keys/leases",
        headers: { ...auth(), "content-type": "application/json" },
      }),
      body: '{"contentId":"a"}',
      isBase64Encoded: true,
    }),
    400,
    /not valid base64/,
  ],
  [
    "base64 body of invalid UTF-8",
    () => ({
      ...v2Event({
        method: "POST",
        path: "/keys/leases",
        headers: { ...auth(), "content-type": "application/json" },
      }),
      body: Buffer.from([0xff, 0xfe, 0x7b]).toString("base64"),
      isBase64Encoded: true,
    }),
    400,
    /not valid UTF-8/,
  ],
  [
    "wrong content type",
    post("/keys/leases", '{"contentId":"a"}', { "content-type": "text/plain" }),
    400,
    /Content-Type must be application\/json/,
  ],
  [
    "form-encoded body",
    post("/keys/leases", "contentId=a", { "content-type": "application/x-www-form-urlencoded" }),
    400,
    /Content-Type/,
  ],
  [
    "prototype pollution attempt",
    post("/keys/leases", '{"__proto__":{"contentId":"x"}}'),
    400,
    /contentId must be a string/,
  ],
  ["contentId as array", post("/keys/leases", '{"contentId":["a"]}'), 400, /contentId must be a string/],
  [
    "renew with number leaseId",
    post("/keys/leases/renew", '{"leaseId":12345678901234567890}'),
    400,
    /leaseId must be/,
  ],
  ["deeply nested JSON", post("/keys/leases", `${"[".repeat(1000)}${"]".repeat(1000)}`), 400, /JSON object/],
  // Events.
  ["not an HTTP event", () => ({ Records: [{ eventSource: "aws:s3" }] }), 400, /Unsupported event/],
  [
    "event with numeric path",
    () => ({ version: "2.0", rawPath: 42, requestContext: { http: { method: "GET" } } }),
    400,
    /Unsupported event/,
  ],
  [
    "event with a body object",
    () => ({
      ...v2Event({
        method: "POST",
        path: "/keys/leases",
        headers: { ...auth(), "content-type": "application/json" },
      }),
      body: { contentId: "a" },
    }),
    400,
    /body must be a string/,
  ],
];

describe("hostile input table", () => {
  it("has at least 40 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)("%s → %i", async (_, event, status, reason) => {
    const result = await handler(event() as KeyServerEvent);
    expect(result.statusCode).toBeLessThan(500);
    expect(result.statusCode).toBe(status);
    expect(String(JSON.parse(result.body).error)).toMatch(reason);
    expect(result.isBase64Encoded).toBe(false);
  });
});

export type { RequestSpec };
