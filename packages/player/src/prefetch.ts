import { formatKeyUri, isBlindcastKeyUri, type KeyRef, parseKeyUri } from "./key-uri.js";

/** What the prefetcher needs of a fragment: its key URI (undefined when clear). */
export interface FragmentKeyInfo {
  keyUri: string | undefined;
}

/**
 * The keys to have in hand when fragment `fromIndex` is about to load: its own key and the next
 * `ahead` distinct keys after it, in playlist order. With one epoch per N fragments this fetches
 * the next epoch's key N fragments before its boundary, so rotation never waits on the network.
 *
 * `live`: the playlist is a sliding window whose next segments are not named yet. Epochs are
 * consecutive, so the epoch after the last fragment's is added: its key is in hand before the
 * playlist names it, even with one epoch per segment at the live edge.
 */
export function keysToPrefetch(
  fragments: readonly FragmentKeyInfo[],
  fromIndex: number,
  ahead: number,
  live?: boolean,
): KeyRef[] {
  const seen = new Set<string>();
  const refs: KeyRef[] = [];
  const add = (uri: string | undefined) => {
    if (!uri || seen.has(uri) || !isBlindcastKeyUri(uri)) return;
    seen.add(uri);
    try {
      refs.push(parseKeyUri(uri));
    } catch {
      // A malformed URI is reported when hls.js requests that key; prefetch skips it.
    }
  };
  for (let i = Math.max(0, fromIndex); i < fragments.length && seen.size <= ahead; i++) {
    add(fragments[i]!.keyUri);
  }
  if (live) {
    add(fragments.at(-1)?.keyUri);
    const last = refs.at(-1);
    if (last?.epoch !== undefined) add(formatKeyUri({ ...last, epoch: last.epoch + 1 }));
  }
  return refs;
}
