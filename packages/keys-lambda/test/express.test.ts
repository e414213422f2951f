import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { bytesToHex } from "@blindcast/crypto";
import { type AuditRecord, KeyServerConfigError, type LeaseStore } from "@blindcast/keys";
import { createExpressKeyServer, type ExpressKeyServerOptions } from "@blindcast/keys/express";
import type { KeyServerEvent } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { createKeyServerListener } from "@blindcast/keys/node";
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { masterKey, recordingLogger, salt, vectorFor } from "./support/fixtures.js";
import { type RawResponse, rawRequest } from "./support/raw-http.js";

// The Express adapter against the node:http server, request for request over real HTTP: the
// same table of routes and refusals sent as exact bytes to both, in Express apps that mount the
// key server at different paths, behind different body parsers, with an error handler and a
// 404 handler of their own (which must never see a key route), half of them with trust proxy.

const ORIGIN = "http://localhost:5173";
const TOKEN = "Bearer viewer-token";
const OTHER_TOKEN = "Bearer viewer-2-token";
const PUBLISHER_TOKEN = "Bearer publisher-token";
// Publishing on, with storage on a fixed (never contacted) endpoint: only URLs are signed.
const PUBLISH = {
  storage: {
    bucket: "media",
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-only-secret" },
  },
};

function viewerFor(authorization: string | undefined) {
  if (authorization === TOKEN) return { ok: true as const, viewerId: "viewer-1" };
  if (authorization === OTHER_TOKEN) return { ok: true as const, viewerId: "viewer-2" };
  if (authorization === PUBLISHER_TOKEN)
    return { ok: true as const, viewerId: "publisher-1", publisher: true };
  return { ok: false as const, status: 401, reason: "Missing token" };
}

/** Where a test server keeps what it saw, and the leases the table's rows refer to. */
interface Target {
  name: string;
  port: number;
  /** The path of the key routes' base: `/keys` on node:http, the mount path on Express. */
  base: string;
  records: AuditRecord[];
  leases: { lease: string; lease2: string };
  /** What reached the app's own 404 and error handlers (Express only). */
  app: { notFound: string[]; errors: unknown[] };
  close(): Promise<void>;
}

