import { hkdfSync } from "node:crypto";
import { bytesToHex, hexToBytes } from "@blindcast/crypto";
import { createKeyServer } from "@blindcast/keys";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
// The server's node:crypto HKDF primitives: RFC 5869's own test cases use salts and inputs no
// server configuration accepts, so they are checked here, below the public API.
import { hkdfExpandBlock, hkdfExtract } from "../src/node-runtime/deriver.js";
import { keyBytes, v2Event } from "./support/events.js";
import { recordingLogger, vectors } from "./support/fixtures.js";

// The server derives with HKDF's extract step done once per server and one HMAC per key; these
// prove that equals HKDF-SHA-256 as the contract defines it.

function keyServer(masterKey: Uint8Array, salt: Uint8Array, keyCacheSize: number) {
  return createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    keyCacheSize,
    audit: false,
    logger: recordingLogger(),
  });
}

async function served(
  handler: ReturnType<typeof keyServer>,
  contentId: string,
  epoch?: number,
): Promise<string> {
  const path = epoch === undefined ? `/keys/${contentId}` : `/keys/${contentId}/${epoch}`;
  return bytesToHex(keyBytes(await handler(v2Event({ path }))));
}

describe("the node:crypto key server's derivation", () => {
  it("covers both master keys of the contract's vectors", () => {
    expect(new Set(vectors.map((v) => `${v.masterKey}/${v.salt}`)).size).toBeGreaterThanOrEqual(2);
  });

  for (const keyCacheSize of [0, 100]) {
    it(`answers every contract vector (keyCacheSize ${keyCacheSize}), twice`, async () => {
      const servers = new Map<string, ReturnType<typeof keyServer>>();
      for (const v of vectors) {
        const id = `${v.masterKey}/${v.salt}`;
        const handler =
          servers.get(id) ?? keyServer(hexToBytes(v.masterKey), hexToBytes(v.salt), keyCacheSize);
        servers.set(id, handler);
        // Twice: the second answer comes from the cache when there is one, and must not differ.
        expect(await served(handler, v.contentId, v.epoch)).toBe(v.key);
        expect(await served(handler, v.contentId, v.epoch)).toBe(v.key);
      }
    });
  }

  it("agrees with hkdfSync for arbitrary master keys, salts, contentIds and epochs", async () => {
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
          // One server per master key and salt: the extract step is done once and reused.
          const handler = keyServer(masterKey, salt, 0);
          for (const [id, epoch] of requests) {
            const info =
              epoch === undefined ? `blindcast/v1/content/${id}` : `blindcast/v1/epoch/${id}/${epoch}`;
            const expected = Buffer.from(hkdfSync("sha256", masterKey, salt, info, 16)).toString("hex");
            expect(await served(handler, id, epoch)).toBe(expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("the transport-free core's own derivation (WebCrypto, for runtimes without node:crypto)", () => {
  it("answers every contract vector", async () => {
    for (const v of vectors) {
      const handler = createKeyServer<undefined>({
        masterKey: hexToBytes(v.masterKey),
        salt: hexToBytes(v.salt),
        corsOrigins: "*",
        keyCacheSize: 0,
        audit: false,
        logger: recordingLogger(),
      });
      const path = v.epoch === undefined ? `/keys/${v.contentId}` : `/keys/${v.contentId}/${v.epoch}`;
      const response = await handler({ method: "GET", path, headers: {}, event: undefined });
      expect(response.statusCode).toBe(200);
      expect(bytesToHex(response.body as Uint8Array)).toBe(v.key);
    }
  });
});

// RFC 5869 appendix A, SHA-256 cases. One block is 32 bytes: the server's expand yields the
// OKM's first block, which is all of the OKM for any length up to 32 (a key is 16).
const RFC_5869 = [
  {
    name: "test case 1 (basic)",
    ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
    salt: "000102030405060708090a0b0c",
    info: "f0f1f2f3f4f5f6f7f8f9",
    prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
    okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  },
  {
    name: "test case 2 (longer inputs)",
    ikm: hexRange(0x00, 0x4f),
    salt: hexRange(0x60, 0xaf),
    info: hexRange(0xb0, 0xff),
    prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
    okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
  },
  {
    name: "test case 3 (empty salt and info)",
    ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
    salt: "",
    info: "",
    prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
    okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
  },
];

function hexRange(from: number, to: number): string {
  let hex = "";
  for (let byte = from; byte <= to; byte++) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

describe("node:crypto HKDF, extract once and expand per key, on RFC 5869's test cases", () => {
  for (const c of RFC_5869) {
    it(c.name, () => {
      const prk = hkdfExtract(hexToBytes(c.salt), hexToBytes(c.ikm));
      expect(bytesToHex(new Uint8Array(prk.export()))).toBe(c.prk);
      for (const length of [16, 32]) {
        expect(bytesToHex(hkdfExpandBlock(prk, hexToBytes(c.info), length))).toBe(c.okm.slice(0, length * 2));
      }
    });
  }

  it("takes a string info as UTF-8, as the contract does", () => {
    const prk = hkdfExtract(new Uint8Array(16).fill(2), new Uint8Array(32).fill(1));
    const info = "blindcast/v1/epoch/movie-42/7";
    expect(bytesToHex(hkdfExpandBlock(prk, info, 16))).toBe(
      bytesToHex(hkdfExpandBlock(prk, new TextEncoder().encode(info), 16)),
    );
  });

  it("answers exactly the bytes asked for, in a buffer of their own", () => {
    const prk = hkdfExtract(new Uint8Array(16), new Uint8Array(32));
    const key = hkdfExpandBlock(prk, "x", 16);
    expect(key.byteLength).toBe(16);
    expect(key.buffer.byteLength).toBe(16);
  });

  it.each([0, 33, 1.5])("refuses an output length of %s (one block holds 1 to 32 bytes)", (length) => {
    const prk = hkdfExtract(new Uint8Array(16), new Uint8Array(32));
    expect(() => hkdfExpandBlock(prk, "x", length)).toThrow(RangeError);
  });
});
