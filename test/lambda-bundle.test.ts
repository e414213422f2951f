import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex } from "@blindcast/crypto";
import { SignJWT } from "jose";
import { afterAll, describe, expect, it } from "vitest";

const vectors = JSON.parse(
  readFileSync(new URL("./vectors/key-derivation-vectors.json", import.meta.url), "utf8"),
) as { masterKey: string; salt: string; contentId: string; epoch?: number; key: string }[];
const vector = vectors.find((v) => v.contentId === "movie-42" && v.epoch === 7)!;

describe("the deployable Lambda bundle (deploy/sam)", () => {
  const dir = mkdtempSync(join(tmpdir(), "blindcast-bundle-"));
  const outfile = join(dir, "handler.mjs");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("builds into one file that answers API Gateway events with the contract's keys", async () => {
    const root = new URL("..", import.meta.url).pathname;
    execFileSync(process.execPath, [
      `${root}scripts/build-lambda.mjs`,
      `${root}deploy/sam/handler.ts`,
      outfile,
    ]);
    expect(readFileSync(outfile).length).toBeGreaterThan(1000);

    const jwtSecret = "test-only-jwt-secret-0123456789abcdef";
    Object.assign(process.env, {
      MASTER_KEY: vector.masterKey,
      SALT: vector.salt,
      CORS_ORIGINS: "https://app.example.com",
      JWT_SECRET: jwtSecret,
    });
    const { handler } = (await import(outfile)) as {
      handler: (event: unknown) => Promise<{ statusCode: number; body: string; isBase64Encoded: boolean }>;
    };
    const event = (authorization?: string) => ({
      version: "2.0",
      rawPath: "/keys/movie-42/7",
      headers: authorization ? { authorization } : {},
      requestContext: { http: { method: "GET" }, stage: "$default" },
    });

    expect((await handler(event())).statusCode).toBe(401);
    expect((await handler(event("Bearer not.a.jwt"))).statusCode).toBe(401);

    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("viewer-1")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(jwtSecret));
    const result = await handler(event(`Bearer ${token}`));
    expect(result.statusCode).toBe(200);
    expect(result.isBase64Encoded).toBe(true);
    expect(bytesToHex(new Uint8Array(Buffer.from(result.body, "base64")))).toBe(vector.key);
  });
});
