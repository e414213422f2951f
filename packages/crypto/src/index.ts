export { timingSafeEqual } from "./compare.js";
export {
  assertSecretLengths,
  contentKeyInfo,
  createKeyDeriver,
  deriveContentKey,
  deriveEpochKey,
  epochKeyInfo,
  hkdfSha256,
  KEY_BYTES,
  type KeyDeriver,
  MIN_MASTER_KEY_BYTES,
  MIN_SALT_BYTES,
} from "./derive.js";
export { BlindcastCryptoError, type CryptoErrorCode } from "./errors.js";
export { bytesToHex, hexToBytes } from "./hex.js";
export { createHkdfSha256, type HkdfSha256, MAX_HKDF_SHA256_BYTES } from "./hkdf.js";
export {
  decryptSegment,
  encryptSegment,
  IV_BYTES,
  ivFromSequenceNumber,
} from "./segment.js";
export {
  assertContentId,
  assertEpoch,
  contentIdProblem,
  isValidContentId,
  isValidEpoch,
  MAX_CONTENT_ID_LENGTH,
  MAX_EPOCH,
  parseEpoch,
} from "./validate.js";
