/** Stable codes for every input the crypto package refuses. */
export type CryptoErrorCode =
  | "INVALID_HEX"
  | "INVALID_CONTENT_ID"
  | "INVALID_EPOCH"
  | "MASTER_KEY_TOO_SHORT"
  | "SALT_TOO_SHORT"
  | "INVALID_KEY"
  | "INVALID_IV"
  | "INVALID_SEQUENCE_NUMBER"
  | "INVALID_LENGTH"
  | "DECRYPTION_FAILED"
  | "WEBCRYPTO_UNAVAILABLE";

/**
 * Thrown for any refused input. `code` is stable and meant for programs; `message` is for people
 * and never contains key material.
 */
export class BlindcastCryptoError extends Error {
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string) {
    super(message);
    this.name = "BlindcastCryptoError";
    this.code = code;
  }
}
