import type { AuditRecord, PresignedUpload } from "@blindcast/keys";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { type NodeKeyServerOptions, type RunningKeyServer, startKeyServer } from "@blindcast/keys/node";
import { SignJWT } from "jose";
import { masterKey, salt } from "./fixtures.js";

export const PUBLISH_SECRET = "test-only-publish-secret-0123456789abcdef";
export const PUBLISHER_SCOPE = "blindcast:publish";

/** A bearer token for `sub`, with `claims` (a `scope` makes a publisher). */
export async function bearer(sub: string, claims: Record<string, unknown> = {}): Promise<string> {
  const token = await new SignJWT({ sub, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(PUBLISH_SECRET));
  return `Bearer ${token}`;
}

export const publisherToken = () => bearer("publisher-1", { scope: `openid ${PUBLISHER_SCOPE}` });
export const viewerToken = () => bearer("viewer-1", { scope: "openid profile" });

/** Any answer of the publisher routes, as the tests read it (fields absent where not given). */
export interface PublishAnswer {
  error: string;
  code: string;
  contentId: string;
  expiresAt: string;
  keys: { epoch: number | null; key: string }[];
  uploads: PresignedUpload[];
}

export interface PublishingServer {
  server: RunningKeyServer;
  url: string;
  audits: AuditRecord[];
  post(path: string, body: unknown, authorization?: string): Promise<{ status: number; body: PublishAnswer }>;
}

/** A real node:http key server with leases, JWT auth (publisher scope) and the given publish options. */
export async function startPublishingServer(
  overrides: Partial<NodeKeyServerOptions> = {},
): Promise<PublishingServer> {
  const audits: AuditRecord[] = [];
  const server = await startKeyServer({
    masterKey,
    salt,
    corsOrigins: "http://localhost:5173",
    hostname: "127.0.0.1",
    port: 0,
    leaseStore: createMemoryLeaseStore(),
    authenticate: createJwtAuthenticator({ secret: PUBLISH_SECRET, publisherScope: PUBLISHER_SCOPE }),
    audit: (record) => audits.push(record),
    logger: { warn() {}, error() {} },
    ...overrides,
  });
  const url = server.keysUrl.replace(/\/keys$/, "");
  return {
    server,
    url,
    audits,
    async post(path, body, authorization) {
      const response = await fetch(`${url}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(authorization ? { authorization } : {}),
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : {}) as PublishAnswer };
    },
  };
}
