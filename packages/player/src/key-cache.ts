export interface KeyCache {
  /** The key held or being fetched under `name`, else `fetchKey()`'s. */
  get(name: string, fetchKey: () => Promise<Uint8Array>): Promise<Uint8Array>;
  /** Overwrites every key held, then forgets them; keys arriving later are overwritten too. */
  wipe(): void;
}

/**
 * Keys held in memory for one player, by (contentId, epoch). Concurrent requests for one key
 * share a single fetch; a failed fetch is forgotten so a later request can try again. Never
 * persisted anywhere.
 */
export function createKeyCache(): KeyCache {
  const entries = new Map<string, Promise<Uint8Array>>();
  const settled: Uint8Array[] = [];
  let wiped = false;
  return {
    get(name, fetchKey) {
      const existing = entries.get(name);
      if (existing) return existing;
      const key = fetchKey().then(
        (bytes) => {
          // A fetch that ends after the wipe must not leave a key behind.
          if (wiped) {
            bytes.fill(0);
            throw new Error("key session destroyed");
          }
          settled.push(bytes);
          return bytes;
        },
        (error: unknown) => {
          if (entries.get(name) === key) entries.delete(name);
          throw error;
        },
      );
      entries.set(name, key);
      return key;
    },
    wipe() {
      wiped = true;
      for (const bytes of settled) bytes.fill(0);
      settled.length = 0;
      entries.clear();
    },
  };
}