async function seeded(store: LeaseStore) {
  const one = await store.create({ contentId: "movie-42", viewerId: "viewer-1", ttlSeconds: 600 });
  const two = await store.create({ contentId: "movie-42", viewerId: "viewer-2", ttlSeconds: 600 });
  if (!one.ok || !two.ok) throw new Error("no lease");
  return { lease: one.lease.leaseId, lease2: two.lease.leaseId };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

function closer(server: Server) {
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

async function nodeTarget(): Promise<Target> {
  const records: AuditRecord[] = [];
  const store = createMemoryLeaseStore();
  const server = createServer(
    createKeyServerListener({
      masterKey,
      salt,
      corsOrigins: ORIGIN,
      authenticate: (event: KeyServerEvent) => viewerFor(event.headers?.authorization ?? undefined),
      leaseStore: store,
      publish: PUBLISH,
      audit: (record) => records.push(record),
      logger: recordingLogger(),
    }),
  );
  return {
    name: "node:http",
    port: await listen(server),
    base: "/keys",
    records,
    leases: await seeded(store),
    app: { notFound: [], errors: [] },
    close: closer(server),
  };
}

type ParserSet = "none" | "json" | "every default parser" | "raw for any type" | "text for JSON";
const PARSERS: Record<ParserSet, () => RequestHandler[]> = {
  none: () => [],
  json: () => [express.json()],
  "every default parser": () => [express.json(), express.urlencoded(), express.text(), express.raw()],
  "raw for any type": () => [express.raw({ type: "*/*" })],
  "text for JSON": () => [express.text({ type: "application/json" })],
};

interface Variant {
  /** "" mounts at the root: `app.use(keyServer)`. */
  mount: string;
  parsers: ParserSet;
  trustProxy: boolean;
}

/** An app as a user writes one: parsers, the key server, its own routes, 404 and error handler. */
function appWith(
  variant: Variant,
  options: ExpressKeyServerOptions,
  seen: Target["app"],
  before: RequestHandler[] = [],
): Express {
  const app = express();
  if (variant.trustProxy) app.set("trust proxy", "loopback");
  for (const handler of before) app.use(handler);
  for (const parser of PARSERS[variant.parsers]()) app.use(parser);
  const keyServer = createExpressKeyServer(options);
  if (variant.mount === "") app.use(keyServer);
  else app.use(variant.mount, keyServer);
  app.get("/app-route", (_req, res) => {
    res.type("text/plain").send("the app's own route");
  });
  app.use((req, res) => {
    seen.notFound.push(req.originalUrl);
    res.status(404).type("text/plain").send("the app's 404");
  });
  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    seen.errors.push(error);
    res.status(599).type("text/plain").send("the app's error handler");
  };
  app.use(onError);
  return app;
}

async function expressTarget(variant: Variant): Promise<Target> {
  const records: AuditRecord[] = [];
  const store = createMemoryLeaseStore();
  const seen: Target["app"] = { notFound: [], errors: [] };
  const app = appWith(
    variant,
    {
      masterKey,
      salt,
      corsOrigins: ORIGIN,
      authenticate: (req: Request) => viewerFor(req.get("authorization")),
      leaseStore: store,
      publish: PUBLISH,
      audit: (record) => records.push(record),
      logger: recordingLogger(),
    },
    seen,
  );
  const server = createServer(app);
  return {
    name: `Express at "${variant.mount || "/"}", ${variant.parsers}${variant.trustProxy ? ", trust proxy" : ""}`,
    port: await listen(server),
    base: variant.mount || "/keys",
    records,
    leases: await seeded(store),
    app: seen,
    close: closer(server),
  };
}

// --- the table -------------------------------------------------------------------------------

type Header = readonly [string, string];
const A: Header = ["authorization", TOKEN];
const J: Header = ["content-type", "application/json"];
const O: Header = ["origin", ORIGIN];
const P: Header = ["authorization", PUBLISHER_TOKEN];
const L: Header = ["x-blindcast-lease", "{lease}"];
const SIGV4 =
  "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261129/us-east-1/execute-api/aws4_request, " +
  "SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const LEASE_BODY = '{"contentId":"movie-42"}';
const chunked = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`;

interface Case {
  name: string;
  method: string;
  /** Below the key routes' base; "" is the base itself. */
  path: string;
  headers?: readonly Header[];
  body?: string | Buffer;
  /** node:http's answer, asserted; every Express app must answer exactly the same. */
  status: number;
  /** The refusal's `error`, asserted on node:http. */
  error?: string;
  /**
   * What the Express app answers instead behind these body parsers, where they change the body
   * before the key server sees it (documented in the README).
   */
  behind?: Partial<Record<ParserSet, number>>;
}

const CASES: Case[] = [
  { name: "content key with a lease", method: "GET", path: "/movie-42", headers: [A, L], status: 200 },
  {
    name: "epoch key with a lease, from the allowed origin",
    method: "GET",
    path: "/movie-42/7",
    headers: [A, L, O],
    status: 200,
  },
  {
    name: "a key request with a body it does not need",
    method: "GET",
    path: "/movie-42/1",
    headers: [A, L, J],
    body: "{}",
    status: 200,
  },
  { name: "no token", method: "GET", path: "/movie-42", status: 401, error: "Missing token" },
  {
    name: "a SigV4 Authorization, commas and all, is one header",
    method: "GET",
    path: "/movie-42",
    headers: [["authorization", SIGV4]],
    status: 401,
    error: "Missing token",
  },
  {
    name: "no lease",
    method: "GET",
    path: "/movie-42",
    headers: [A],
    status: 403,
    error: "A lease is required: send its id in the X-Blindcast-Lease header",
  },
  {
    name: "a lease id of the wrong shape",
    method: "GET",
    path: "/movie-42",
    headers: [A, ["x-blindcast-lease", "nope"]],
    status: 403,
    error: "Lease not found",
  },
  {
    name: "another viewer's lease",
    method: "GET",
    path: "/movie-42",
    headers: [A, ["x-blindcast-lease", "{lease2}"]],
    status: 403,
    error: "Lease belongs to another viewer",
  },
  {
    name: "a lease for other content",
    method: "GET",
    path: "/other-movie",
    headers: [A, L],
    status: 403,
    error: "Lease is for other content",
  },
  {
    name: "a foreign origin",
    method: "GET",
    path: "/movie-42",
    headers: [A, L, ["origin", "http://evil.localhost"]],
    status: 403,
    error: "Origin not allowed",
  },
  {
    name: "Authorization twice",
    method: "GET",
    path: "/movie-42",
    headers: [A, ["authorization", "Bearer someone-else"], L],
    status: 400,
    error: "Header authorization must appear once",
  },
  {
    name: "Origin twice",
    method: "GET",
    path: "/movie-42",
    headers: [O, O, A, L],
    status: 400,
    error: "Header origin must appear once",
  },
  {
    name: "X-Blindcast-Lease twice",
    method: "GET",
    path: "/movie-42",
    headers: [A, L, L],
    status: 400,
    error: "Header x-blindcast-lease must appear once",
  },
  {
    name: "Content-Type twice on a lease request",
    method: "POST",
    path: "/leases",
    headers: [A, J, J],
    body: LEASE_BODY,
    status: 400,
    error: "Header content-type must appear once",
  },
  {
    name: "an invalid contentId",
    method: "GET",
    path: "/bad%20id",
    headers: [A],
    status: 400,
    error: "contentId may contain only A-Z a-z 0-9 . _ ~ -",
  },
  { name: "an invalid epoch", method: "GET", path: "/movie-42/-1", headers: [A, L], status: 400 },
  ...["", "/", "/a/1/extra", "//1", "/a/"].map(
    (path): Case => ({
      name: `unknown path "${path}"`,
      method: "GET",
      path,
      headers: [A],
      status: 404,
      error: "Not found",
    }),
  ),
  { name: "POST on a key", method: "POST", path: "/movie-42", headers: [A], status: 405 },
  { name: "PUT on an epoch key", method: "PUT", path: "/movie-42/3", headers: [A], status: 405 },
  { name: "PATCH on leases", method: "PATCH", path: "/leases", headers: [A], status: 405 },
  { name: "HEAD on a key", method: "HEAD", path: "/movie-42", headers: [A, L], status: 405 },
  {
    name: "a preflight from the allowed origin",
    method: "OPTIONS",
    path: "/movie-42/3",
    headers: [
      O,
      ["access-control-request-method", "GET"],
      ["access-control-request-headers", "authorization,x-blindcast-lease"],
    ],
    status: 204,
  },
  { name: "OPTIONS without an Origin", method: "OPTIONS", path: "/leases", status: 204 },
  { name: "a preflight of an unknown path", method: "OPTIONS", path: "/a/b/c", headers: [O], status: 404 },
  {
    name: "a preflight from a foreign origin",
    method: "OPTIONS",
    path: "/movie-42",
    headers: [["origin", "http://evil.localhost"]],
    status: 403,
  },
  {
    name: "a title's keys with a lease, from the allowed origin",
    method: "POST",
    path: "/movie-42/keys",
    headers: [A, L, J, O],
    body: '{"keys":[7,"content",1]}',
    status: 200,
  },
  {
    name: "a title's keys without a lease",
    method: "POST",
    path: "/movie-42/keys",
    headers: [A, J],
    body: '{"keys":[7]}',
    status: 403,
    error: "A lease is required: send its id in the X-Blindcast-Lease header",
  },
  {
    name: "nine of a title's keys at once",
    method: "POST",
    path: "/movie-42/keys",
    headers: [A, L, J],
    body: '{"keys":[0,1,2,3,4,5,6,7,8]}',
    status: 400,
    error: 'keys must be an array of at most 8 epochs (or "content")',
  },
  {
    name: "a preflight of a title's keys URL",
    method: "OPTIONS",
    path: "/movie-42/keys",
    headers: [
      O,
      ["access-control-request-method", "POST"],
      ["access-control-request-headers", "authorization,content-type,x-blindcast-lease"],
    ],
    status: 204,
  },
  {
    name: "a lease without a token",
    method: "POST",
    path: "/leases",
    headers: [J],
    body: LEASE_BODY,
    status: 401,
  },
  {
    name: "a lease with its first keys, from the allowed origin",
    method: "POST",
    path: "/leases",
    headers: [A, J, O],
    body: '{"contentId":"movie-42","keys":[0,"content"]}',
    status: 201,
  },
  {
    name: "a lease over chunked transfer encoding",
    method: "POST",
    path: "/leases",
    headers: [A, J, ["transfer-encoding", "chunked"]],
    body: chunked(LEASE_BODY),
    status: 201,
  },
  {
    name: "a lease body as text/plain",
    method: "POST",
    path: "/leases",
    headers: [A, ["content-type", "text/plain"]],
    body: "contentId",
    status: 400,
    error: "Content-Type must be application/json",
  },
  {
    name: "a lease body form-encoded",
    method: "POST",
    path: "/leases",
    headers: [A, ["content-type", "application/x-www-form-urlencoded"]],
    body: "contentId=movie-42",
    status: 400,
    error: "Content-Type must be application/json",
  },
  {
    name: "an empty JSON body",
    method: "POST",
    path: "/leases",
    headers: [A, J, ["content-length", "0"]],
    status: 400,
    error: "Request body is empty",
  },
  {
    name: "malformed JSON",
    method: "POST",
    path: "/leases",
    headers: [A, J],
    body: "{bad",
    status: 400,
    error: "Request body is not valid JSON",
  },
  {
    name: "malformed JSON without a token: the token is judged first",
    method: "POST",
    path: "/leases",
    headers: [J],
    body: "{bad",
    status: 401,
  },
  ...["[1]", "5", "null", '"movie-42"'].map(
    (body): Case => ({
      name: `JSON ${body}`,
      method: "POST",
      path: "/leases",
      headers: [A, J],
      body,
      status: 400,
      error: "Request body must be a JSON object",
    }),
  ),
  {
    name: "a JSON body over 4096 bytes, most of it whitespace",
    method: "POST",
    path: "/leases",
    headers: [A, J],
    body: `${LEASE_BODY}${" ".repeat(5000)}`,
    status: 400,
    error: "Request body is over 4096 bytes",
  },
  {
    name: "a chunked JSON body over 4096 bytes, most of it whitespace",
    method: "POST",
    path: "/leases",
    headers: [A, J, ["transfer-encoding", "chunked"]],
    body: chunked(`${LEASE_BODY}${" ".repeat(5000)}`),
    status: 400,
    error: "Request body is over 4096 bytes",
    // Without a Content-Length, the size left to judge is that of the parsed value, serialised.
    behind: { json: 201, "every default parser": 201 },
  },
  {
    name: "a JSON body of 200 KB, over the parsers' own limit too",
    method: "POST",
    path: "/leases",
    headers: [A, J],
    body: JSON.stringify({ contentId: "movie-42", pad: "x".repeat(200_000) }),
    status: 400,
    error: "Request body is over 4096 bytes",
  },
  {
    name: "JSON with a charset the JSON parser refuses",
    method: "POST",
    path: "/leases",
    headers: [A, ["content-type", "application/json; charset=latin1"]],
    body: LEASE_BODY,
    status: 201,
  },
  {
    name: "a content encoding the parsers do not know, on a body that is plain JSON",
    method: "POST",
    path: "/leases",
    headers: [A, J, ["content-encoding", "compress"]],
    body: LEASE_BODY,
    status: 201,
  },
  {
    name: "invalid UTF-8 in a field the server ignores",
    method: "POST",
    path: "/leases",
    headers: [A, J],
    body: Buffer.concat([
      Buffer.from('{"contentId":"movie-42","note":"'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]),
    status: 400,
    error: "Request body is not valid UTF-8",
    // The JSON and text parsers decode with replacement characters rather than refuse.
    behind: { json: 201, "every default parser": 201, "text for JSON": 201 },
  },
  {
    name: "a gzip-compressed JSON body",
    method: "POST",
    path: "/leases",
    headers: [A, J, ["content-encoding", "gzip"]],
    body: gzipSync(LEASE_BODY),
    status: 400,
    error: "Request body is not valid UTF-8",
    // Every parser inflates it (within its own limit) before the key server sees it.
    behind: { json: 201, "every default parser": 201, "raw for any type": 201, "text for JSON": 201 },
  },
  {
    name: "a publisher's packaging keys",
    method: "POST",
    path: "/publish/movie-42/keys",
    headers: [P, J],
    body: '{"keys":["content",7]}',
    status: 200,
  },
  {
    name: "a viewer asking for packaging keys",
    method: "POST",
    path: "/publish/movie-42/keys",
    headers: [A, J],
    body: '{"keys":[7]}',
    status: 403,
    error: "This caller may not publish (a publisher token is required)",
  },
  {
    name: "upload URLs for 60 files: a body over the viewer routes' 4 KiB",
    method: "POST",
    path: "/publish/movie-42/uploads",
    headers: [P, J],
    body: JSON.stringify({
      files: Array.from({ length: 60 }, (_, i) => ({
        path: `v0/segment_${String(i).padStart(5, "0")}.ts`,
        size: 1e6,
      })),
      head: true,
    }),
    status: 200,
  },
  {
    name: "upload URLs for a body over 512 KiB",
    method: "POST",
    path: "/publish/movie-42/uploads",
    headers: [P, J],
    body: JSON.stringify({ files: [{ path: "a.ts", size: 1 }], pad: "x".repeat(530_000) }),
    status: 400,
    error: "Request body is over 524288 bytes",
    // Refused by the parser's lower limit first: a 400 naming 102400 bytes.
    behind: { json: 400, "every default parser": 400, "raw for any type": 400, "text for JSON": 400 },
  },
  {
    name: "upload URLs in 200 KB: under the route's limit, over the body parsers' default 100 KB",
    method: "POST",
    path: "/publish/movie-42/uploads",
    headers: [P, J],
    body: JSON.stringify({ files: [{ path: "a.ts", size: 1 }], pad: "x".repeat(200_000) }),
    status: 200,
    // The app's parser refuses it first, and the answer says at which limit (README: give the
    // parsers a larger limit, or mount the key server before them).
    behind: { json: 400, "every default parser": 400, "raw for any type": 400, "text for JSON": 400 },
  },
  {
    name: "renew a lease",
    method: "POST",
    path: "/leases/renew",
    headers: [A, J],
    body: '{"leaseId":"{lease}"}',
    status: 200,
  },
  {
    name: "renew with a malformed lease id",
    method: "POST",
    path: "/leases/renew",
    headers: [A, J],
    body: '{"leaseId":"short"}',
    status: 400,
  },
  {
    name: "renew an unknown lease",
    method: "POST",
    path: "/leases/renew",
    headers: [A, J],
    body: '{"leaseId":"0123456789abcdef0123"}',
    status: 404,
    error: "Lease not found",
  },
  {
    name: "release without a lease id",
    method: "DELETE",
    path: "/leases",
    headers: [A],
    status: 400,
    error: "Send the lease id to release in the X-Blindcast-Lease header",
  },
  {
    name: "release an unknown lease by header",
    method: "DELETE",
    path: "/leases",
    headers: [A, ["x-blindcast-lease", "0123456789abcdef0123"]],
    status: 404,
  },
  {
    name: "release another viewer's lease by path",
    method: "DELETE",
    path: "/leases/{lease2}",
    headers: [A],
    status: 403,
    error: "Lease belongs to another viewer",
  },
];

/** The headers the key server decides; an app adds its own (X-Powered-By) beside them. */
const COMPARED_HEADERS = [
  "content-type",
  "content-length",
  "cache-control",
  "x-content-type-options",
  "allow",
  "access-control-allow-origin",
  "access-control-allow-methods",
  "access-control-allow-headers",
  "access-control-max-age",
  "vary",
  "retry-after",
];

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  audit: Partial<AuditRecord> | undefined;
}

async function send(target: Target, row: Case): Promise<Answer> {
  const fill = (text: string) =>
    text.replaceAll("{lease}", target.leases.lease).replaceAll("{lease2}", target.leases.lease2);
  const audited = target.records.length;
  const response = await rawRequest(
    target.port,
    row.method,
    fill(`${target.base}${row.path}`),
    (row.headers ?? []).map(([name, value]) => [name, fill(value)] as const),
    typeof row.body === "string" ? fill(row.body) : row.body,
  );
  const record = target.records[audited];
  return {
    status: response.status,
    headers: Object.fromEntries(
      COMPARED_HEADERS.filter((name) => response.headers[name] !== undefined).map((name) => [
        name,
        response.headers[name] as string,
      ]),
    ),
    body: bodyText(response),
    audit: record && { ...record, time: undefined, requestId: undefined, durationMs: undefined },
  };
}

/** Keys as hex, JSON with the lease id and expiry (random, time-bound) blanked out. */
function bodyText(response: RawResponse): string {
  if (response.headers["content-type"] === "application/octet-stream") return response.body.toString("hex");
  return (
    response.body
      .toString("utf8")
      .replace(/"leaseId":"[^"]+"/, '"leaseId":"…"')
      .replace(/"expiresAt":"[^"]+"/, '"expiresAt":"…"')
      // Upload URLs are signed for the second they are made.
      .replace(/X-Amz-Date=\w+/g, "X-Amz-Date=…")
      .replace(/X-Amz-Signature=\w+/g, "X-Amz-Signature=…")
  );
}

const VARIANTS: Variant[] = ["/keys", "/api/v1/keys", ""].flatMap((mount, m) =>
  (Object.keys(PARSERS) as ParserSet[]).map((parsers, p) => ({
    mount,
    parsers,
    trustProxy: (m + p) % 2 === 1,
  })),
);

describe("the Express adapter answers exactly as node:http, request for request", () => {
  let reference: Target;
  const expected = new Map<string, Answer>();

  beforeAll(async () => {
    reference = await nodeTarget();
    for (const row of CASES) expected.set(row.name, await send(reference, row));
  });
  afterAll(() => reference.close());

  it("node:http answers the table as it says (the reference is what it claims)", () => {
    for (const row of CASES) {
      const answer = expected.get(row.name) as Answer;
      expect(answer.status, row.name).toBe(row.status);
      if (row.error !== undefined) expect(JSON.parse(answer.body).error, row.name).toBe(row.error);
      // Every row is the key server's: audited, whatever the answer.
      expect(answer.audit?.status, row.name).toBe(row.status);
    }
    const key = expected.get("content key with a lease") as Answer;
    expect(key.body).toBe(vectorFor("movie-42"));
    expect(key.headers["content-length"]).toBe("16");
    expect(expected.get("a lease with its first keys, from the allowed origin")?.headers).toMatchObject({
      "access-control-allow-origin": ORIGIN,
    });
  });

  it.each(VARIANTS.map((variant) => [variant.mount || "/", variant.parsers, variant] as const))(
    'mounted at "%s", with body parsers: %s',
    async (_mount, _parsers, variant) => {
      const target = await expressTarget(variant);
      try {
        const differences: string[] = [];
        for (const row of CASES) {
          const answer = await send(target, row);
          const reference = expected.get(row.name) as Answer;
          const instead = row.behind?.[variant.parsers];
          if (instead !== undefined) {
            if (answer.status !== instead) differences.push(`${row.name}: ${answer.status}, not ${instead}`);
            continue;
          }
          try {
            expect(answer).toEqual(reference);
          } catch {
            differences.push(
              `${row.name}: ${JSON.stringify({ got: answer, expected: reference }, undefined, 1)}`,
            );
          }
        }
        expect(differences).toEqual([]);
        // The app's 404 and error handlers never saw a key route.
        expect(target.app).toEqual({ notFound: [], errors: [] });
      } finally {
        await target.close();
      }
    },
  );
});

// --- beyond the table ------------------------------------------------------------------------

/** Starts an app on loopback; `stop` closes it. */
async function serve(app: Express) {
  const server = createServer(app);
  const port = await listen(server);
  return { port, url: `http://127.0.0.1:${port}`, stop: closer(server) };
}

