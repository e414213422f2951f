import type { LeaseStore } from "@blindcast/keys";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";

export const KEY_SERVER = "https://keys.test/prod/keys";
export const MASTER_KEY = new Uint8Array(32).map((_, i) => i);
export const SALT = new Uint8Array(16).map((_, i) => 0xa0 + i);

export interface LoggedRequest {
  method: string;
  path: string;
  authorization: string | null;
  lease: string | null;
  keepalive: boolean;
  at: number;
  /** A POST's body, once read. */
  body?: string;
}

/**
 * msw stands in for the network; behind it answers the real key server handler (the Lambda
 * adapter, fed the same v2 events API Gateway would send). Tests override single routes to
 * inject faults.
 */
export function createKeyServerMock(
  options: {
    tokens?: Record<string, string>;
    leaseStore?: LeaseStore;
    maxConcurrentLeases?: number;
    leaseTtlSeconds?: number;
    leases?: boolean;
  } = {},
) {
  const tokens = options.tokens ?? { "token-1": "viewer-1" };
  const handler = createLambdaKeyServer({
    masterKey: MASTER_KEY,
    salt: SALT,
    corsOrigins: "*",
    authenticate: (event) => {
      const token = event.headers?.authorization?.split(" ")[1];
      const viewerId = token ? tokens[token] : undefined;
      return viewerId
        ? { ok: true, viewerId }
        : { ok: false, status: 401, reason: token ? "Invalid token" : "Missing token" };
    },
    ...(options.leases === false ? {} : { leaseStore: options.leaseStore ?? createMemoryLeaseStore() }),
    maxConcurrentLeases: options.leases === false ? undefined : options.maxConcurrentLeases,
    leaseTtlSeconds: options.leaseTtlSeconds ?? 30,
    audit: false,
    logger: { warn() {}, error() {} },
  });
  const log: LoggedRequest[] = [];
  const real = http.all(`${KEY_SERVER}/*`, async ({ request }) => {
    const url = new URL(request.url);
    const body = request.method === "GET" || request.method === "DELETE" ? "" : await request.text();
    const result = await handler({
      version: "2.0",
      rawPath: url.pathname,
      headers: Object.fromEntries(request.headers),
      requestContext: { http: { method: request.method }, stage: "prod" },
      ...(body ? { body } : {}),
    });
    const payload = result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body;
    return new HttpResponse(payload.length ? payload : null, {
      status: result.statusCode,
      headers: result.headers,
    });
  });
  const server = setupServer(real);
  server.events.on("request:start", ({ request }) => {
    const entry: LoggedRequest = {
      method: request.method,
      path: new URL(request.url).pathname.replace("/prod/keys", ""),
      authorization: request.headers.get("authorization"),
      lease: request.headers.get("x-blindcast-lease"),
      keepalive: request.keepalive,
      at: Date.now(),
    };
    log.push(entry);
    if (request.method === "POST") {
      void request
        .clone()
        .text()
        .then((body) => {
          entry.body = body;
        });
    }
  });
  return { server, log, http, HttpResponse };
}
