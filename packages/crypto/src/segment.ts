import { KEY_BYTES } from "./derive.js";
import { BlindcastCryptoError } from "./errors.js";
import { ownBytes, subtle } from "./webcrypto.js";

/** AES block and IV size. */
export const IV_BYTES = 16;
const MAX_SEQUENCE_NUMBER = 2n ** 64n - 1n;

/**
 * The IV HLS uses when a playlist's `EXT-X-KEY` has no `IV` attribute (RFC 8216 §5.2): the
 * segment's media sequence number as a 128-bit big-endian integer.
 */
export function ivFromSequenceNumber(sequenceNumber: number | bigint): Uint8Array {
  const valid =
    typeof sequenceNumber === "bigint"
      ? sequenceNumber >= 0n && sequenceNumber <= MAX_SEQUENCE_NUMBER
      : Number.isSafeInteger(sequenceNumber) && sequenceNumber >= 0;
  if (!valid) {
    throw new BlindcastCryptoError(
      "INVALID_SEQUENCE_NUMBER",
      "media sequence number must be a non-negative integer below 2^64",
    );
  }
  let n = BigInt(sequenceNumber);
  const iv = new Uint8Array(IV_BYTES);
  for (let i = IV_BYTES - 1; i >= 0 && n > 0n; i--) {
    iv[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return iv;
}

/** AES-128-CBC with PKCS#7 padding, as HLS `METHOD=AES-128` defines it. */
export async function encryptSegment(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const cryptoKey = await importAesKey(key, "encrypt");
  const out = await subtle().encrypt({ name: "AES-CBC", iv: checkedIv(iv) }, cryptoKey, ownBytes(plaintext));
  return new Uint8Array(out);
}

/**
 * Reverses `encryptSegment`. A wrong key or IV almost always shows up as bad padding; it is
 * reported as `DECRYPTION_FAILED` rather than returning garbage.
 */
export async function decryptSegment(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Uint8Array> {
  if (ciphertext.length === 0 || ciphertext.length % IV_BYTES !== 0) {
    throw new BlindcastCryptoError(
      "DECRYPTION_FAILED",
      "ciphertext length must be a positive multiple of 16 bytes",
    );
  }
  const cryptoKey = await importAesKey(key, "decrypt");
  try {
    const out = await subtle().decrypt(
      { name: "AES-CBC", iv: checkedIv(iv) },
      cryptoKey,
      ownBytes(ciphertext),
    );
    return new Uint8Array(out);
  } catch {
    throw new BlindcastCryptoError(
      "DECRYPTION_FAILED",
      "segment could not be decrypted (wrong key or IV, or corrupted data)",
    );
  }
}

function importAesKey(key: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new BlindcastCryptoError("INVALID_KEY", `AES-128 key must be exactly ${KEY_BYTES} bytes`);
  }
  return subtle().importKey("raw", ownBytes(key), "AES-CBC", false, [usage]);
}

function checkedIv(iv: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!(iv instanceof Uint8Array) || iv.length !== IV_BYTES) {
    throw new BlindcastCryptoError("INVALID_IV", `IV must be exactly ${IV_BYTES} bytes`);
  }
  return ownBytes(iv);
}
