// A real key server with publishing on (node:http, JWT auth with the publisher scope), its
// uploads presigned for the given S3 endpoint, and tokens for a publisher and a viewer.
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { startKeyServer } from "@blindcast/keys/node";
import { SignJWT } from "jose";

const SECRET = "test-only-upload-secret-0123456789abcdef";
const PUBLISHER_SCOPE = "blindcast:publish";

export interface Publisher {
  /** The key routes' base, `http://127.0.0.1:PORT/keys`, as the player is given it. */
  keysUrl: string;
  publisherToken: string;
  /** A valid token without the publisher scope. */
  viewerToken: string;
  close(): Promise<void>;
}

export interface PublisherStorage {
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** An HS256 token as the key server's JWT authenticator checks it (no `scope` claim unless given). */
export function hs256Token(
  secret: string,
  {
    scope,
    sub = "someone",
    expires = "10m",
  }: { scope?: string; sub?: string; expires?: string | number } = {},
): Promise<string> {
  return new SignJWT(scope === undefined ? {} : { scope })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(expires)
    .sign(new TextEncoder().encode(secret));
}

const token = (sub: string, scope: string) => hs256Token(SECRET, { sub, scope });

export async function startPublisher(storage: PublisherStorage): Promise<Publisher> {
  const server = await startKeyServer({
    masterKey: new Uint8Array(32).map((_, i) => i),
    salt: new Uint8Array(16).map((_, i) => 0xa0 + i),
    corsOrigins: "http://localhost:5173",
    hostname: "127.0.0.1",
    port: 0,
    leaseStore: createMemoryLeaseStore(),
    authenticate: createJwtAuthenticator({ secret: SECRET, publisherScope: PUBLISHER_SCOPE }),
    audit: false,
    logger: { warn() {}, error() {} },
    publish: {
      storage: {
        bucket: storage.bucket,
        region: storage.region,
        endpoint: storage.endpoint,
        forcePathStyle: true,
        credentials: storage.credentials,
      },
    },
  });
  return {
    keysUrl: server.keysUrl,
    publisherToken: await token("publisher-1", `openid ${PUBLISHER_SCOPE}`),
    viewerToken: await token("viewer-1", "openid profile"),
    close: () => server.close(),
  };
}
