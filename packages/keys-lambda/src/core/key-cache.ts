/**
 * Keys by contentId (and epoch), at once or as a promise: a cache hit, or a synchronous
 * derivation (node:crypto), comes back without a microtask. A `KeyDeriver` from
 * `@blindcast/crypto` is one.
 */
export interface KeySource {
  contentKey(contentId: string): Uint8Array | Promise<Uint8Array>;
  epochKey(contentId: string, epoch: number): Uint8Array | Promise<Uint8Array>;
}

/**
 * Keeps recently served derived keys (by contentId and epoch) so that the many viewers of one
 * stream cost one derivation per key, not one per request. Holds nothing the master key in the
 * same process could not derive again.
 *
 * Two generations rather than a strict LRU: a hit in the young one is a single lookup, where an
 * LRU reorders on every hit (measurable on the key path). When the young generation fills, the
 * old one is dropped and the young one ages; a key used since moves back to the young one. At
 * most `maxEntries` keys are held, and the last `maxEntries / 2` used are never dropped.
 */
export function cachingDeriver(deriver: KeySource, maxEntries: number): KeySource {
  if (maxEntries === 0) return deriver;
  const generationSize = Math.max(1, Math.floor(maxEntries / 2));
  let young = new Map<string, Uint8Array>();
  let old = new Map<string, Uint8Array>();
  const remember = (name: string, key: Uint8Array) => {
    if (young.size >= generationSize) {
      // With room for one key only, there is no old generation to keep.
      old = maxEntries > 1 ? young : new Map();
      young = new Map();
    }
    young.set(name, key);
    return key;
  };
  const cached = (
    name: string,
    derive: () => Uint8Array | Promise<Uint8Array>,
  ): Uint8Array | Promise<Uint8Array> => {
    const hit = young.get(name);
    if (hit !== undefined) return hit;
    const aged = old.get(name);
    if (aged !== undefined) return remember(name, aged);
    const key = derive();
    return key instanceof Uint8Array ? remember(name, key) : key.then((derived) => remember(name, derived));
  };
  return {
    contentKey: (contentId) => cached(contentId, () => deriver.contentKey(contentId)),
    epochKey: (contentId, epoch) => cached(`${contentId}/${epoch}`, () => deriver.epochKey(contentId, epoch)),
  };
}
