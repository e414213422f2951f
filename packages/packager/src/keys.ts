import { createKeyDeriver, MAX_EPOCH } from "@blindcast/crypto";
import { PackagerError } from "./errors.js";

/** Where key URIs point by default: resolved by the player against its keyServerUrl. */
export const KEY_URI_PREFIX = "blindcast://keys/";

/** A key epoch, or `null` for the content key. */
export type Epoch = number | null;

/** What decides which key a segment gets. */
export interface EpochRule {
  /** A new epoch every this many media sequence numbers; undefined: every segment in epoch 0. */
  segmentsPerEpoch: number | undefined;
  /** The content key for every segment instead of epoch keys. */
  contentKey: boolean;
}

/**
 * The epoch of the segment with media sequence number `sequence`. Counted from the sequence
 * number, not from the segment's place in the file, so a segment keeps its epoch however a live
 * window slides, and a VOD playlist starting at sequence 0 gets epochs by position.
 */
export function epochOf(sequence: number, rule: EpochRule): Epoch {
  if (rule.contentKey) return null;
  if (rule.segmentsPerEpoch === undefined) return 0;
  const epoch = Math.floor(sequence / rule.segmentsPerEpoch);
  if (epoch > MAX_EPOCH) {
    throw new PackagerError(
      "UNSUPPORTED_INPUT",
      `media sequence number ${sequence} would be in epoch ${epoch}, above the largest epoch ${MAX_EPOCH}; use a larger segmentsPerEpoch`,
    );
  }
  return epoch;
}

/** The key's blindcast:// URI: `blindcast://keys/{contentId}/{epoch}`, or `…/{contentId}`. */
export function keyUriOf(contentId: string, epoch: Epoch): string {
  return epoch === null ? `${KEY_URI_PREFIX}${contentId}` : `${KEY_URI_PREFIX}${contentId}/${epoch}`;
}

/** The URI a playlist names: the blindcast:// URI, or the key server's route under `keyUriBase`. */
export function publishedKeyUri(keyUri: string, keyUriBase: string | undefined): string {
  return keyUriBase === undefined ? keyUri : `${keyUriBase}/${keyUri.slice(KEY_URI_PREFIX.length)}`;
}

/** Where the packager gets keys from: the master key and salt the key server derives them from. */
export interface KeySourceOptions {
  masterKey: Uint8Array;
  salt: Uint8Array;
}

/** Gets each key once and holds a few; `wipe` zeroes every key held. */
export interface Keyring {
  keyFor(epoch: Epoch): Promise<Uint8Array>;
  wipe(): Promise<void>;
}

/**
 * Keys held at once. A live stream goes through epochs without end, so keys no longer in use are
 * zeroed and dropped; segments are encrypted in sequence order, so a dropped key is rarely needed
 * again (and is derived again if it is).
 */
const KEYS_HELD = 8;

/**
 * Every key lookup of the packager (VOD and live) goes through here, so another key source
 * plugs in at this one place.
 */
export function createKeyring(source: KeySourceOptions, contentId: string): Keyring {
  const deriver = createKeyDeriver(source.masterKey, source.salt);
  const keys = new Map<Epoch, Promise<Uint8Array>>();
  const zero = (key: Promise<Uint8Array>) =>
    key.then(
      (bytes) => bytes.fill(0),
      () => undefined,
    );
  return {
    keyFor(epoch) {
      let key = keys.get(epoch);
      if (key) {
        // Most recently used last, so the oldest is dropped first.
        keys.delete(epoch);
      } else {
        key = epoch === null ? deriver.contentKey(contentId) : deriver.epochKey(contentId, epoch);
      }
      keys.set(epoch, key);
      if (keys.size > KEYS_HELD) {
        const [oldest, dropped] = keys.entries().next().value as [Epoch, Promise<Uint8Array>];
        keys.delete(oldest);
        void zero(dropped);
      }
      return key;
    },
    async wipe() {
      const held = [...keys.values()];
      keys.clear();
      await Promise.all(held.map(zero));
    },
  };
}
