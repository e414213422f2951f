import { createEmitter } from "./emitter.js";
import { BlindcastPlayerError } from "./errors.js";
import type { PlayerEventMap } from "./events.js";
import { createKeyServerClient, keysOf, parseJson } from "./key-server-client.js";
import { type KeyRef, keyName } from "./key-uri.js";
import { asPlayerError, createLeaseKeeper, type LeaseInfo } from "./lease-keeper.js";
import { type KeySessionOptions, resolveSessionOptions } from "./options.js";

/** The most keys the key server sends for one `POST {keyServerUrl}/{contentId}/keys`. */
const MAX_KEYS_PER_REQUEST = 8;

/**
 * The key machinery without hls.js: token, lease, key cache, retries and events. `createPlayer`
 * builds on it; use it directly to give Blindcast keys to an hls.js instance you manage.
 */
export interface KeySession {
  on<E extends keyof PlayerEventMap>(event: E, listener: (payload: PlayerEventMap[E]) => void): () => void;
  off<E extends keyof PlayerEventMap>(event: E, listener: (payload: PlayerEventMap[E]) => void): void;
  /**
   * Starts the lease for `contentId` at once, in parallel with whatever else is loading, and
   * optionally fetches `firstKey` as soon as the lease exists.
   */
  start(contentId: string, firstKey?: KeyRef): void;
  /** The key, from memory or the key server; each key is fetched at most once. */
  key(ref: KeyRef): Promise<Uint8Array>;
  /** Fetches a key ahead of need (once: held keys are not fetched again); failures surface when the key is actually requested. */
  prefetch(ref: KeyRef): void;
  readonly lease: LeaseInfo | undefined;
  /** The error that ended the session, if one did. */
  readonly failure: BlindcastPlayerError | undefined;
  readonly prefetchKeys: number;
  /** Ends the session with `error` (emitted as a fatal `error` event), unless it already ended. */
  fail(error: BlindcastPlayerError): void;
  /**
   * Stops renewals, releases the lease (keepalive; one being created is released once created)
   * and overwrites every key fetched, including those handed to hls.js by the loader.
   */
  destroy(): Promise<void>;
}

