import { MAX_EPOCH } from "@blindcast/crypto";
import { PackagerError } from "./errors.js";
import { checkSourceKeys, type KeyId, type KeySource } from "./key-source.js";

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

/** The source's name for an epoch's key. */
export function keyIdOf(epoch: Epoch): KeyId {
  return epoch === null ? "content" : epoch;
}

export interface KeyringOptions {
  /**
   * When keys are missing, also ask for this many epochs after the last one missing, in the same
   * request: a live stream then makes one request per `1 + lookahead` epochs, not one per epoch.
   * Default 0.
   */
  lookahead?: number;
  /**
   * Keys held at once; beyond that the least recently used are zeroed and dropped (never those
   * the current request asked). Default: no bound (a VOD run holds what its stream needs).
   */
  held?: number;
}

/** The keys of one content, got from a `KeySource` and held until `wipe`. */
export interface Keyring {
  /**
   * Gets every key of `epochs` not held yet in one call to the source (which batches it), so a
   * refusal comes before the caller writes anything.
   */
  fetch(epochs: Iterable<Epoch>): Promise<void>;
  /** The key of `epoch`, fetched first if not held. Valid until the next `fetch` or `wipe`. */
  keyFor(epoch: Epoch): Promise<Uint8Array>;
  /** Zeroes and drops every key held. */
  wipe(): void;
}

/**
 * Every key lookup of the packager (VOD and live) goes through here, so every source (the master
 * key, a key server, your own) is used the same way: asked in batches, answers checked, keys
 * zeroed once done with.
 */
export function createKeyring(source: KeySource, contentId: string, options: KeyringOptions = {}): Keyring {
  const lookahead = options.lookahead ?? 0;
  const held = options.held ?? Number.POSITIVE_INFINITY;
  /** In order of last use, oldest first. */
  const keys = new Map<Epoch, Uint8Array>();
  const touch = (epoch: Epoch, key: Uint8Array) => {
    keys.delete(epoch);
    keys.set(epoch, key);
  };
  // One request at a time: two overlapping ones could ask (and hold) the same key twice.
  let queue: Promise<unknown> = Promise.resolve();

  const fetchNow = async (epochs: Iterable<Epoch>) => {
    const wanted = new Set(epochs);
    const missing = [...wanted].filter((epoch) => !keys.has(epoch));
    for (const epoch of wanted) {
      const key = keys.get(epoch);
      if (key) touch(epoch, key);
    }
    if (missing.length === 0) return;
    const asked = [...missing];
    // A loop, not Math.max(...): a VOD stream may need more epochs than a call takes arguments.
    let last = -1;
    for (const epoch of missing) if (epoch !== null && epoch > last) last = epoch;
    if (last >= 0) {
      for (let epoch = last + 1; epoch <= Math.min(last + lookahead, MAX_EPOCH); epoch++) {
        if (!keys.has(epoch)) asked.push(epoch);
      }
    }
    const ids = asked.map(keyIdOf);
    const answer = await source.getKeys(contentId, ids);
    let checked: ReadonlyMap<KeyId, Uint8Array>;
    try {
      checked = checkSourceKeys(source, ids, answer);
    } catch (error) {
      zeroAll(answer);
      throw error;
    }
    const kept = new Set<Uint8Array>();
    for (const epoch of asked) {
      const key = checked.get(keyIdOf(epoch)) as Uint8Array;
      kept.add(key);
      touch(epoch, key);
    }
    // Keys the source gave beyond those asked are not used.
    for (const key of checked.values()) if (!kept.has(key)) key.fill(0);
    const current = new Set<Epoch>([...wanted, ...asked]);
    for (const [epoch, key] of keys) {
      if (keys.size <= held) break;
      if (current.has(epoch)) continue;
      keys.delete(epoch);
      key.fill(0);
    }
  };

  const fetchKeys = (epochs: Iterable<Epoch>) => {
    const list = [...epochs];
    const run = queue.then(() => fetchNow(list));
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    fetch: fetchKeys,
    async keyFor(epoch) {
      if (!keys.has(epoch)) await fetchKeys([epoch]);
      const key = keys.get(epoch) as Uint8Array;
      touch(epoch, key);
      return key;
    },
    wipe() {
      for (const key of keys.values()) key.fill(0);
      keys.clear();
    },
  };
}

function zeroAll(answer: ReadonlyMap<KeyId, Uint8Array> | undefined): void {
  if (typeof answer?.values !== "function") return;
  for (const key of answer.values()) if (key instanceof Uint8Array) key.fill(0);
}
