const utf8 = new TextEncoder();

/**
 * Compares two secrets (bytes, or strings as UTF-8) in time that depends only on their lengths,
 * never on where they first differ: every byte is read and folded into one accumulator, with no
 * early exit. Use it in an `authenticate` that checks a static token.
 */
export function timingSafeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const x = typeof a === "string" ? utf8.encode(a) : a;
  const y = typeof b === "string" ? utf8.encode(b) : b;
  // Lengths are not secret (a token's length is public); comparing them first is safe.
  let difference = x.length ^ y.length;
  const length = Math.max(x.length, y.length);
  for (let i = 0; i < length; i++)
    difference |= (x[i % (x.length || 1)] ?? 0) ^ (y[i % (y.length || 1)] ?? 0);
  return difference === 0;
}
