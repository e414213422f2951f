import { BlindcastCryptoError } from "./errors.js";

/**
 * The runtime's WebCrypto. Browsers (secure contexts only: https or localhost), Node 20+ and
 * Lambda all provide `globalThis.crypto.subtle`; we fail with a clear error instead of a
 * TypeError where it is missing, typically a page served over plain http from another host.
 */
export function subtle(): SubtleCrypto {
  const api = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!api) {
    throw new BlindcastCryptoError(
      "WEBCRYPTO_UNAVAILABLE",
      "WebCrypto (crypto.subtle) is not available; browsers expose it only in secure contexts (https or localhost)",
    );
  }
  return api;
}

/** Copies into a fresh ArrayBuffer-backed array, so callers cannot mutate what we hold. */
export function ownBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