const base: ExpressKeyServerOptions = {
  masterKey,
  salt,
  corsOrigins: ORIGIN,
  authenticate: (req) => viewerFor(req.get("authorization")),
  audit: false,
  logger: recordingLogger(),
};

describe("a player's session through an Express app", () => {
  it.each(["/keys", "/api/v1/keys"])("mounted at %s behind express.json()", async (mount) => {
    const records: AuditRecord[] = [];
    const seen = { notFound: [], errors: [] };
    const app = appWith(
      { mount, parsers: "json", trustProxy: false },
      { ...base, leaseStore: createMemoryLeaseStore(), audit: (record) => records.push(record) },
      seen,
    );
    const { url, stop } = await serve(app);
    const keysUrl = `${url}${mount}`;
    try {
      const created = await fetch(`${keysUrl}/leases`, {
        method: "POST",
        headers: { authorization: TOKEN, "content-type": "application/json", origin: ORIGIN },
        body: JSON.stringify({ contentId: "movie-42", keys: [0, "content"] }),
      });
      expect(created.status).toBe(201);
      expect(created.headers.get("access-control-allow-origin")).toBe(ORIGIN);
      const lease = (await created.json()) as {
        leaseId: string;
        keys: { epoch: number | null; key: string }[];
      };
      expect(lease.keys.map((k) => [k.epoch, bytesToHex(Buffer.from(k.key, "base64"))])).toEqual([
        [0, vectorFor("movie-42", 0)],
        [null, vectorFor("movie-42")],
      ]);

      const withLease = { authorization: TOKEN, "x-blindcast-lease": lease.leaseId, origin: ORIGIN };
      const content = await fetch(`${keysUrl}/movie-42`, { headers: withLease });
      expect(content.headers.get("content-type")).toBe("application/octet-stream");
      expect(content.headers.get("cache-control")).toBe("no-store");
      expect(bytesToHex(new Uint8Array(await content.arrayBuffer()))).toBe(vectorFor("movie-42"));
      for (const epoch of [1, 7]) {
        const key = await fetch(`${keysUrl}/movie-42/${epoch}`, { headers: withLease });
        expect(bytesToHex(new Uint8Array(await key.arrayBuffer()))).toBe(vectorFor("movie-42", epoch));
      }

      const renewed = await fetch(`${keysUrl}/leases/renew`, {
        method: "POST",
        headers: { authorization: TOKEN, "content-type": "application/json" },
        body: JSON.stringify({ leaseId: lease.leaseId }),
      });
      expect(renewed.status).toBe(200);
      const released = await fetch(`${keysUrl}/leases`, {
        method: "DELETE",
        headers: { authorization: TOKEN, "x-blindcast-lease": lease.leaseId },
      });
      expect(released.status).toBe(204);
      const after = await fetch(`${keysUrl}/movie-42`, { headers: withLease });
      expect(after.status).toBe(403);
      expect(await after.json()).toEqual({ error: "Lease not found", code: "lease_not_found" });

      expect(records.map((r) => `${r.route}:${r.status}`)).toEqual([
        "lease_create:201",
        "content_key:200",
        "epoch_key:200",
        "epoch_key:200",
        "lease_renew:200",
        "lease_release:204",
        "content_key:403",
      ]);
      expect(records.every((r) => r.viewerId === "viewer-1")).toBe(true);
      expect(seen).toEqual({ notFound: [], errors: [] });
    } finally {
      await stop();
    }
  });
});

