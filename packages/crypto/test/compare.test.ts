import { timingSafeEqual } from "@blindcast/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/** A Uint8Array that counts reads of its elements. */
function counted(bytes: number[]) {
  const reads = { n: 0 };
  const proxy = new Proxy(new Uint8Array(bytes), {
    get(target, key, _receiver) {
      if (typeof key === "string" && /^\d+$/.test(key)) reads.n++;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { array: proxy as Uint8Array, reads };
}

describe("timingSafeEqual", () => {
  it("agrees with ordinary equality", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (a, b) => {
        expect(timingSafeEqual(a, b)).toBe(Buffer.from(a).equals(Buffer.from(b)));
        expect(timingSafeEqual(a, a.slice())).toBe(true);
      }),
    );
    expect(timingSafeEqual("s3cret-token", "s3cret-token")).toBe(true);
    expect(timingSafeEqual("s3cret-token", "s3cret-tokem")).toBe(false);
    expect(timingSafeEqual("", "")).toBe(true);
    expect(timingSafeEqual("a", "")).toBe(false);
  });

  it("reads every byte whether inputs differ at the first byte, the last, or not at all", () => {
    const secret = Array.from({ length: 32 }, (_, i) => i);
    for (const other of [
      secret.map((v, i) => (i === 0 ? v ^ 1 : v)),
      secret.map((v, i) => (i === 31 ? v ^ 1 : v)),
      secret,
    ]) {
      const a = counted(secret);
      const b = counted(other);
      timingSafeEqual(a.array, b.array);
      expect(a.reads.n).toBe(32);
      expect(b.reads.n).toBe(32);
    }
  });
});
