import { BlindcastCryptoError } from "./errors.js";

const HEX_DIGITS = "0123456789abcdef";

/**
 * Decodes hexadecimal (either case) into bytes. Refuses odd lengths and any non-hex character
 * rather than skipping it, because a silently shortened master key would derive wrong keys.
 */
export function hexToBytes(hex: string): Uint8Array {
  if (typeof hex !== "string") {
    throw new BlindcastCryptoError("INVALID_HEX", "hexToBytes expects a string");
  }
  if (hex.length % 2 !== 0) {
    throw new BlindcastCryptoError(
      "INVALID_HEX",
      `Hex string has odd length (${hex.length}); every byte needs two hex digits`,
    );
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    const high = nibble(hex.charCodeAt(i * 2));
    const low = nibble(hex.charCodeAt(i * 2 + 1));
    if (high < 0 || low < 0) {
      const at = high < 0 ? i * 2 : i * 2 + 1;
      // Name the position, not the character: the string may be a secret.
      throw new BlindcastCryptoError("INVALID_HEX", `Hex string has a non-hex character at index ${at}`);
    }
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

/** Encodes bytes as lowercase hexadecimal. */
export function bytesToHex(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) {
    throw new BlindcastCryptoError("INVALID_HEX", "bytesToHex expects a Uint8Array");
  }
  let out = "";
  for (const byte of bytes) {
    out += HEX_DIGITS.charAt(byte >> 4) + HEX_DIGITS.charAt(byte & 15);
  }
  return out;
}

function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}