describe("callbacks receive Express's own request", () => {
  async function capture(trustProxy: boolean) {
    const seen: Record<string, unknown>[] = [];
    const app = express();
    if (trustProxy) app.set("trust proxy", "loopback");
    app.use(express.json());
    // The app's own authentication middleware, whose verdict the key server reads.
    app.use((req, res, next) => {
      res.locals.viewer = req.get("authorization") === TOKEN ? "viewer-1" : undefined;
      next();
    });
    app.use(
      "/api/v1/keys",
      createExpressKeyServer({
        ...base,
        leaseStore: createMemoryLeaseStore(),
        authenticate: (req: Request) => {
          const viewer: unknown = req.res?.locals.viewer;
          seen.push({
            ip: req.ip,
            protocol: req.protocol,
            hostname: req.hostname,
            baseUrl: req.baseUrl,
            path: req.path,
            originalUrl: req.originalUrl,
            query: { ...req.query },
            authorization: req.get("authorization"),
            body: req.body,
          });
          return typeof viewer === "string"
            ? { ok: true, viewerId: viewer }
            : { ok: false, status: 401, reason: "Sign in first" };
        },
        getViewerId: (req: Request) => `${req.res?.locals.viewer}@${req.ip}`,
      }),
    );
    const { url, stop } = await serve(app);
    try {
      const forwarded = {
        authorization: TOKEN,
        "content-type": "application/json",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "keys.example.com",
      };
      const created = await fetch(`${url}/api/v1/keys/leases?via=test`, {
        method: "POST",
        headers: forwarded,
        body: JSON.stringify({ contentId: "movie-42" }),
      });
      const refused = await fetch(`${url}/api/v1/keys/movie-42/3`);
      return { seen, created, refused };
    } finally {
      await stop();
    }
  }

  it("with trust proxy: the forwarded client address, protocol and host, as Express reads them", async () => {
    const { seen, created, refused } = await capture(true);
    expect(created.status).toBe(201);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: "Sign in first" });
    expect(seen[0]).toEqual({
      ip: "203.0.113.7",
      protocol: "https",
      hostname: "keys.example.com",
      baseUrl: "/api/v1/keys",
      path: "/leases",
      originalUrl: "/api/v1/keys/leases?via=test",
      query: { via: "test" },
      authorization: TOKEN,
      // What express.json() parsed, as the app's own handlers would see it.
      body: { contentId: "movie-42" },
    });
    expect(seen[1]).toMatchObject({ path: "/movie-42/3", authorization: undefined });
  });

  it("without: the peer's own address, whatever the headers claim", async () => {
    const { seen, created } = await capture(false);
    expect(created.status).toBe(201);
    expect(seen[0]).toMatchObject({ ip: expect.stringMatching(/127\.0\.0\.1$/), protocol: "http" });
    expect(seen[0]?.hostname).toBe("127.0.0.1");
  });
});

