import {
  assertContentId,
  BlindcastCryptoError,
  bytesToHex,
  contentIdProblem,
  hexToBytes,
  isValidContentId,
  isValidEpoch,
  parseEpoch,
} from "@blindcast/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

describe("hex", () => {
  it("round-trips arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(hexToBytes(bytesToHex(bytes))).toEqual(bytes);
      }),
    );
  });

  it("writes lowercase and reads either case", () => {
    expect(bytesToHex(new Uint8Array([0, 15, 16, 255]))).toBe("000f10ff");
    expect(hexToBytes("ABcd")).toEqual(new Uint8Array([0xab, 0xcd]));
    expect(hexToBytes("")).toEqual(new Uint8Array());
  });

  it("refuses odd length", () => {
    expect(() => hexToBytes("abc")).toThrow(/odd length/);
  });

  it.each(["zz", "0x00", "a ", " a", "0g", "\u0660\u0661"])("refuses %j", (text) => {
    expect(() => hexToBytes(text)).toThrow(BlindcastCryptoError);
  });

  it("does not echo the (possibly secret) input in its error", () => {
    const secretish = "deadbeefdeadbeefdeadbeefdeadbeQQ";
    try {
      hexToBytes(secretish);
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain("deadbeef");
      expect((error as BlindcastCryptoError).code).toBe("INVALID_HEX");
    }
  });
});

describe("contentId", () => {
  it.each(["a", "demo", "movie-42", "A.b_c~d-9", "...", ".a", "x".repeat(128)])("accepts %j", (id) => {
    expect(isValidContentId(id)).toBe(true);
    expect(() => assertContentId(id)).not.toThrow();
  });

  it.each([
    ["", /empty/],
    [".", /'\.'/],
    ["..", /'\.'/],
    ["x".repeat(129), /at most 128/],
    ["a/b", /may contain only/],
    ["a%2Fb", /may contain only/],
    ["\u00e9", /may contain only/],
    [42, /string/],
  ])("refuses %j with a reason", (id, reason) => {
    expect(contentIdProblem(id)).toMatch(reason);
    expect(isValidContentId(id)).toBe(false);
  });
});

describe("epoch", () => {
  it.each([
    ["0", 0],
    ["7", 7],
    ["4294967295", 4294967295],
  ])("parses %j", (text, epoch) => {
    expect(parseEpoch(text)).toBe(epoch);
  });

  it.each(["", "-1", "+1", "01", "00", "1.0", "1e3", " 1", "1 ", "4294967296", "99999999999", "0x1", "١"])(
    "refuses %j",
    (text) => {
      expect(() => parseEpoch(text)).toThrow(expect.objectContaining({ code: "INVALID_EPOCH" }));
    },
  );

  it("parses exactly the canonical decimal of every valid epoch", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4294967295 }), (epoch) => {
        expect(parseEpoch(String(epoch))).toBe(epoch);
        expect(isValidEpoch(epoch)).toBe(true);
      }),
    );
  });
});
