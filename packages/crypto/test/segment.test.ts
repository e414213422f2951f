import { createCipheriv } from "node:crypto";
import {
  bytesToHex,
  decryptSegment,
  encryptSegment,
  hexToBytes,
  ivFromSequenceNumber,
} from "@blindcast/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

describe("ivFromSequenceNumber", () => {
  it.each([
    [0, "00000000000000000000000000000000"],
    [1, "00000000000000000000000000000001"],
    [258, "00000000000000000000000000000102"],
    [2 ** 53 - 1, "0000000000000000001fffffffffffff"],
    [2n ** 64n - 1n, "0000000000000000ffffffffffffffff"],
  ])("writes %s big-endian in 16 bytes", (n, hex) => {
    expect(bytesToHex(ivFromSequenceNumber(n))).toBe(hex);
  });

  it.each([-1, 1.5, 2 ** 53, -1n, 2n ** 64n])("refuses %s", (n) => {
    expect(() => ivFromSequenceNumber(n)).toThrow(
      expect.objectContaining({ code: "INVALID_SEQUENCE_NUMBER" }),
    );
  });
});

describe("AES-128-CBC segments (RFC 8216)", () => {
  const key = hexToBytes("000102030405060708090a0b0c0d0e0f");

  it("pads with PKCS#7, as OpenSSL does, and round-trips", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ maxLength: 200 }),
        async (k, iv, data) => {
          const encrypted = await encryptSegment(k, iv, data);
          const cipher = createCipheriv("aes-128-cbc", k, iv);
          const reference = Buffer.concat([cipher.update(data), cipher.final()]);
          expect(bytesToHex(encrypted)).toBe(reference.toString("hex"));
          expect(encrypted.length).toBe((Math.floor(data.length / 16) + 1) * 16);
          expect(await decryptSegment(k, iv, encrypted)).toEqual(data);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("uses the media sequence number as IV when the playlist gives none", async () => {
    const data = new TextEncoder().encode("segment 5");
    const encrypted = await encryptSegment(key, ivFromSequenceNumber(5), data);
    const cipher = createCipheriv("aes-128-cbc", key, Buffer.from(ivFromSequenceNumber(5)));
    expect(Buffer.from(encrypted)).toEqual(Buffer.concat([cipher.update(data), cipher.final()]));
  });

  it("reports a wrong key as DECRYPTION_FAILED instead of returning garbage", async () => {
    const iv = new Uint8Array(16);
    const encrypted = await encryptSegment(key, iv, new Uint8Array(1000).fill(42));
    const wrong = hexToBytes("ffffffffffffffffffffffffffffffff");
    // A wrong key fails the padding check with probability ~255/256; try a few keys to be sure
    // at least one is detected and none silently returns the plaintext.
    let failures = 0;
    for (let i = 0; i < 8; i++) {
      wrong[0] = i;
      try {
        const out = await decryptSegment(wrong, iv, encrypted);
        expect(out).not.toEqual(new Uint8Array(1000).fill(42));
      } catch (error) {
        expect(error).toMatchObject({ code: "DECRYPTION_FAILED" });
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(0);
  });

  it.each([
    ["key of 15 bytes", new Uint8Array(15), new Uint8Array(16), "INVALID_KEY"],
    ["key of 32 bytes", new Uint8Array(32), new Uint8Array(16), "INVALID_KEY"],
    ["IV of 8 bytes", new Uint8Array(16), new Uint8Array(8), "INVALID_IV"],
  ])("refuses a %s", async (_, k, iv, code) => {
    await expect(encryptSegment(k, iv, new Uint8Array(4))).rejects.toMatchObject({ code });
  });

  it("refuses ciphertext that is not whole blocks", async () => {
    await expect(decryptSegment(key, new Uint8Array(16), new Uint8Array(17))).rejects.toMatchObject({
      code: "DECRYPTION_FAILED",
    });
    await expect(decryptSegment(key, new Uint8Array(16), new Uint8Array(0))).rejects.toMatchObject({
      code: "DECRYPTION_FAILED",
    });
  });
});
