import { BlindcastCryptoError } from "./errors.js";
import { createHkdfSha256 } from "./hkdf.js";
import { assertContentId, assertEpoch } from "./validate.js";
import { ownBytes, subtle } from "./webcrypto.js";

/** Shortest master key the contract accepts (32 bytes recommended). */
export const MIN_MASTER_KEY_BYTES = 16;
/** Shortest salt the contract accepts. */
export const MIN_SALT_BYTES = 16;
/** Every derived key is an AES-128 key. */
export const KEY_BYTES = 16;

const CONTENT_INFO_PREFIX = "blindcast/v1/content/";
const EPOCH_INFO_PREFIX = "blindcast/v1/epoch/";
const utf8 = new TextEncoder();

/** HKDF-SHA-256 (RFC 5869) over WebCrypto, returning `length` bytes. */
export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const key = await subtle().importKey("raw", ownBytes(ikm), "HKDF", false, ["deriveBits"]);
  return expand(key, ownBytes(salt), info, length);
}

/** The HKDF `info` string of a content key, per the v1 contract. */
export function contentKeyInfo(contentId: string): string {
  assertContentId(contentId);
  return CONTENT_INFO_PREFIX + contentId;
}

/** The HKDF `info` string of an epoch key, per the v1 contract. */
export function epochKeyInfo(contentId: string, epoch: number): string {
  assertContentId(contentId);
  assertEpoch(epoch);
  return `${EPOCH_INFO_PREFIX}${contentId}/${epoch}`;
}

/** Derives keys from one master key and salt, doing HKDF's extract step once. */
export interface KeyDeriver {
  /** The content key of `contentId` (16 bytes). */
  contentKey(contentId: string): Promise<Uint8Array>;
  /** The key of rotation `epoch` of `contentId` (16 bytes). */
  epochKey(contentId: string, epoch: number): Promise<Uint8Array>;
}

/**
 * Validates the master key and salt, then returns a deriver that does HKDF's extract step once
 * (on first use) and keeps its result as a non-extractable WebCrypto key: each key is then one
 * HMAC. Servers and packagers should create it once and reuse it.
 */
export function createKeyDeriver(masterKey: Uint8Array, salt: Uint8Array): KeyDeriver {
  assertSecretLengths(masterKey, salt);
  const hkdf = createHkdfSha256(masterKey, salt);
  return {
    async contentKey(contentId) {
      return hkdf.expand(utf8.encode(contentKeyInfo(contentId)), KEY_BYTES);
    },
    async epochKey(contentId, epoch) {
      return hkdf.expand(utf8.encode(epochKeyInfo(contentId, epoch)), KEY_BYTES);
    },
  };
}

// The one-shots use WebCrypto's own HKDF: for a single key, extract and expand in one call is
// cheaper than a deriver, and it is a second, independent path checked against the same vectors.
/** The content key of `contentId`: HKDF-SHA-256(masterKey, salt, "blindcast/v1/content/" + contentId). */
export async function deriveContentKey(
  masterKey: Uint8Array,
  salt: Uint8Array,
  contentId: string,
): Promise<Uint8Array> {
  assertSecretLengths(masterKey, salt);
  return hkdfSha256(masterKey, salt, utf8.encode(contentKeyInfo(contentId)), KEY_BYTES);
}

/** The epoch key: HKDF-SHA-256(masterKey, salt, "blindcast/v1/epoch/" + contentId + "/" + epoch). */
export async function deriveEpochKey(
  masterKey: Uint8Array,
  salt: Uint8Array,
  contentId: string,
  epoch: number,
): Promise<Uint8Array> {
  assertSecretLengths(masterKey, salt);
  return hkdfSha256(masterKey, salt, utf8.encode(epochKeyInfo(contentId, epoch)), KEY_BYTES);
}

/** Throws unless the master key and salt meet the contract's minimum lengths. */
export function assertSecretLengths(masterKey: unknown, salt: unknown): void {
  if (!(masterKey instanceof Uint8Array)) {
    throw new BlindcastCryptoError("MASTER_KEY_TOO_SHORT", "masterKey must be a Uint8Array");
  }
  if (masterKey.length < MIN_MASTER_KEY_BYTES) {
    throw new BlindcastCryptoError(
      "MASTER_KEY_TOO_SHORT",
      `masterKey must be at least ${MIN_MASTER_KEY_BYTES} bytes (32 recommended); got ${masterKey.length}`,
    );
  }
  if (!(salt instanceof Uint8Array)) {
    throw new BlindcastCryptoError("SALT_TOO_SHORT", "salt must be a Uint8Array");
  }
  if (salt.length < MIN_SALT_BYTES) {
    throw new BlindcastCryptoError(
      "SALT_TOO_SHORT",
      `salt must be at least ${MIN_SALT_BYTES} bytes; got ${salt.length}`,
    );
  }
}

async function expand(
  key: CryptoKey,
  salt: Uint8Array<ArrayBuffer>,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const bits = await subtle().deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: ownBytes(info) },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}
