import { assertSecretLengths, BlindcastCryptoError, createKeyDeriver, KEY_BYTES } from "@blindcast/crypto";
import { PackagerError } from "./errors.js";

/** One key of a content: an epoch's key (0 to 4294967295), or `"content"` for the content key. */
export type KeyId = number | "content";

/**
 * Where the packager gets its keys. `packageHls` asks once, with every key a VOD stream (or a
 * live window) needs; `watchHls` asks as new epochs appear, each time with every key the step
 * needs plus the next few epochs. Never a key it holds already (no duplicates), always before it
 * writes what the keys encrypt. It overwrites the keys with zeros when it is done with them:
 * return fresh copies, not buffers you keep.
 */
export interface KeySource {
  /** A short description for messages, e.g. `key server https://keys.example.com/keys`. Never a secret. */
  readonly description: string;
  /** The 16-byte key of every id in `ids`, for `contentId`. Failures are `PackagerError`s. */
  getKeys(contentId: string, ids: readonly KeyId[]): Promise<ReadonlyMap<KeyId, Uint8Array>>;
}

export interface MasterKeySourceOptions {
  /** At least 16 bytes (32 recommended): the key server's MASTER_KEY. */
  masterKey: Uint8Array;
  /** At least 16 bytes: the key server's SALT. */
  salt: Uint8Array;
}

/**
 * Keys derived here from the master key and salt with the v1 contract (HKDF-SHA-256), exactly
 * as the key server derives them. Whoever runs this holds every key of every content.
 */
export function createMasterKeySource(options: MasterKeySourceOptions): KeySource {
  try {
    assertSecretLengths(options?.masterKey, options?.salt);
  } catch (error) {
    if (error instanceof BlindcastCryptoError) throw new PackagerError("INVALID_OPTIONS", error.message);
    throw error;
  }
  const deriver = createKeyDeriver(options.masterKey, options.salt);
  return {
    description: "the master key",
    async getKeys(contentId, ids) {
      const keys = new Map<KeyId, Uint8Array>();
      for (const id of ids) {
        keys.set(
          id,
          await (id === "content" ? deriver.contentKey(contentId) : deriver.epochKey(contentId, id)),
        );
      }
      return keys;
    },
  };
}

/**
 * The keys a source returned, checked: exactly one 16-byte key per id asked. A custom source
 * that gets this wrong would otherwise encrypt with a wrong or short key.
 */
export function checkSourceKeys(
  source: KeySource,
  ids: readonly KeyId[],
  keys: ReadonlyMap<KeyId, Uint8Array> | undefined,
): ReadonlyMap<KeyId, Uint8Array> {
  const hasGet = typeof keys?.get === "function";
  const bad = ids.find((id) => {
    const key = hasGet ? keys?.get(id) : undefined;
    return !(key instanceof Uint8Array) || key.length !== KEY_BYTES;
  });
  if (!keys || bad !== undefined) {
    throw new PackagerError(
      "KEY_SERVER_INVALID_RESPONSE",
      `${source.description} gave no 16-byte key for ${bad === "content" ? "the content key" : `epoch ${bad}`}`,
    );
  }
  return keys;
}
