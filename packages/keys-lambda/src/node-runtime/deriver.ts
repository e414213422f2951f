import { hkdfSync } from "node:crypto";
import {
  assertSecretLengths,
  contentKeyInfo,
  epochKeyInfo,
  KEY_BYTES,
  type KeyDeriver,
} from "@blindcast/crypto";

/**
 * The v1 derivation on node:crypto. Same contract and vectors as @blindcast/crypto's WebCrypto
 * deriver, but synchronous: WebCrypto's HKDF goes through libuv's thread pool on every call,
 * which costs a key server several times its throughput (see BENCHMARKS.md).
 */
export function createNodeKeyDeriver(masterKey: Uint8Array, salt: Uint8Array): KeyDeriver {
  assertSecretLengths(masterKey, salt);
  const ikm = Buffer.from(masterKey);
  const saltBytes = Buffer.from(salt);
  const derive = (info: string) => new Uint8Array(hkdfSync("sha256", ikm, saltBytes, info, KEY_BYTES));
  return {
    contentKey: async (contentId) => derive(contentKeyInfo(contentId)),
    epochKey: async (contentId, epoch) => derive(epochKeyInfo(contentId, epoch)),
  };
}
