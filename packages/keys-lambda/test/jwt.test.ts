import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { bytesToHex } from "@blindcast/crypto";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { keyServerOptionsFromEnv } from "@blindcast/keys/node";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { jsonBody, keyBytes, v2Event } from "./support/events.js";
import { MASTER_KEY_HEX, masterKey, recordingLogger, SALT_HEX, salt, vectorFor } from "./support/fixtures.js";

const SECRET = "test-only-secret-0123456789abcdef0123456789";
const sign = (
  claims: Record<string, unknown>,
  options: { secret?: string; expiresIn?: string; issuer?: string } = {},
) => {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt();
  if (options.expiresIn) jwt.setExpirationTime(options.expiresIn);
  if (options.issuer) jwt.setIssuer(options.issuer);
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
};

const now = () => Math.floor(Date.now() / 1000);
/** A valid token for the issuer below, changed by `edit`, optionally with a header `typ`. */
const custom = (edit: (jwt: SignJWT) => SignJWT, typ?: string) =>
  edit(
    new SignJWT({ sub: "v" })
      .setProtectedHeader({ alg: "HS256", ...(typ ? { typ } : {}) })
      .setIssuedAt()
      .setIssuer("https://id.example")
      .setExpirationTime("5m"),
  ).sign(new TextEncoder().encode(SECRET));