describe("the audit trail's request id", () => {
  async function ids(options: Partial<ExpressKeyServerOptions>, header: string) {
    const records: AuditRecord[] = [];
    const app = express();
    app.set("trust proxy", true);
    app.use("/keys", createExpressKeyServer({ ...base, ...options, audit: (r) => records.push(r) }));
    const { url, stop } = await serve(app);
    try {
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${url}/keys/movie-42/${i}`, {
          headers: { authorization: TOKEN, "x-request-id": header },
        });
        expect(response.status).toBe(200);
      }
      return records.map((r) => r.requestId);
    } finally {
      await stop();
    }
  }
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it("is a fresh UUID per request by default, never what a client sends, even behind trust proxy", async () => {
    const seen = await ids({}, "forged-id");
    expect(seen).toHaveLength(3);
    for (const id of seen) expect(id).toMatch(UUID);
    expect(new Set(seen).size).toBe(3);
  });

  it("is the app's own id with `requestId`", async () => {
    expect(await ids({ requestId: (req) => req.get("x-request-id") }, "proxy-1234")).toEqual([
      "proxy-1234",
      "proxy-1234",
      "proxy-1234",
    ]);
  });

  it("falls back to a UUID when the app's id is unusable, and says so when it throws", async () => {
    for (const bad of ["has space", "x".repeat(201), ""]) {
      for (const id of await ids({ requestId: (req) => req.get("x-request-id") }, bad))
        expect(id).toMatch(UUID);
    }
    const logger = recordingLogger();
    const thrown = await ids(
      {
        logger,
        requestId: () => {
          throw new TypeError("no id here");
        },
      },
      "x",
    );
    for (const id of thrown) expect(id).toMatch(UUID);
    expect(logger.errors).toContain("requestId threw TypeError; using a random id");
    expect(logger.errors.join("\n")).not.toContain("no id here");
  });
});

describe("the app's middleware around the key routes", () => {
  it("never hands the app's error handler the key server's failures: they are answered as on node:http", async () => {
    const seen = { notFound: [] as string[], errors: [] as unknown[] };
    const failing: LeaseStore = {
      create: () => Promise.reject(new Error("db down")),
      get: () => Promise.reject(new Error("db down")),
      renew: () => Promise.reject(new Error("db down")),
      release: () => Promise.reject(new Error("db down")),
    };
    const logger = recordingLogger();
    const app = appWith(
      { mount: "/keys", parsers: "json", trustProxy: false },
      {
        ...base,
        logger,
        leaseStore: failing,
        authenticate: (req) => {
          if (req.get("authorization") === "Bearer explode") throw new Error("secret token in here");
          return viewerFor(req.get("authorization"));
        },
      },
      seen,
    );
    const { url, stop } = await serve(app);
    try {
      const thrown = await fetch(`${url}/keys/movie-42`, { headers: { authorization: "Bearer explode" } });
      expect(thrown.status).toBe(500);
      expect(await thrown.json()).toEqual({ error: "Internal server error", code: "internal" });
      const down = await fetch(`${url}/keys/movie-42`, {
        headers: { authorization: TOKEN, "x-blindcast-lease": "0123456789abcdef0123" },
      });
      expect(down.status).toBe(503);
      expect(down.headers.get("retry-after")).toBe("1");
      expect(await down.json()).toEqual({
        error: "Lease store unavailable, try again shortly",
        code: "store_unavailable",
      });
      expect(seen).toEqual({ notFound: [], errors: [] });
      expect(logger.errors.join("\n")).not.toContain("secret token");
    } finally {
      await stop();
    }
  });

  it("keeps even its own failures from the app's error handler (an answer the app already began)", async () => {
    const errors: unknown[] = [];
    const app = express();
    // A middleware that sends the status line and headers early, then lets the request go on.
    app.use((_req, res, next) => {
      res.flushHeaders();
      next();
    });
    app.use("/keys", createExpressKeyServer(base));
    const onError: ErrorRequestHandler = (error, _req, res, _next) => {
      errors.push(error);
      res.end();
    };
    app.use(onError);
    const { port, stop } = await serve(app);
    try {
      // Headers cannot be sent twice: the connection is closed rather than the answer garbled.
      const response = await rawRequest(port, "GET", "/keys/movie-42", [A]);
      expect(response.body.length).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await stop();
    }
  });

  it("passes on errors that are the app's own, and refusals of its body parsers' own checks", async () => {
    const seen = { notFound: [] as string[], errors: [] as unknown[] };
    const appError = new Error("the app's own failure");
    const app = express();
    app.use((req, _res, next) => next(req.get("x-fail") ? appError : undefined));
    // A parser with a check of the app's own: its refusal is the app's to answer.
    app.use(
      express.json({
        verify: (_req, _res, buffer) => {
          if (buffer.includes("forbidden")) throw new Error("the app's verify refused it");
        },
      }),
    );
    app.use("/keys", createExpressKeyServer({ ...base, leaseStore: createMemoryLeaseStore() }));
    const onError: ErrorRequestHandler = (error, _req, res, _next) => {
      seen.errors.push(error);
      res.status(599).send("the app's error handler");
    };
    app.use(onError);
    const { url, stop } = await serve(app);
    try {
      const failed = await fetch(`${url}/keys/movie-42`, {
        headers: { authorization: TOKEN, "x-fail": "1" },
      });
      expect(failed.status).toBe(599);
      const verified = await fetch(`${url}/keys/leases`, {
        method: "POST",
        headers: { authorization: TOKEN, "content-type": "application/json" },
        body: '{"contentId":"movie-42","note":"forbidden"}',
      });
      expect(verified.status).toBe(599);
      expect(seen.errors).toHaveLength(2);
      expect(seen.errors[0]).toBe(appError);
      expect(seen.errors[1]).toMatchObject({ status: 403, type: "entity.verify.failed" });
    } finally {
      await stop();
    }
  });

  it("answers CORS from corsOrigins alone, whatever CORS headers the app's middleware set before", async () => {
    const app = express();
    app.use((_req, res, next) => {
      res.setHeader("access-control-allow-origin", "*");
      res.setHeader("access-control-allow-credentials", "true");
      res.setHeader("x-app-header", "kept");
      next();
    });
    app.use("/keys", createExpressKeyServer(base));
    const { url, stop } = await serve(app);
    try {
      const foreign = await fetch(`${url}/keys/movie-42`, {
        headers: { authorization: TOKEN, origin: "http://evil.localhost" },
      });
      expect(foreign.status).toBe(403);
      expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
      expect(foreign.headers.get("access-control-allow-credentials")).toBeNull();
      expect(foreign.headers.get("x-app-header")).toBe("kept");
      const allowed = await fetch(`${url}/keys/movie-42`, {
        headers: { authorization: TOKEN, origin: ORIGIN },
      });
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get("access-control-allow-origin")).toBe(ORIGIN);
      expect(allowed.headers.get("access-control-allow-credentials")).toBeNull();
    } finally {
      await stop();
    }
  });

  it("leaves the app its other paths: beside the mount, in nested routers, and at the root", async () => {
    const app = express();
    const api = express.Router();
    api.use("/v1/keys", createExpressKeyServer(base));
    app.use("/api", api);
    app.use("/media", createExpressKeyServer(base));
    app.use(createExpressKeyServer(base));
    app.get("/keys-status", (_req, res) => {
      res.send("the app's route beside /keys");
    });
    app.get("/app-route", (_req, res) => {
      res.send("the app's own route");
    });
    app.use((_req, res) => {
      res.status(404).send("the app's 404");
    });
    const { url, stop } = await serve(app);
    const key = async (path: string) => {
      const response = await fetch(`${url}${path}`, { headers: { authorization: TOKEN } });
      expect(response.status, path).toBe(200);
      return bytesToHex(new Uint8Array(await response.arrayBuffer()));
    };
    try {
      expect(await key("/api/v1/keys/movie-42/7")).toBe(vectorFor("movie-42", 7));
      expect(await key("/media/movie-42/7")).toBe(vectorFor("movie-42", 7));
      expect(await key("/keys/movie-42/7")).toBe(vectorFor("movie-42", 7));
      expect(await (await fetch(`${url}/keys-status`)).text()).toBe("the app's route beside /keys");
      expect(await (await fetch(`${url}/app-route`)).text()).toBe("the app's own route");
      const other = await fetch(`${url}/favicon.ico`);
      expect([other.status, await other.text()]).toEqual([404, "the app's 404"]);
      // Below a mount path, every path is the key server's: an unknown one is its own 404.
      const unknown = await fetch(`${url}/media/a/b/c`);
      expect([unknown.status, await unknown.json()]).toEqual([
        404,
        { error: "Not found", code: "not_found" },
      ]);
    } finally {
      await stop();
    }
  });

  it("drops a connection whose body runs past 1 MiB, as node:http does, when it reads the body itself", async () => {
    const reference = await nodeTarget();
    const target = await expressTarget({ mount: "/keys", parsers: "none", trustProxy: false });
    try {
      for (const t of [reference, target]) {
        const response = await rawRequest(
          t.port,
          "POST",
          "/keys/leases",
          [A, J],
          Buffer.alloc(2 * 1024 * 1024, 0x20),
        );
        expect(response.status, t.name).toBe(0);
      }
    } finally {
      await reference.close();
      await target.close();
    }
  });
});

describe("the default audit sink", () => {
  it("writes one JSON line per request to stdout, as it happens, with no key material", async () => {
    // A process of its own, as an app runs: the app serves three requests, then exits at once.
    const script = `
      import express from "express";
      import { createExpressKeyServer } from "@blindcast/keys/express";
      const app = express();
      app.use("/keys", createExpressKeyServer({
        masterKey: Buffer.from("${bytesToHex(masterKey)}", "hex"),
        salt: Buffer.from("${bytesToHex(salt)}", "hex"),
        corsOrigins: "*",
        logger: { warn() {}, error() {} },
      }));
      const server = app.listen(0, "127.0.0.1", async () => {
        const url = "http://127.0.0.1:" + server.address().port + "/keys/movie-42";
        for (const path of ["", "/7", "/x/y/z"]) await (await fetch(url + path)).arrayBuffer();
        process.exit(0);
      });`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    const records = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as AuditRecord);
    expect(records.map((r) => [r.route, r.status])).toEqual([
      ["content_key", 200],
      ["epoch_key", 200],
      ["unmatched", 404],
    ]);
    expect(stdout).not.toContain(bytesToHex(masterKey));
    expect(stdout).not.toContain(vectorFor("movie-42"));
  });
});

describe("configuration", () => {
  it("is checked when the app starts, as the other adapters check it", () => {
    expect(() => createExpressKeyServer({ ...base, masterKey: new Uint8Array(8) })).toThrow(
      KeyServerConfigError,
    );
    expect(() =>
      createExpressKeyServer({ ...base, requestId: "x-request-id" as unknown as () => string }),
    ).toThrow("requestId must be a function");
  });

  it("mounts as a pair of handlers, the second for the app's body parsers' refusals", () => {
    const pair = createExpressKeyServer(base);
    expect(pair).toHaveLength(2);
    expect(pair[0].length).toBe(3);
    expect(pair[1].length).toBe(4);
  });
});
