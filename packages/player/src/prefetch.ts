import { isBlindcastKeyUri, type KeyRef, parseKeyUri } from "./key-uri.js";

/** What the prefetcher needs of a fragment: its key URI (undefined when clear). */
export interface FragmentKeyInfo {
  keyUri: string | undefined;
}

/**
 * The keys to have in hand when fragment `fromIndex` is about to load: its own key and the next
 * `ahead` distinct keys after it, in playlist order. With one epoch per N fragments this fetches
 * the next epoch's key N fragments before its boundary, so rotation never waits on the network.
 */
export function keysToPrefetch(
  fragments: readonly FragmentKeyInfo[],
  fromIndex: number,
  ahead: number,
): KeyRef[] {
  const seen = new Set<string>();
  const refs: KeyRef[] = [];
  for (let i = Math.max(0, fromIndex); i < fragments.length && seen.size < ahead + 1; i++) {
    const uri = fragments[i]?.keyUri;
    if (!uri || seen.has(uri) || !isBlindcastKeyUri(uri)) continue;
    seen.add(uri);
    try {
      refs.push(parseKeyUri(uri));
    } catch {
      // A malformed URI is reported when hls.js requests that key; prefetch skips it.
    }
  }
  return refs;
}