describe("createJwtAuthenticator", () => {
  const authenticate = createJwtAuthenticator({ secret: SECRET, issuer: "https://id.example" });
  const call = (authorization?: string) => authenticate({ headers: authorization ? { authorization } : {} });

  it("accepts a valid token and names the viewer by sub", async () => {
    const token = await sign({ sub: "viewer-9" }, { expiresIn: "5m", issuer: "https://id.example" });
    expect(await call(`Bearer ${token}`)).toEqual({ ok: true, viewerId: "viewer-9" });
  });

  it.each<[string, () => Promise<string | undefined>, string]>([
    ["no header", async () => undefined, "Missing token"],
    ["not a bearer", async () => "Basic dXNlcjpwYXNz", "Malformed Authorization header"],
    ["garbage", async () => "Bearer not-a-jwt", "Invalid token"],
    [
      "wrong secret",
      async () =>
        `Bearer ${await sign({ sub: "v" }, { secret: "x".repeat(40), issuer: "https://id.example" })}`,
      "Invalid token",
    ],
    [
      "expired",
      async () => `Bearer ${await sign({ sub: "v" }, { expiresIn: "-1m", issuer: "https://id.example" })}`,
      "Token expired",
    ],
    [
      "wrong issuer",
      async () => `Bearer ${await sign({ sub: "v" }, { expiresIn: "5m", issuer: "https://evil.example" })}`,
      "Invalid token",
    ],
    [
      "no subject",
      async () => `Bearer ${await sign({}, { expiresIn: "5m", issuer: "https://id.example" })}`,
      "Token has no subject",
    ],
    [
      "no expiry (valid forever otherwise)",
      async () => `Bearer ${await sign({ sub: "v" }, { issuer: "https://id.example" })}`,
      "Token has no expiry",
    ],
    [
      "issued an hour in the future",
      async () => `Bearer ${await custom((t) => t.setIssuedAt(now() + 3600))}`,
      "Token issued in the future",
    ],
    [
      "not valid for ten more minutes",
      async () => `Bearer ${await custom((t) => t.setNotBefore(now() + 600))}`,
      "Token not yet valid",
    ],
    [
      "typed for another purpose (typ logout+jwt)",
      async () => `Bearer ${await custom((t) => t, "logout+jwt")}`,
      "Token type not accepted",
    ],
  ])("refuses %s with 401", async (_, header, reason) => {
    expect(await call(await header())).toEqual({ ok: false, status: 401, reason });
  });

  it("reads a Node or Express request's headers too, refusing Authorization given as a list", async () => {
    const token = await sign({ sub: "viewer-9" }, { expiresIn: "5m", issuer: "https://id.example" });
    const headers: IncomingHttpHeaders = { authorization: `Bearer ${token}`, "set-cookie": ["a=1"] };
    expect(await authenticate({ headers })).toEqual({ ok: true, viewerId: "viewer-9" });
    for (const values of [[`Bearer ${token}`], [`Bearer ${token}`, `Bearer ${token}`]]) {
      expect(await authenticate({ headers: { authorization: values } })).toEqual({
        ok: false,
        status: 401,
        reason: "Malformed Authorization header",
      });
    }
  });

  it("tolerates clocks 30 s apart by default (nbf a second ahead), and accepts typ JWT and at+jwt", async () => {
    for (const token of [
      await custom((t) => t.setNotBefore(now() + 1)),
      await custom((t) => t.setIssuedAt(now() + 5)),
      await custom((t) => t, "JWT"),
      await custom((t) => t, "at+jwt"),
    ]) {
      expect(await call(`Bearer ${token}`)).toEqual({ ok: true, viewerId: "v" });
    }
  });

  it("refuses tokens older than maxTokenAgeSeconds, and tokens without iat then", async () => {
    const aged = createJwtAuthenticator({ secret: SECRET, maxTokenAgeSeconds: 60 });
    const old = await custom((t) => t.setIssuedAt(now() - 3600));
    expect(await aged({ headers: { authorization: `Bearer ${old}` } })).toEqual({
      ok: false,
      status: 401,
      reason: "Token too old",
    });
    const fresh = await custom((t) => t);
    expect(await aged({ headers: { authorization: `Bearer ${fresh}` } })).toEqual({
      ok: true,
      viewerId: "v",
    });
  });

  it("refuses settings that would accept tokens forever or trust any clock", () => {
    expect(() => createJwtAuthenticator({ secret: SECRET, requireExpiration: false })).toThrow(
      /maxTokenAgeSeconds/,
    );
    expect(() => createJwtAuthenticator({ secret: SECRET, clockToleranceSeconds: 3600 })).toThrow(/0 to 300/);
    expect(() =>
      createJwtAuthenticator({ secret: SECRET, requireExpiration: false, maxTokenAgeSeconds: 300 }),
    ).not.toThrow();
  });

  it("refuses an alg=none token", async () => {
    const unsigned = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"v"}').toString("base64url")}.`;
    expect(await call(`Bearer ${unsigned}`)).toMatchObject({ ok: false, status: 401 });
  });

  it("refuses a short secret at construction", () => {
    expect(() => createJwtAuthenticator({ secret: "short" })).toThrow(/at least 32 bytes/);
  });

  it("plugs into the key server as documented", async () => {
    const handler = createLambdaKeyServer({
      masterKey,
      salt,
      corsOrigins: "*",
      audit: false,
      logger: recordingLogger(),
      authenticate: createJwtAuthenticator({ secret: SECRET }),
    });
    const refused = await handler(v2Event({ path: "/keys/demo" }));
    expect(refused.statusCode).toBe(401);
    expect(jsonBody(refused)).toEqual({ error: "Missing token" });
    const token = await sign({ sub: "v1" }, { expiresIn: "1m" });
    const ok = await handler(v2Event({ path: "/keys/demo", headers: { authorization: `Bearer ${token}` } }));
    expect(bytesToHex(keyBytes(ok))).toBe(vectorFor("demo"));
  });

  it("is what the CLI uses when JWT_SECRET is set", async () => {
    const { options, summary } = await keyServerOptionsFromEnv({
      MASTER_KEY: MASTER_KEY_HEX,
      SALT: SALT_HEX,
      CORS_ORIGINS: "*",
      JWT_SECRET: SECRET,
    });
    expect(summary).toContain("auth: bearer JWT (HS256, JWT_SECRET); the viewer is the token's sub");
    const token = await sign({ sub: "cli-viewer" }, { expiresIn: "5m" });
    expect(
      await options.authenticate?.(
        v2Event({ path: "/keys/a", headers: { authorization: `Bearer ${token}` } }),
      ),
    ).toEqual({ ok: true, viewerId: "cli-viewer" });
    await expect(
      keyServerOptionsFromEnv({
        MASTER_KEY: MASTER_KEY_HEX,
        SALT: SALT_HEX,
        CORS_ORIGINS: "*",
        JWT_SECRET: "short",
      }),
    ).rejects.toThrow(/JWT_SECRET must be at least 32 bytes/);
  });
});

