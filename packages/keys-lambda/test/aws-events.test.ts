import { readFileSync } from "node:fs";
import { STATUS_CODES } from "node:http";
import { bytesToHex } from "@blindcast/crypto";
import type { AuditRecord } from "@blindcast/keys";
import {
  createApiGatewayAuthenticator,
  createLambdaKeyServer,
  type KeyServerEvent,
  type KeyServerResult,
  type LambdaKeyServerOptions,
} from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { describe, expect, it } from "vitest";
import {
  albEvent,
  functionUrlEvent,
  HTTP_API_AUTHORIZERS,
  httpApiEvent,
  type Request,
  restApiEvent,
  SIGV4_AUTHORIZATION,
} from "./support/aws-events.js";
import { headersOf } from "./support/events.js";
import { masterKey, recordingLogger, salt, vectorFor } from "./support/fixtures.js";

const ORIGIN = "https://app.example.com";

/**
 * What a REST API hands the client for a proxy integration's answer: the bytes only when the
 * answer says isBase64Encoded and the request's first Accept value matches one of the API's
 * binary media types; otherwise the body as text, base64 and all. The media types are the REST
 * template's own, so a template without them fails here as a deployment would.
 */
const restBinaryMediaTypes = (() => {
  const template = readFileSync(new URL("../../../deploy/sam/template-rest.yaml", import.meta.url), "utf8");
  const match = /BinaryMediaTypes:\s*\[([^\]]*)\]/.exec(template);
  if (!match?.[1]) throw new Error("deploy/sam/template-rest.yaml declares no BinaryMediaTypes list");
  // SAM and CloudFormation spell "/" as "~1" in media types (JSON-pointer escaping).
  return match[1].split(",").map((entry) =>
    entry
      .trim()
      .replace(/^["']|["']$/g, "")
      .replaceAll("~1", "/"),
  );
})();

function mediaTypeMatches(pattern: string, accept: string): boolean {
  if (pattern === "*/*") return true;
  if (pattern.endsWith("/*")) return accept.startsWith(pattern.slice(0, -1));
  return pattern === accept;
}

type Delivered = { status: number; headers: Record<string, string>; bytes: Uint8Array };

function overRestApi(result: KeyServerResult, accept: string | undefined): Delivered {
  const first = accept?.split(",")[0]?.split(";")[0]?.trim() ?? "";
  const binary = result.isBase64Encoded && restBinaryMediaTypes.some((type) => mediaTypeMatches(type, first));
  return {
    status: result.statusCode,
    headers: headersOf(result),
    bytes: binary
      ? new Uint8Array(Buffer.from(result.body, "base64"))
      : new TextEncoder().encode(result.body),
  };
}

/** HTTP APIs, Function URLs and ALBs always decode a base64-flagged answer. */
function decoded(result: KeyServerResult): Delivered {
  return {
    status: result.statusCode,
    headers: headersOf(result),
    bytes: result.isBase64Encoded
      ? new Uint8Array(Buffer.from(result.body, "base64"))
      : new TextEncoder().encode(result.body),
  };
}

interface Source {
  name: string;
  event(request: Request): KeyServerEvent;
  deliver(result: KeyServerResult, request: Request): Delivered;
  /** False where the source keeps only one of repeated values (an ALB without multi-value headers). */
  seesRepeats: boolean;
  /** Asserts the answer has the shape this source expects. */
  shape(result: KeyServerResult): void;
}

const apiShape = (result: KeyServerResult) => {
  expect(result).not.toHaveProperty("statusDescription");
  expect(result).toHaveProperty("headers");
};
const albShape = (multiValue: boolean) => (result: KeyServerResult) => {
  expect(result).toHaveProperty(
    "statusDescription",
    expect.stringMatching(new RegExp(`^${result.statusCode} `)),
  );
  expect(result).toHaveProperty(multiValue ? "multiValueHeaders" : "headers");
  expect(result).not.toHaveProperty(multiValue ? "headers" : "multiValueHeaders");
};

const httpApi = (name: string, mount: Parameters<typeof httpApiEvent>[1]): Source => ({
  name: `HTTP API, ${name}`,
  event: (request) => httpApiEvent(request, mount),
  deliver: decoded,
  seesRepeats: true,
  shape: apiShape,
});
const restApi = (name: string, mount: Parameters<typeof restApiEvent>[1]): Source => ({
  name: `REST API, ${name}`,
  // The REST template's `*/*` binary media type makes API Gateway base64-encode request bodies too.
  event: (request) => restApiEvent(request, mount, { binary: true }),
  deliver: (result, request) => overRestApi(result, request.headers?.Accept ?? "*/*"),
  seesRepeats: true,
  shape: apiShape,
});

const SOURCES: Source[] = [
  httpApi("$default stage", {}),
  httpApi("stage prod", { stage: "prod" }),
  httpApi("stage named keys", { stage: "keys" }),
  httpApi("custom domain, base path media", { basePath: "media" }),
  httpApi("custom domain, base path keys", { basePath: "keys" }),
  httpApi("custom domain, base path keys, route /{proxy+}", { basePath: "keys", route: "ANY /{proxy+}" }),
  httpApi("custom domain, base path media, $default route", { basePath: "media", route: "$default" }),
  httpApi("stage prod, $default route", { stage: "prod", route: "$default" }),
  {
    name: "Function URL",
    event: (request) => functionUrlEvent(request),
    deliver: decoded,
    seesRepeats: true,
    shape: apiShape,
  },
  restApi("stage prod", { stage: "prod" }),
  restApi("stage named keys", { stage: "keys" }),
  restApi("custom domain, base path media", { basePath: "media" }),
  restApi("custom domain, base path keys", { basePath: "keys" }),
  restApi("custom domain, base path keys, resource /keys/{proxy+}", {
    basePath: "keys",
    route: "ANY /keys/{proxy+}",
  }),
  {
    name: "ALB, single-value headers",
    event: (request) => albEvent(request, false),
    deliver: decoded,
    seesRepeats: false,
    shape: albShape(false),
  },
  {
    name: "ALB, multi-value headers",
    event: (request) => albEvent(request, true),
    deliver: decoded,
    seesRepeats: true,
    shape: albShape(true),
  },
];

function server(extra: Partial<LambdaKeyServerOptions> = {}) {
  return createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: ORIGIN,
    authenticate: () => ({ ok: true, viewerId: "viewer-1" }),
    leaseStore: createMemoryLeaseStore(),
    audit: false,
    logger: recordingLogger(),
    ...extra,
  });
}

