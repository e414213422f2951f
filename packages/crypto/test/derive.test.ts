import { hkdfSync } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  BlindcastCryptoError,
  bytesToHex,
  createHkdfSha256,
  createKeyDeriver,
  deriveContentKey,
  deriveEpochKey,
  hexToBytes,
  hkdfSha256,
  MAX_HKDF_SHA256_BYTES,
} from "@blindcast/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

interface Vector {
  masterKey: string;
  salt: string;
  contentId: string;
  epoch?: number;
  key: string;
}

// The contract's vectors (docs/key-derivation.md), kept in the repository with the tests.
const vectors: Vector[] = JSON.parse(
  readFileSync(new URL("../../../test/vectors/key-derivation-vectors.json", import.meta.url), "utf8"),
);

describe("key derivation contract v1", () => {
  it("has vectors to check", () => {
    expect(vectors.length).toBeGreaterThanOrEqual(10);
    expect(vectors.some((v) => v.epoch === undefined)).toBe(true);
    expect(vectors.some((v) => v.epoch !== undefined)).toBe(true);
  });

  for (const [i, v] of vectors.entries()) {
    const what = v.epoch === undefined ? "content key" : `epoch ${v.epoch} key`;
    it(`vector ${i}: ${what} of "${v.contentId}"`, async () => {
      const masterKey = hexToBytes(v.masterKey);
      const salt = hexToBytes(v.salt);
      const key =
        v.epoch === undefined
          ? await deriveContentKey(masterKey, salt, v.contentId)
          : await deriveEpochKey(masterKey, salt, v.contentId, v.epoch);
      expect(bytesToHex(key)).toBe(v.key);
      // The long-lived deriver must agree with the one-shot functions.
      const deriver = createKeyDeriver(masterKey, salt);
      const again =
        v.epoch === undefined
          ? await deriver.contentKey(v.contentId)
          : await deriver.epochKey(v.contentId, v.epoch);
      expect(bytesToHex(again)).toBe(v.key);
    });
  }

  it("matches RFC 5869 test case 1", async () => {
    const okm = await hkdfSha256(
      hexToBytes("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
      hexToBytes("000102030405060708090a0b0c"),
      hexToBytes("f0f1f2f3f4f5f6f7f8f9"),
      42,
    );
    expect(bytesToHex(okm)).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });

  it("agrees with node:crypto hkdfSync for arbitrary valid inputs", async () => {
    const contentId = fc.stringMatching(/^[A-Za-z0-9._~-]{1,128}$/).filter((s) => s !== "." && s !== "..");
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.uint8Array({ minLength: 16, maxLength: 32 }),
        contentId,
        fc.option(fc.integer({ min: 0, max: 4294967295 }), { nil: undefined }),
        async (masterKey, salt, id, epoch) => {
          const info =
            epoch === undefined ? `blindcast/v1/content/${id}` : `blindcast/v1/epoch/${id}/${epoch}`;
          const expected = new Uint8Array(hkdfSync("sha256", masterKey, salt, info, 16));
          const actual =
            epoch === undefined
              ? await deriveContentKey(masterKey, salt, id)
              : await deriveEpochKey(masterKey, salt, id, epoch);
          expect(bytesToHex(actual)).toBe(bytesToHex(expected));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("the deriver (extract once, one HMAC per key) agrees with hkdfSync for arbitrary valid inputs", async () => {
    const contentId = fc.stringMatching(/^[A-Za-z0-9._~-]{1,128}$/).filter((s) => s !== "." && s !== "..");
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 96 }),
        fc.uint8Array({ minLength: 16, maxLength: 96 }),
        fc.array(
          fc.tuple(contentId, fc.option(fc.integer({ min: 0, max: 4294967295 }), { nil: undefined })),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        async (masterKey, salt, requests) => {
          const deriver = createKeyDeriver(masterKey, salt);
          // Concurrent first calls share the one extract step.
          const keys = await Promise.all(
            requests.map(([id, epoch]) =>
              epoch === undefined ? deriver.contentKey(id) : deriver.epochKey(id, epoch),
            ),
          );
          for (const [i, [id, epoch]] of requests.entries()) {
            const info =
              epoch === undefined ? `blindcast/v1/content/${id}` : `blindcast/v1/epoch/${id}/${epoch}`;
            const expected = new Uint8Array(hkdfSync("sha256", masterKey, salt, info, 16));
            expect(bytesToHex(keys[i] ?? new Uint8Array())).toBe(bytesToHex(expected));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("gives different keys for content and each epoch", async () => {
    const deriver = createKeyDeriver(new Uint8Array(32).fill(7), new Uint8Array(16).fill(9));
    const keys = await Promise.all([
      deriver.contentKey("a"),
      deriver.epochKey("a", 0),
      deriver.epochKey("a", 1),
      deriver.contentKey("b"),
    ]);
    expect(new Set(keys.map(bytesToHex)).size).toBe(4);
  });

  it("is not affected by later changes to the caller's master key buffer", async () => {
    const master = new Uint8Array(32).fill(1);
    const salt = new Uint8Array(16).fill(2);
    const deriver = createKeyDeriver(master, salt);
    const before = bytesToHex(await deriver.contentKey("x"));
    master.fill(0);
    salt.fill(0);
    expect(bytesToHex(await deriver.contentKey("x"))).toBe(before);
  });
});

// RFC 5869 appendix A, the SHA-256 cases: createHkdfSha256 (what createKeyDeriver is built on)
// against the RFC's own outputs, multi-block and empty salt included.
describe("createHkdfSha256 on RFC 5869's test cases", () => {
  const hexRange = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => (from + i).toString(16).padStart(2, "0")).join("");
  const cases = [
    {
      name: "test case 1 (basic)",
      ikm: "0b".repeat(22),
      salt: "000102030405060708090a0b0c",
      info: "f0f1f2f3f4f5f6f7f8f9",
      okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    },
    {
      name: "test case 2 (longer inputs, three blocks)",
      ikm: hexRange(0x00, 0x4f),
      salt: hexRange(0x60, 0xaf),
      info: hexRange(0xb0, 0xff),
      okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
    },
    {
      name: "test case 3 (empty salt and info)",
      ikm: "0b".repeat(22),
      salt: "",
      info: "",
      okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const hkdf = createHkdfSha256(hexToBytes(c.ikm), hexToBytes(c.salt));
      const length = c.okm.length / 2;
      expect(bytesToHex(await hkdf.expand(hexToBytes(c.info), length))).toBe(c.okm);
      // Any prefix length gives the prefix: a 16-byte key is the first half of the first block.
      for (const prefix of [1, 16, 32, 33]) {
        expect(bytesToHex(await hkdf.expand(hexToBytes(c.info), prefix))).toBe(c.okm.slice(0, prefix * 2));
      }
    });
  }

  it("answers the longest output RFC 5869 allows, and matches hkdfSync on it", async () => {
    const ikm = new Uint8Array(32).fill(3);
    const salt = new Uint8Array(16).fill(4);
    const info = new Uint8Array([1, 2, 3]);
    const okm = await createHkdfSha256(ikm, salt).expand(info, MAX_HKDF_SHA256_BYTES);
    expect(bytesToHex(okm)).toBe(
      bytesToHex(new Uint8Array(hkdfSync("sha256", ikm, salt, info, MAX_HKDF_SHA256_BYTES))),
    );
  });

  it.each([0, -1, 1.5, MAX_HKDF_SHA256_BYTES + 1, Number.NaN])(
    "refuses an output length of %s",
    async (length) => {
      const hkdf = createHkdfSha256(new Uint8Array(16), new Uint8Array(16));
      await expect(hkdf.expand(new Uint8Array(0), length)).rejects.toMatchObject({ code: "INVALID_LENGTH" });
    },
  );
});

describe("derivation input checks", () => {
  const master = new Uint8Array(32);
  const salt = new Uint8Array(16);

  it.each([
    ["master key of 15 bytes", new Uint8Array(15), salt, "MASTER_KEY_TOO_SHORT"],
    ["salt of 15 bytes", master, new Uint8Array(15), "SALT_TOO_SHORT"],
    ["missing salt", master, undefined, "SALT_TOO_SHORT"],
  ])("refuses a %s", (_, m, s, code) => {
    expect(() => createKeyDeriver(m as Uint8Array, s as Uint8Array)).toThrow(
      expect.objectContaining({ code }),
    );
  });

  it.each(["", ".", "..", "a/b", "a:b", "a b", "caf\u00e9", "%2F", "x".repeat(129)])(
    "refuses contentId %j",
    async (id) => {
      await expect(deriveContentKey(master, salt, id)).rejects.toMatchObject({
        code: "INVALID_CONTENT_ID",
      });
      await expect(deriveEpochKey(master, salt, id, 0)).rejects.toBeInstanceOf(BlindcastCryptoError);
    },
  );

  it("accepts the longest contentId", async () => {
    await expect(deriveContentKey(master, salt, "x".repeat(128))).resolves.toHaveLength(16);
  });

  it.each([-1, 1.5, 4294967296, Number.NaN, Number.POSITIVE_INFINITY])("refuses epoch %s", async (epoch) => {
    await expect(deriveEpochKey(master, salt, "a", epoch)).rejects.toMatchObject({
      code: "INVALID_EPOCH",
    });
  });
});
