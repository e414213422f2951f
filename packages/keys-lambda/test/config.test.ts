import { KeyServerConfigError } from "@blindcast/keys";
import { createLambdaKeyServer, type LambdaKeyServerOptions } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { describe, expect, it } from "vitest";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

const valid = (): LambdaKeyServerOptions => ({
  masterKey,
  salt,
  corsOrigins: "https://app.example.com",
  authenticate: () => ({ ok: true, viewerId: "viewer-1" }),
  logger: recordingLogger(),
});

describe("configuration errors fail at construction", () => {
  it.each<[string, Partial<Record<keyof LambdaKeyServerOptions, unknown>>, RegExp]>([
    ["master key under 16 bytes", { masterKey: new Uint8Array(15) }, /masterKey must be at least 16 bytes/],
    ["missing master key", { masterKey: undefined }, /masterKey is required/],
    ["missing salt", { salt: undefined }, /salt is required/],
    ["salt under 16 bytes", { salt: new Uint8Array(8) }, /salt must be at least 16 bytes/],
    ["master key as a hex string", { masterKey: "00".repeat(32) }, /masterKey must be a Uint8Array/],
    ["empty corsOrigins", { corsOrigins: "" }, /corsOrigins is empty/],
    ["missing corsOrigins", { corsOrigins: undefined }, /corsOrigins is required/],
    ["lease TTL too short", { leaseTtlSeconds: 5 }, /leaseTtlSeconds must be an integer from 10 to 86400/],
    ["fractional lease TTL", { leaseTtlSeconds: 30.5 }, /leaseTtlSeconds/],
    ["limit without a store", { maxConcurrentLeases: 2 }, /needs a leaseStore/],
    ["limit of zero", { maxConcurrentLeases: 0, leaseStore: createMemoryLeaseStore() }, /positive integer/],
    ["authenticate not a function", { authenticate: "yes" }, /authenticate must be a function/],
    ["incomplete lease store", { leaseStore: { create() {} } }, /leaseStore must implement get/],
  ])("%s", (_, override, message) => {
    const options = { ...valid(), ...override } as LambdaKeyServerOptions;
    expect(() => createLambdaKeyServer(options)).toThrow(KeyServerConfigError);
    expect(() => createLambdaKeyServer(options)).toThrow(message);
  });

  it("never puts the master key in a configuration error", () => {
    const secret = new Uint8Array(15).fill(0xab);
    try {
      createLambdaKeyServer({ ...valid(), masterKey: secret });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).not.toContain("abab");
      expect(String(error)).not.toContain("171");
    }
  });
});

describe("warnings", () => {
  it("warns once, at construction, when there is no authenticate", async () => {
    const logger = recordingLogger();
    const handler = createLambdaKeyServer({ masterKey, salt, corsOrigins: "*", logger, audit: false });
    expect(logger.warnings).toEqual([
      "blindcast keys: no authenticate option, so keys are served to anyone who can reach this server",
    ]);
    expect(
      (await handler({ version: "2.0", rawPath: "/keys/a", requestContext: { http: { method: "GET" } } }))
        .statusCode,
    ).toBe(200);
    await handler({ version: "2.0", rawPath: "/keys/b", requestContext: { http: { method: "GET" } } });
    expect(logger.warnings).toHaveLength(1);
  });

  it("does not warn when authenticate is given", () => {
    const logger = recordingLogger();
    createLambdaKeyServer({ ...valid(), logger });
    expect(logger.warnings).toEqual([]);
  });
});