/** Sends a request the way `source` delivers it, checking the answer's shape on the way back. */
async function sendVia(source: Source, handler: ReturnType<typeof server>, request: Request) {
  const result = await handler(source.event(request));
  source.shape(result);
  return source.deliver(result, request);
}

describe.each(SOURCES)("$name", (source) => {
  const send = (handler: ReturnType<typeof server>, request: Request) => sendVia(source, handler, request);

  it("creates a lease with the first key, then serves keys with it, to a SigV4-signed caller", async () => {
    const handler = server();
    const headers = { Origin: ORIGIN, Authorization: SIGV4_AUTHORIZATION };
    const created = await send(handler, {
      method: "POST",
      path: "/keys/leases",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ contentId: "movie-42", keys: [7] }),
    });
    expect(created.status).toBe(201);
    expect(created.headers["access-control-allow-origin"]).toBe(ORIGIN);
    const lease = JSON.parse(new TextDecoder().decode(created.bytes)) as {
      leaseId: string;
      keys: { epoch: number; key: string }[];
    };
    expect(lease.keys).toEqual([
      { epoch: 7, key: Buffer.from(vectorFor("movie-42", 7), "hex").toString("base64") },
    ]);

    const withLease = { ...headers, "X-Blindcast-Lease": lease.leaseId };
    const epochKey = await send(handler, { path: "/keys/movie-42/7", headers: withLease });
    expect(epochKey.status).toBe(200);
    expect(epochKey.headers["content-type"]).toBe("application/octet-stream");
    expect(epochKey.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(bytesToHex(epochKey.bytes)).toBe(vectorFor("movie-42", 7));
    const contentKey = await send(handler, { path: "/keys/movie-42", headers: withLease });
    expect(bytesToHex(contentKey.bytes)).toBe(vectorFor("movie-42"));
    // The player's route: any keys of the title through one URL, as JSON.
    const titleKeys = await send(handler, {
      method: "POST",
      path: "/keys/movie-42/keys",
      headers: { ...withLease, "Content-Type": "application/json" },
      body: JSON.stringify({ keys: [1, "content"] }),
    });
    expect(titleKeys.status).toBe(200);
    expect(titleKeys.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(JSON.parse(new TextDecoder().decode(titleKeys.bytes))).toEqual({
      contentId: "movie-42",
      keys: [
        { epoch: 1, key: Buffer.from(vectorFor("movie-42", 1), "hex").toString("base64") },
        { epoch: null, key: Buffer.from(vectorFor("movie-42"), "hex").toString("base64") },
      ],
    });

    const renewed = await send(handler, {
      method: "POST",
      path: "/keys/leases/renew",
      headers: { ...withLease, "Content-Type": "application/json" },
      body: JSON.stringify({ leaseId: lease.leaseId }),
    });
    expect(renewed.status).toBe(200);
    const released = await send(handler, {
      method: "DELETE",
      path: `/keys/leases/${lease.leaseId}`,
      headers,
    });
    expect(released.status).toBe(204);
    const after = await send(handler, { path: "/keys/movie-42/7", headers: withLease });
    expect(after.status).toBe(403);
  });

  it("answers a preflight and refuses a disallowed origin in its own shape", async () => {
    const handler = server();
    const preflight = await send(handler, {
      method: "OPTIONS",
      path: "/keys/movie-42/7",
      headers: { Origin: ORIGIN, "Access-Control-Request-Method": "GET" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe(ORIGIN);
    const titlePreflight = await send(handler, {
      method: "OPTIONS",
      path: "/keys/movie-42/keys",
      headers: { Origin: ORIGIN, "Access-Control-Request-Method": "POST" },
    });
    expect(titlePreflight.status).toBe(204);
    expect(titlePreflight.headers["access-control-allow-methods"]).toBe("POST, GET, OPTIONS");
    expect(titlePreflight.headers["access-control-max-age"]).toBe("7200");
    const refused = await send(handler, {
      path: "/keys/movie-42/7",
      headers: { Origin: "https://evil.example" },
    });
    expect(refused.status).toBe(403);
    expect(refused.headers["access-control-allow-origin"]).toBeUndefined();
  });
});

// An ALB without multi-value headers passes only the last of repeated values: nothing to refuse.
describe.each(SOURCES.filter((source) => source.seesRepeats))("$name, repeated headers", (source) => {
  const send = (handler: ReturnType<typeof server>, request: Request) => sendVia(source, handler, request);

  it("refuses a repeated Origin or lease header with 400", async () => {
    const handler = server();
    for (const [name, values] of [
      ["Origin", [ORIGIN, ORIGIN]],
      ["X-Blindcast-Lease", ["a", "b"]],
    ] as const) {
      const refused = await send(handler, { path: "/keys/movie-42/7", repeated: { [name]: [...values] } });
      expect(refused.status).toBe(400);
      expect(JSON.parse(new TextDecoder().decode(refused.bytes)).error).toBe(
        `Header ${name.toLowerCase()} must appear once`,
      );
    }
  });
});

describe("an ALB's statusDescription", () => {
  it("names each status with node:http's phrase, and any other status by its class", async () => {
    for (const [status, expected] of [
      [200, `200 ${STATUS_CODES[200]}`],
      [400, `400 ${STATUS_CODES[400]}`],
      [401, `401 ${STATUS_CODES[401]}`],
      [403, `403 ${STATUS_CODES[403]}`],
      [429, `429 ${STATUS_CODES[429]}`],
      [503, `503 ${STATUS_CODES[503]}`],
      [418, "418 Client Error"],
      [599, "599 Server Error"],
    ] as const) {
      const handler = server({
        leaseStore: undefined,
        authenticate: () =>
          status === 200 ? { ok: true, viewerId: "viewer-1" } : { ok: false, status, reason: "refused" },
      });
      const result = await handler(albEvent({ path: "/keys/movie-42/7" }, false));
      expect(result.statusCode).toBe(status);
      expect(result).toHaveProperty("statusDescription", expected);
    }
  });
});

describe("a REST API without binary media types", () => {
  it("hands the player base64 text instead of the key (why the REST template sets */*)", async () => {
    const result = await server({ leaseStore: undefined })(restApiEvent({ path: "/keys/movie-42/7" }, {}));
    const text = new TextDecoder().decode(overRestApiWithout(result));
    expect(text).toBe(Buffer.from(vectorFor("movie-42", 7), "hex").toString("base64"));
    expect(restBinaryMediaTypes).toContain("*/*");
    expect(bytesToHex(overRestApi(result, "*/*").bytes)).toBe(vectorFor("movie-42", 7));
  });
});

function overRestApiWithout(result: KeyServerResult): Uint8Array {
  return new TextEncoder().encode(result.body);
}

describe("createApiGatewayAuthenticator: the viewer named by the authorizer in front", () => {
  const cases: [string, KeyServerEvent, string | undefined][] = [
    [
      "HTTP API IAM (SigV4, Cognito identity pool)",
      httpApiEvent(keyRequest(), {}, HTTP_API_AUTHORIZERS.iam),
      "us-east-1:3f291106-8703-466b-8f2b-3ecee1ca56ce",
    ],
    ["HTTP API JWT authorizer", httpApiEvent(keyRequest(), {}, HTTP_API_AUTHORIZERS.jwt), "viewer-jwt"],
    [
      "HTTP API Lambda authorizer",
      httpApiEvent(keyRequest(), {}, HTTP_API_AUTHORIZERS.lambda),
      "viewer-lambda",
    ],
    [
      "Function URL with IAM auth",
      functionUrlEvent(keyRequest(), true),
      "arn:aws:iam::111122223333:user/example-user",
    ],
    [
      "REST Cognito user pool authorizer",
      restApiEvent(
        keyRequest(),
        {},
        { authorizer: { claims: { sub: "viewer-cognito", email: "a@example.com" } } },
      ),
      "viewer-cognito",
    ],
    [
      "REST Lambda authorizer (sample's principalId)",
      restApiEvent(
        keyRequest(),
        {},
        { authorizer: { principalId: "admin", clientId: 1, clientName: "Exata" } },
      ),
      "admin",
    ],
    [
      "REST IAM authorization",
      restApiEvent(keyRequest(), {}, { identity: { userArn: "arn:aws:iam::12345678912:user/viewer" } }),
      "arn:aws:iam::12345678912:user/viewer",
    ],
    ["HTTP API with no authorizer", httpApiEvent(keyRequest()), undefined],
    ["REST API with no authorizer", restApiEvent(keyRequest()), undefined],
    ["ALB (no authorizer exists)", albEvent(keyRequest(), true), undefined],
    ["Function URL without auth", functionUrlEvent(keyRequest()), undefined],
  ];

  it.each(cases)("%s", async (_name, event, viewer) => {
    const records: AuditRecord[] = [];
    const handler = server({
      authenticate: createApiGatewayAuthenticator(),
      leaseStore: undefined,
      audit: (record) => records.push(record),
    });
    const result = await handler(event);
    if (viewer === undefined) {
      expect(result.statusCode).toBe(401);
      expect(JSON.parse(result.body).error).toBe("No identity from an API Gateway authorizer");
    } else {
      expect(result.statusCode).toBe(200);
      expect(bytesToHex(decoded(result).bytes)).toBe(vectorFor("movie-42", 7));
      expect(records[0]?.viewerId).toBe(viewer);
    }
  });

  it("reads the claim and context key it is told to", async () => {
    const handler = server({
      authenticate: createApiGatewayAuthenticator({ claim: "claim1", contextKey: "key" }),
      leaseStore: undefined,
      audit: false,
    });
    expect((await handler(httpApiEvent(keyRequest(), {}, HTTP_API_AUTHORIZERS.jwt))).statusCode).toBe(200);
    expect((await handler(httpApiEvent(keyRequest(), {}, HTTP_API_AUTHORIZERS.lambda))).statusCode).toBe(200);
  });

  it("never trusts identity a client can send (headers, body, query)", async () => {
    const handler = server({
      authenticate: createApiGatewayAuthenticator(),
      leaseStore: undefined,
      audit: false,
    });
    const forged = httpApiEvent({
      path: "/keys/movie-42/7",
      headers: { "x-amzn-oidc-identity": "viewer-1", authorization: "Bearer x", "x-viewer-id": "viewer-1" },
    });
    expect((await handler(forged)).statusCode).toBe(401);
  });
});

function keyRequest(): Request {
  return { path: "/keys/movie-42/7", headers: { Authorization: SIGV4_AUTHORIZATION } };
}
