import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { describe, expect, it } from "vitest";
import { jsonBody, type RequestSpec, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

const handler = createLambdaKeyServer({
  masterKey,
  salt,
  corsOrigins: "*",
  authenticate: () => ({ ok: true, viewerId: "viewer-1" }),
  leaseStore: createMemoryLeaseStore(),
  audit: false,
  logger: recordingLogger(),
});

const json = { "content-type": "application/json" };
const lease = (body: string, headers: Record<string, string> = json): RequestSpec => ({
  method: "POST",
  path: "/keys/leases",
  headers,
  body,
});
const renew = (body: string): RequestSpec => ({
  method: "POST",
  path: "/keys/leases/renew",
  headers: json,
  body,
});

const titleKeys = (
  body: string,
  path = "/keys/demo/keys",
  headers: Record<string, string> = json,
): RequestSpec => ({
  method: "POST",
  path,
  headers,
  body,
});

// Every row: the request, the status it must get, and a pattern its reason must match.
const table: [string, RequestSpec, number, RegExp][] = [
  ["contentId with percent-encoded slash", { path: "/keys/a%2Fb" }, 400, /may contain only/],
  ["contentId of one dot", { path: "/keys/." }, 400, /'\.'/],
  ["contentId of two dots", { path: "/keys/../1" }, 400, /'\.'/],
  ["contentId of 129 characters", { path: `/keys/${"x".repeat(129)}` }, 400, /at most 128/],
  ["non-ASCII contentId", { path: "/keys/caf%C3%A9" }, 400, /may contain only/],
  ["contentId with a colon", { path: "/keys/a:b" }, 400, /may contain only/],
  ["negative epoch", { path: "/keys/demo/-1" }, 400, /canonical decimal/],
  ["epoch with leading zero", { path: "/keys/demo/01" }, 400, /canonical decimal/],
  ["fractional epoch", { path: "/keys/demo/1.5" }, 400, /canonical decimal/],
  ["epoch 2^32", { path: "/keys/demo/4294967296" }, 400, /canonical decimal/],
  ["huge epoch", { path: `/keys/demo/${"9".repeat(40)}` }, 400, /canonical decimal/],
  ["epoch in exponent form", { path: "/keys/demo/1e3" }, 400, /canonical decimal/],
  ["epoch with plus sign", { path: "/keys/demo/+1" }, 400, /canonical decimal/],
  [
    "lease: wrong content type",
    lease('{"contentId":"a"}', { "content-type": "text/plain" }),
    400,
    /Content-Type/,
  ],
  ["lease: no content type", lease('{"contentId":"a"}', {}), 400, /Content-Type/],
  ["lease: malformed JSON", lease('{"contentId":'), 400, /not valid JSON/],
  ["lease: JSON array", lease('["a"]'), 400, /JSON object/],
  ["lease: JSON null", lease("null"), 400, /JSON object/],
  ["lease: empty body", lease(""), 400, /empty/],
  ["lease: body over 4 KiB", lease(`{"contentId":"a","pad":"${"x".repeat(4100)}"}`), 400, /over 4096 bytes/],
  ["lease: missing contentId", lease("{}"), 400, /contentId must be a string/],
  ["lease: numeric contentId", lease('{"contentId":42}'), 400, /contentId must be a string/],
  ["lease: invalid contentId", lease('{"contentId":"a/b"}'), 400, /may contain only/],
  ["renew: missing leaseId", renew("{}"), 400, /leaseId must be/],
  ["renew: short leaseId", renew('{"leaseId":"abc"}'), 400, /leaseId must be/],
  ["renew: leaseId with quote", renew('{"leaseId":"0123456789abcdef\\""}'), 400, /leaseId must be/],
  ["renew: unknown leaseId", renew('{"leaseId":"0123456789abcdef0123456789abcdef"}'), 404, /Lease not found/],
  [
    "release: malformed leaseId",
    { method: "DELETE", path: "/keys/leases/not!an-id" },
    400,
    /leaseId must be/,
  ],
  ["title keys: invalid contentId", titleKeys('{"keys":[1]}', "/keys/a:b/keys"), 400, /may contain only/],
  ["title keys: wrong content type", titleKeys('{"keys":[1]}', "/keys/demo/keys", {}), 400, /Content-Type/],
  ["title keys: malformed JSON", titleKeys('{"keys":['), 400, /not valid JSON/],
  ["title keys: JSON array", titleKeys("[1]"), 400, /JSON object/],
  ["title keys: body over 4 KiB", titleKeys(`{"keys":[1],"pad":"${"x".repeat(4100)}"}`), 400, /over 4096/],
  ["title keys: without a lease", titleKeys('{"keys":[1]}'), 403, /lease is required/],
  ["key without lease", { path: "/keys/demo" }, 403, /lease is required/],
  [
    "key with malformed lease",
    { path: "/keys/demo", headers: { "x-blindcast-lease": "../../etc" } },
    403,
    /Lease not found/,
  ],
  [
    "key with unknown lease",
    { path: "/keys/demo", headers: { "x-blindcast-lease": "f".repeat(32) } },
    403,
    /Lease not found/,
  ],
];

describe("validation table", () => {
  it.each(table)("%s", async (_, spec, status, reason) => {
    const result = await handler(v2Event(spec));
    expect(result.statusCode).toBe(status);
    expect(String(jsonBody(result).error)).toMatch(reason);
  });

  it("accepts a body of exactly 4096 bytes", async () => {
    const prefix = '{"contentId":"a","pad":"';
    const body = `${prefix}${"x".repeat(4096 - prefix.length - 2)}"}`;
    expect(Buffer.byteLength(body)).toBe(4096);
    const result = await handler(v2Event(lease(body)));
    expect(result.statusCode).toBe(201);
  });

  it("accepts application/json with a charset", async () => {
    const result = await handler(
      v2Event(lease('{"contentId":"a"}', { "content-type": "application/json; charset=utf-8" })),
    );
    expect(result.statusCode).toBe(201);
  });
});
