import { hkdfSync } from "node:crypto";
import { bytesToHex } from "@blindcast/crypto";
import { KeyServerConfigError } from "@blindcast/keys";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyBytes, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

const expected = (contentId: string, epoch?: number) =>
  bytesToHex(
    new Uint8Array(
      hkdfSync(
        "sha256",
        masterKey,
        salt,
        epoch === undefined
          ? `blindcast/v1/content/${contentId}`
          : `blindcast/v1/epoch/${contentId}/${epoch}`,
        16,
      ),
    ),
  );

describe("the derived-key cache", () => {
  it.each([0, 1, 3, 10_000])(
    "with keyCacheSize %i, every answer is the contract's key",
    async (keyCacheSize) => {
      const handler = createLambdaKeyServer({
        masterKey,
        salt,
        corsOrigins: "*",
        keyCacheSize,
        audit: false,
        logger: recordingLogger(),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.tuple(
              fc.constantFrom("a", "b", "movie-42"),
              fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
            ),
            {
              minLength: 1,
              maxLength: 30,
            },
          ),
          async (requests) => {
            for (const [contentId, epoch] of requests) {
              const path = epoch === undefined ? `/keys/${contentId}` : `/keys/${contentId}/${epoch}`;
              expect(bytesToHex(keyBytes(await handler(v2Event({ path }))))).toBe(expected(contentId, epoch));
            }
          },
        ),
        { numRuns: 50 },
      );
    },
  );

  it.each([-1, 1.5, Number.NaN])("refuses keyCacheSize %s", (keyCacheSize) => {
    expect(() =>
      createLambdaKeyServer({ masterKey, salt, corsOrigins: "*", keyCacheSize, logger: recordingLogger() }),
    ).toThrow(KeyServerConfigError);
  });
});
