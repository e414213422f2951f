import { BlindcastCryptoError } from "./errors.js";
import { ownBytes, subtle } from "./webcrypto.js";

const HASH_BYTES = 32;
/** The longest output HKDF-SHA-256 defines (255 blocks of 32 bytes, RFC 5869 section 2.3). */
export const MAX_HKDF_SHA256_BYTES = 255 * HASH_BYTES;
const HMAC_SHA256 = { name: "HMAC", hash: "SHA-256" } as const;

/** HKDF-SHA-256 with its extract step done: each `expand` is HMAC only. */
export interface HkdfSha256 {
  /**
   * RFC 5869's expand: `length` bytes (1 to 8160) for `info`. Up to 32 bytes (an AES-128 key is
   * 16) this is a single HMAC-SHA-256.
   */
  expand(info: Uint8Array, length: number): Promise<Uint8Array>;
}

/**
 * RFC 5869 HKDF-SHA-256 split in its two steps. Extract (PRK = HMAC(salt, IKM)) depends only on
 * the input key and salt, so it runs once, on first use; the PRK is then held as a
 * non-extractable WebCrypto HMAC key and its bytes wiped. WebCrypto's own HKDF would redo the
 * extract on every derivation: two HMACs per key where this does one.
 *
 * An empty salt stands for 32 zero bytes, as RFC 5869 says (WebCrypto refuses an empty HMAC key;
 * HMAC pads keys with zeros, so the two are the same key).
 */
export function createHkdfSha256(ikm: Uint8Array, salt: Uint8Array): HkdfSha256 {
  // Copied now: later changes to the caller's buffers must not change the keys.
  let ikmBytes: Uint8Array<ArrayBuffer> | undefined = ownBytes(ikm);
  const saltBytes = salt.length === 0 ? new Uint8Array(HASH_BYTES) : ownBytes(salt);
  // Shared by concurrent first calls.
  let prk: Promise<CryptoKey> | undefined;
  const prkKey = (): Promise<CryptoKey> => {
    if (prk === undefined) {
      const input = ikmBytes ?? new Uint8Array(0);
      ikmBytes = undefined;
      prk = extract(saltBytes, input);
    }
    return prk;
  };
  return {
    async expand(info, length) {
      if (!Number.isInteger(length) || length < 1 || length > MAX_HKDF_SHA256_BYTES) {
        throw new BlindcastCryptoError(
          "INVALID_LENGTH",
          `HKDF-SHA-256 output length must be an integer from 1 to ${MAX_HKDF_SHA256_BYTES}`,
        );
      }
      return expand(await prkKey(), info, length);
    },
  };
}

async function extract(salt: Uint8Array<ArrayBuffer>, ikm: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const api = subtle();
  const saltKey = await api.importKey("raw", salt, HMAC_SHA256, false, ["sign"]);
  const prk = new Uint8Array(await api.sign("HMAC", saltKey, ikm));
  ikm.fill(0);
  try {
    return await api.importKey("raw", prk, HMAC_SHA256, false, ["sign"]);
  } finally {
    prk.fill(0);
  }
}

/** T(1) | T(2) | … with T(i) = HMAC(PRK, T(i-1) | info | i), cut to `length`. */
async function expand(prk: CryptoKey, info: Uint8Array, length: number): Promise<Uint8Array> {
  const api = subtle();
  const blocks = Math.ceil(length / HASH_BYTES);
  const okm = new Uint8Array(length);
  let previous = new Uint8Array(0);
  for (let i = 1; i <= blocks; i++) {
    const input = new Uint8Array(previous.length + info.length + 1);
    input.set(previous);
    input.set(info, previous.length);
    input[input.length - 1] = i;
    const block = new Uint8Array(await api.sign("HMAC", prk, input));
    okm.set(block.subarray(0, Math.min(HASH_BYTES, length - (i - 1) * HASH_BYTES)), (i - 1) * HASH_BYTES);
    previous.fill(0);
    previous = block;
  }
  // The block's unused bytes are key material too; the caller gets a buffer of exactly `length`.
  previous.fill(0);
  return okm;
}
