import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import { assertSecretLengths, contentKeyInfo, epochKeyInfo, KEY_BYTES } from "@blindcast/crypto";
import type { KeySource } from "../core/key-cache.js";

const HASH_BYTES = 32;
/** HKDF's expand counter for its first block (RFC 5869 section 2.3), as a UTF-8 string. */
const FIRST_BLOCK = "\u0001";

/**
 * The v1 derivation on node:crypto. Same contract and vectors as @blindcast/crypto's WebCrypto
 * deriver, but synchronous (WebCrypto goes through libuv's thread pool on every call), and with
 * HKDF's extract step done once here rather than per key as `hkdfSync` does it: a key is then one
 * HMAC, about four times as fast (BENCHMARKS.md).
 */
export function createNodeKeyDeriver(masterKey: Uint8Array, salt: Uint8Array): KeySource {
  assertSecretLengths(masterKey, salt);
  const prk = hkdfExtract(salt, masterKey);
  return {
    contentKey: (contentId) => hkdfExpandBlock(prk, contentKeyInfo(contentId), KEY_BYTES),
    epochKey: (contentId, epoch) => hkdfExpandBlock(prk, epochKeyInfo(contentId, epoch), KEY_BYTES),
  };
}

/**
 * RFC 5869 extract: PRK = HMAC-SHA-256(salt, IKM), held as a KeyObject (its bytes live outside the
 * JS heap, and node skips re-validating a raw key on every HMAC). An empty salt works as the RFC's
 * 32 zero bytes: HMAC pads keys with zeros.
 */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): KeyObject {
  const bytes = createHmac("sha256", salt).update(ikm).digest();
  try {
    return createSecretKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

/**
 * RFC 5869 expand for outputs of up to 32 bytes, where it is one block: T(1) = HMAC(PRK, info |
 * 0x01), cut to `length`. A string `info` is taken as UTF-8, as the contract says.
 */
export function hkdfExpandBlock(prk: KeyObject, info: string | Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > HASH_BYTES) {
    throw new RangeError(`one HKDF-SHA-256 block is 1 to ${HASH_BYTES} bytes`);
  }
  const hmac = createHmac("sha256", prk);
  if (typeof info === "string") hmac.update(info + FIRST_BLOCK);
  else hmac.update(info).update(new Uint8Array([1]));
  const block = hmac.digest();
  // A fresh buffer of exactly `length` bytes: the rest of the block never leaves this function.
  const key = new Uint8Array(block.subarray(0, length));
  block.fill(0);
  return key;
}