describe("createJwtAuthenticator with an identity provider's JWKS", () => {
  const ISSUER = "https://idp.example";
  const AUDIENCE = "blindcast-player";
  let published: JWK[] = [];
  let fetches = 0;
  let jwksServer: Server;
  let jwksUrl = "";

  beforeAll(async () => {
    jwksServer = createServer((_, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));
  afterEach(() => vi.useRealTimers());

  async function providerKey(kid: string, alg: "RS256" | "ES256") {
    const pair = await generateKeyPair(alg);
    const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" };
    const sign = (claims: { iss?: string; aud?: string } = {}) =>
      new SignJWT({})
        .setProtectedHeader({ alg, kid, typ: "JWT" })
        .setSubject(`viewer-of-${kid}`)
        .setIssuer(claims.iss ?? ISSUER)
        .setAudience(claims.aud ?? AUDIENCE)
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(pair.privateKey);
    return { jwk, sign };
  }
  const check = (authenticate: ReturnType<typeof createJwtAuthenticator>, token: string) =>
    authenticate({ headers: { authorization: `Bearer ${token}` } });

  it("verifies RS256 and ES256 tokens, caches the keys, and picks up the provider's key rotation", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const a = await providerKey("key-a", "RS256");
    const b = await providerKey("key-b", "ES256");
    published = [a.jwk];
    fetches = 0;
    const authenticate = createJwtAuthenticator({ jwksUrl, issuer: ISSUER, audience: AUDIENCE });

    expect(await check(authenticate, await a.sign())).toEqual({ ok: true, viewerId: "viewer-of-key-a" });
    expect(await check(authenticate, await a.sign())).toEqual({ ok: true, viewerId: "viewer-of-key-a" });
    expect(fetches).toBe(1);

    // The provider rotates: key-b in, key-a out. Within the cooldown the cached set stands.
    published = [b.jwk];
    expect(await check(authenticate, await b.sign())).toMatchObject({ ok: false, status: 401 });
    expect(fetches).toBe(1);
    vi.setSystemTime(Date.now() + 31_000);
    expect(await check(authenticate, await b.sign())).toEqual({ ok: true, viewerId: "viewer-of-key-b" });
    expect(fetches).toBe(2);
    vi.setSystemTime(Date.now() + 31_000);
    expect(await check(authenticate, await a.sign())).toEqual({
      ok: false,
      status: 401,
      reason: "Invalid token",
    });
  });

  it("refuses another issuer's or audience's token, an HS256 token, and alg=none", async () => {
    const a = await providerKey("key-c", "RS256");
    published = [a.jwk];
    const authenticate = createJwtAuthenticator({ jwksUrl, issuer: ISSUER, audience: AUDIENCE });
    const hs256 = await new SignJWT({ sub: "v" })
      .setProtectedHeader({ alg: "HS256", kid: "key-c" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(SECRET));
    const none = `${Buffer.from('{"alg":"none","kid":"key-c"}').toString("base64url")}.${Buffer.from(
      JSON.stringify({ sub: "v", iss: ISSUER, aud: AUDIENCE, exp: 9e9 }),
    ).toString("base64url")}.`;
    for (const token of [
      await a.sign({ iss: "https://evil.example" }),
      await a.sign({ aud: "other-app" }),
      hs256,
      none,
    ]) {
      expect(await check(authenticate, token)).toMatchObject({ ok: false, status: 401 });
    }
  });

  it("answers 401, promptly, when the JWKS cannot be fetched", async () => {
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(dead.address() as AddressInfo).port}/jwks.json`;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const a = await providerKey("key-d", "RS256");
    const authenticate = createJwtAuthenticator({ jwksUrl: url, issuer: ISSUER, audience: AUDIENCE });
    expect(await check(authenticate, await a.sign())).toEqual({
      ok: false,
      status: 401,
      reason: "Invalid token",
    });
  });

  it("refuses settings that would accept tokens it should not", () => {
    expect(() => createJwtAuthenticator({ jwksUrl, issuer: ISSUER, audience: "" })).toThrow(
      /issuer and audience/,
    );
    expect(() =>
      createJwtAuthenticator({ jwksUrl: "http://idp.example/jwks.json", issuer: ISSUER, audience: AUDIENCE }),
    ).toThrow(/https/);
    expect(() =>
      createJwtAuthenticator({ jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ["RS256", "HS256"] }),
    ).toThrow(/asymmetric/);
  });
});