export function createKeySession(options: KeySessionOptions): KeySession {
  const settings = resolveSessionOptions(options);
  const events = createEmitter<PlayerEventMap>();
  const lifetime = new AbortController();
  const { signal } = lifetime;
  const request = createKeyServerClient(settings.keyServerUrl, settings.getToken, settings.retry, signal);
  let failure: BlindcastPlayerError | undefined;

  const fail = (error: BlindcastPlayerError) => {
    if (failure || signal.aborted) return;
    error.fatal = true;
    failure = error;
    leases.stop();
    events.emit("error", error);
  };
  const leases = createLeaseKeeper(request, events, settings.leases, settings.retry, signal, fail);

  // Every key goes through one URL per title, `POST {keyServerUrl}/{contentId}/keys`: browsers
  // cache CORS preflights per URL, so a GET per key would cost a preflight (a round trip) per
  // key, and a seek to a key not in hand two round trips. Keys asked for in one turn of the
  // microtask queue (hls.js' key and the prefetch behind it) leave in one request.
  let batch: { id: string; keys: (number | string)[]; answer: Promise<Map<string, Uint8Array>> } | undefined;
  let title: string | undefined; // the content whose URL was last used
  let usedSinceRenewal = false;

  // `ref`: the first key asked for, named in errors.
  const titleKeys = (ref: KeyRef, keys: (number | string)[], leaseId?: string) => {
    title = ref.contentId;
    usedSinceRenewal = true;
    return request(`/${title}/keys`, { keys }, leaseId, ref);
  };

  async function batched(ref: KeyRef, leaseId: string | undefined) {
    const id = `${ref.contentId} ${leaseId}`;
    if (batch?.id !== id || batch.keys.length === MAX_KEYS_PER_REQUEST) {
      const keys: (number | string)[] = [];
      batch = {
        id,
        keys,
        // Leaves a microtask later, with every key asked for meanwhile.
        answer: (async () => {
          await 0;
          if (batch?.keys === keys) batch = undefined;
          return keysOf(parseJson(await titleKeys(ref, keys, leaseId)), ref.contentId);
        })(),
      };
    }
    batch.keys.push(ref.epoch ?? "content");
    return (await batch.answer).get(keyName(ref));
  }

  // A browser keeps a preflight for its max-age at most (Chromium caps it at 2 hours, Safari
  // at 10 minutes), counted from when it was made, however often the URL is used since. So
  // that a seek finds it still there, the title's URL is used again at each lease renewal
  // when no key went through it since the previous one: an expired preflight is made again
  // within two renewals, not at the next seek. An empty list checks the lease and derives nothing.
  events.on("leaserenewed", ({ contentId, leaseId }) => {
    if (title === contentId && !usedSinceRenewal) {
      titleKeys({ contentId }, [], leaseId).catch(() => {});
    }
    usedSinceRenewal = false;
  });

  // Keys held or being fetched, by name: concurrent requests for one key share a single fetch, and
  // a failed fetch is forgotten so a later request can try again. Never persisted anywhere.
  const keys = new Map<string, Promise<Uint8Array>>();
  const held: Uint8Array[] = []; // every key fetched, overwritten at destroy

  async function fetchKey(ref: KeyRef, name: string, prefetch: boolean): Promise<Uint8Array> {
    const started = performance.now();
    let leaseId: string | undefined;
    let bytes: Uint8Array | undefined;
    try {
      leaseId = await leases.leaseIdFor(ref);
      // A key asked for with the lease came with it: no request of its own.
      bytes = leases.take(ref) ?? (await batched(ref, leaseId));
      // Answers hold only keys of 16 bytes (`keysOf`): a key missing was not one.
      if (!bytes)
        throw new BlindcastPlayerError("KEY_INVALID", `Key server answered no 16-byte key for ${name}`, ref);
    } catch (error) {
      keys.delete(name);
      if (!signal.aborted) {
        const playerError = asPlayerError(error);
        // Refused for its lease: the lease is lost (reported as such), unless none is held.
        const leaseLost =
          /^LEASE_(LOST|EXPIRED)$/.test(playerError.code) && leases.lost(playerError, leaseId);
        if (!leaseLost && !prefetch) fail(playerError);
      }
      throw error;
    }
    events.emit("keyloaded", {
      contentId: ref.contentId,
      epoch: ref.epoch,
      durationMs: performance.now() - started,
      prefetch,
    });
    // A fetch that ends after destroy must not leave a key behind.
    if (signal.aborted) bytes.fill(0);
    signal.throwIfAborted();
    held.push(bytes);
    return bytes;
  }

  async function load(ref: KeyRef, prefetch: boolean): Promise<Uint8Array> {
    if (failure) throw failure;
    signal.throwIfAborted();
    const name = keyName(ref);
    if (!keys.has(name)) keys.set(name, fetchKey(ref, name, prefetch));
    return keys.get(name)!;
  }

  return {
    on: events.on,
    off: events.off,
    start(contentId, firstKey) {
      if (failure || signal.aborted) return;
      void leases.start(contentId);
      // The first key comes with the lease: one request (and one CORS preflight) for both.
      if (firstKey) load(firstKey, true).catch(() => {});
    },
    key: (ref) => load(ref, false),
    prefetch(ref) {
      load(ref, true).catch(() => {});
    },
    get lease() {
      return leases.current;
    },
    get failure() {
      return failure;
    },
    prefetchKeys: settings.prefetchKeys,
    fail,
    async destroy() {
      if (signal.aborted) return;
      leases.stop();
      const release = leases.release();
      lifetime.abort(new Error("key session destroyed"));
      for (const bytes of held) bytes.fill(0);
      held.length = 0;
      keys.clear();
      await release;
      events.clear();
    },
  };
}
