import type { KeyDeriver } from "@blindcast/crypto";

/**
 * Keeps the most recently served derived keys (by contentId and epoch) so that the many viewers
 * of one stream cost one derivation per key, not one per request. Holds nothing the master key
 * in the same process could not derive again; bounded, least recently used first out.
 */
export function cachingDeriver(deriver: KeyDeriver, maxEntries: number): KeyDeriver {
  if (maxEntries === 0) return deriver;
  const keys = new Map<string, Uint8Array>();
  const remember = (name: string, key: Uint8Array) => {
    if (keys.size >= maxEntries) keys.delete(keys.keys().next().value as string);
    keys.set(name, key);
    return key;
  };
  const cached = async (name: string, derive: () => Promise<Uint8Array>) => {
    const hit = keys.get(name);
    if (hit) {
      // Re-insert: Map iteration order is insertion order, so this makes it most recent.
      keys.delete(name);
      keys.set(name, hit);
      return hit;
    }
    return remember(name, await derive());
  };
  return {
    contentKey: (contentId) => cached(contentId, () => deriver.contentKey(contentId)),
    epochKey: (contentId, epoch) => cached(`${contentId}/${epoch}`, () => deriver.epochKey(contentId, epoch)),
  };
}
