import { createEmitter } from "./emitter.js";
import { BlindcastPlayerError } from "./errors.js";
import type { PlayerEventMap } from "./events.js";
import { createKeyServerClient, keysOf, parseJson } from "./key-server-client.js";
import { type KeyRef, keyName } from "./key-uri.js";
import { asPlayerError, type LeaseInfo, parseLease } from "./lease.js";
import { type KeySessionOptions, resolveSessionOptions } from "./options.js";
import { backoffDelay, sleep } from "./retry.js";

/** The most keys the key server sends for one `POST {keyServerUrl}/{contentId}/keys`. */
const MAX_KEYS_PER_REQUEST = 8;
/** The most keys the key server sends with a new lease. */
const MAX_LEASE_KEYS = 4;

/** A lease held, or being created. */
interface Held {
  contentId: string;
  /** Settles once creation finished: the lease, or undefined where the server has leases off. */
  ready?: Promise<LeaseInfo | undefined>;
  /** Epochs of the keys to ask for with the lease ("content" for the content key); undefined once sent. */
  keys: (number | string)[] | undefined;
  lease?: LeaseInfo;
}

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
  const { leases, retry } = settings; // leases: undefined when off
  const events = createEmitter<PlayerEventMap>();
  const lifetime = new AbortController();
  const { signal } = lifetime;
  const request = createKeyServerClient(settings.keyServerUrl, settings.getToken, retry, signal);
  let failure: BlindcastPlayerError | undefined;

  const fail = (error: BlindcastPlayerError) => {
    if (failure || signal.aborted) return;
    error.fatal = true;
    failure = error;
    stopLeases();
    events.emit("error", error);
  };

  // The lease: created when first needed (or at `start`), renewed before it expires, renewals
  // retried while it is still valid, released at the end. A lease that is lost or expires ends
  // the session.
  let held: Held | undefined;
  let stopped = false; // no renewals, and no keys kept from lease answers
  const gone = (h: Held) => stopped || held !== h;
  // The held lease's renewal, and its local deadline (ms since epoch): request start + TTL, so
  // clock skew cannot stretch it. A lease no longer held is neither renewed nor checked.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expiry = 0;
  // Keys that arrived with a lease, each handed over once.
  const delivered = new Map<string, Uint8Array>();

  // Sends a lease request and reads the lease the server answers.
  const leaseRequest = async (h: Held, path: string, json: unknown, retries: boolean) => {
    const sentAt = Date.now();
    // keepalive: not cut off by destroy, so a lease being created then is released, not left to expire.
    const body = parseJson(await request(path, json, undefined, { contentId: h.contentId }, true, retries));
    const lease = parseLease(body);
    if (!gone(h)) {
      h.lease = lease;
      expiry = sentAt + lease.ttlSeconds * 1000;
      clearTimeout(timer);
      timer = setTimeout(() => void renew(h), Math.max(1000, lease.ttlSeconds * 1000 * leases!.renewAt));
    }
    // Keys sent with a new lease (servers that do not know `keys` send none: they are fetched).
    // After stop, nobody would take or wipe them.
    for (const [name, key] of keysOf(body, h.contentId)) stopped ? key.fill(0) : delivered.set(name, key);
    return lease;
  };

  const createLease = async (h: Held) => {
    const json = { contentId: h.contentId, keys: h.keys };
    h.keys = undefined;
    try {
      // `keys: []` when none: servers before `keys` ignore it, later ones send none.
      const lease = await leaseRequest(h, "/leases", json, true);
      events.emit("leasecreated", { ...lease });
      return lease;
    } catch (error) {
      const playerError = asPlayerError(error);
      if (playerError.serverCode === "leases_disabled" && !leases!.required) return undefined;
      if (held === h) fail(playerError);
      throw error;
    }
  };

  const renew = async (h: Held) => {
    for (let attempt = 0; !gone(h); attempt++) {
      try {
        // h.lease changes only when this succeeds.
        const lease = await leaseRequest(h, "/leases/renew", { leaseId: h.lease!.leaseId }, false);
        if (!gone(h)) {
          renewed(lease);
          events.emit("leaserenewed", { ...lease });
        }
        return;
      } catch (error) {
        if (gone(h)) return; // destroyed too: destroy stops the leases first
        const playerError = asPlayerError(error);
        if (playerError.code !== "KEY_SERVER_UNAVAILABLE") return leaseEnded(playerError);
        // Transient: keep trying while the lease is still valid (a timeout under 0 fires at once).
        const delay = backoffDelay(attempt, retry);
        const remaining = expiry - Date.now();
        await sleep(Math.min(delay, remaining), signal).catch(() => {});
        if (delay >= remaining && !gone(h)) {
          return leaseEnded(
            new BlindcastPlayerError("LEASE_EXPIRED", "Lease expired: not renewed in time", {
              contentId: h.contentId,
              cause: error,
            }),
          );
        }
      }
    }
  };

  // The lease is lost or expired: reported as `leaselost`, then as the session's failure.
  // Callers check that the lease is still held and not stopped.
  const leaseEnded = (error: BlindcastPlayerError) => {
    clearTimeout(timer);
    stopped = true;
    events.emit("leaselost", {
      contentId: held!.contentId,
      code: error.code,
      reason: error.reason ?? error.message,
    });
    fail(error);
  };

  /**
   * Starts creating a lease for `contentId`, asking the server to send `key` with it. The request
   * leaves a microtask later, so keys asked for meanwhile (by further calls, in order, up to the
   * server's 4) come with it too. A lease held for other content is released first, and the new
   * one created only once that release is done: one player holds at most one lease at a time
   * (`maxConcurrentLeases: 1` works). Returns undefined when leases are off.
   */
  const startLease = (contentId: string, key?: KeyRef) => {
    if (!leases) return;
    if (held?.contentId !== contentId) {
      const previous = held && releaseLease();
      const h: Held = { contentId, keys: [] };
      held = h;
      // One lease at a time: the next is created once the previous one is released (unless it
      // is superseded or stopped meanwhile), or a cap of one would refuse it.
      h.ready = Promise.resolve(previous).then(() => (gone(h) ? undefined : createLease(h)));
      // Creation failures are reported through fail(); key requests await `ready` themselves.
      h.ready.catch(() => {});
    }
    const { keys, ready } = held;
    if (key && keys && keys.length < MAX_LEASE_KEYS) keys.push(key.epoch ?? "content");
    return ready;
  };

  // Releases the lease with a keepalive request, so it still goes out while the page unloads.
  const releaseLease = async () => {
    const h = held;
    held = undefined;
    if (!h) return;
    clearTimeout(timer);
    const lease = h.lease ?? (await h.ready!.catch(() => undefined));
    if (!lease) return;
    try {
      // The id goes in the header, as on key requests, not the URL: access logs keep URLs.
      await request("/leases", undefined, lease.leaseId, undefined, true, false);
      events.emit("leasereleased", { ...lease });
    } catch {
      // Best effort: an unreleased lease still expires on the server after its TTL.
    }
  };

  const stopLeases = () => {
    stopped = true;
    clearTimeout(timer);
    for (const key of delivered.values()) key.fill(0);
    delivered.clear();
  };

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
  const renewed = ({ contentId, leaseId }: LeaseInfo) => {
    if (title === contentId && !usedSinceRenewal) {
      titleKeys({ contentId }, [], leaseId).catch(() => {});
    }
    usedSinceRenewal = false;
  };

  // Keys held or being fetched, by name: concurrent requests for one key share a single fetch, and
  // a failed fetch is forgotten so a later request can try again. Never persisted anywhere.
  const keys = new Map<string, Promise<Uint8Array>>();
  const fetched: Uint8Array[] = []; // every key fetched, overwritten at destroy

  async function fetchKey(ref: KeyRef, name: string, prefetch: boolean): Promise<Uint8Array> {
    const started = performance.now();
    let leaseId: string | undefined;
    let bytes: Uint8Array | undefined;
    try {
      // Starts a lease if none is held, asking for the key with it when its request has not left.
      leaseId = (await startLease(ref.contentId, ref))?.leaseId;
      // A key asked for with the lease came with it: no request of its own.
      const given = delivered.get(name);
      delivered.delete(name);
      bytes = given ?? (await batched(ref, leaseId));
      // Answers hold only keys of 16 bytes (`keysOf`): a key missing was not one.
      if (!bytes)
        throw new BlindcastPlayerError("KEY_INVALID", `Key server answered no 16-byte key for ${name}`, ref);
    } catch (error) {
      keys.delete(name);
      // Once destroyed, nothing is reported: leases are stopped, and fail() does nothing.
      const playerError = asPlayerError(error);
      // Refused for its lease: the lease is lost (reported as such), unless none is held (leases
      // off here but required by the server). A refusal of a lease already replaced (for other
      // content) ends nothing.
      const leaseLost = /^LEASE_(LOST|EXPIRED)$/.test(playerError.code) && held && !stopped;
      if (leaseLost && held?.lease?.leaseId === leaseId) leaseEnded(playerError);
      if (!leaseLost && !prefetch) fail(playerError);
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
    fetched.push(bytes);
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
      void startLease(contentId);
      // The first key comes with the lease: one request (and one CORS preflight) for both.
      if (firstKey) load(firstKey, true).catch(() => {});
    },
    key: (ref) => load(ref, false),
    prefetch(ref) {
      load(ref, true).catch(() => {});
    },
    get lease() {
      return held?.lease;
    },
    get failure() {
      return failure;
    },
    prefetchKeys: settings.prefetchKeys,
    fail,
    async destroy() {
      if (signal.aborted) return;
      stopLeases();
      const release = releaseLease();
      lifetime.abort(new Error("key session destroyed"));
      for (const bytes of fetched) bytes.fill(0);
      keys.clear();
      await release;
      events.clear();
    },
  };
}
