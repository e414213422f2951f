import type { Emitter } from "./emitter.js";
import { BlindcastPlayerError } from "./errors.js";
import type { PlayerEventMap } from "./events.js";
import { type KeyServerClient, keysOf, parseJson } from "./key-server-client.js";
import { type KeyRef, keyName } from "./key-uri.js";
import { backoffDelay, type ResolvedRetry, sleep } from "./retry.js";

/** The most keys the key server sends with a new lease. */
const MAX_LEASE_KEYS = 4;

/** A lease as the player holds it. */
export interface LeaseInfo {
  leaseId: string;
  contentId: string;
  /** As the server stated it. */
  expiresAt: Date;
  ttlSeconds: number;
}

export interface ResolvedLeaseSettings {
  required: boolean;
  renewAt: number;
}

interface Held {
  contentId: string;
  /** Settles once creation finished: the lease, or undefined where the server has leases off. */
  ready?: Promise<LeaseInfo | undefined>;
  /** Epochs of the keys to ask for with the lease ("content" for the content key); undefined once sent. */
  keys: (number | string)[] | undefined;
  lease?: LeaseInfo;
}

export interface LeaseKeeper {
  readonly current: LeaseInfo | undefined;
  /**
   * Starts creating a lease for `contentId`, asking the server to send `key` with it. The request
   * leaves a microtask later, so keys asked for meanwhile (by further calls, in order, up to the
   * server's 4) come with it too. A lease held for other content is released first, and the new
   * one created only once that release is done: one player holds at most one lease at a time
   * (`maxConcurrentLeases: 1` works). Returns undefined when leases are off.
   */
  start(contentId: string, key?: KeyRef): Promise<LeaseInfo | undefined> | undefined;
  /** A key that arrived with the lease, handed over once. */
  take(ref: KeyRef): Uint8Array | undefined;
  /**
   * The lease id to send with a request for the key `ref`; starts a lease if none is held, asking
   * for the key with it when the lease request has not left yet.
   */
  leaseIdFor(ref: KeyRef): Promise<string | undefined>;
  /**
   * Reports a key request refused for the lease `leaseId` it was sent with. Returns false when no
   * lease is held (leases off here but required by the server), so the caller reports the error
   * itself; a refusal of a lease already replaced (for other content) ends nothing.
   */
  lost(error: BlindcastPlayerError, leaseId: string | undefined): boolean;
  /** Releases the lease with a keepalive request, so it still goes out while the page unloads. */
  release(): Promise<void>;
  stop(): void;
}

/**
 * Creates the viewer's lease, renews it before it expires, retries failed renewals while it is
 * still valid, and releases it at the end. A lease that is lost or expires ends playback through
 * `onFatal`.
 */
export function createLeaseKeeper(
  request: KeyServerClient,
  events: Emitter<PlayerEventMap>,
  settings: ResolvedLeaseSettings | undefined, // undefined: leases off
  retry: ResolvedRetry,
  signal: AbortSignal,
  onFatal: (error: BlindcastPlayerError) => void,
): LeaseKeeper {
  let held: Held | undefined;
  let stopped = false;
  const delivered = new Map<string, Uint8Array>();
  const gone = (h: Held) => stopped || held !== h;
  // The held lease's renewal, and its local deadline (ms since epoch): request start + TTL, so
  // clock skew cannot stretch it. A lease no longer held is neither renewed nor checked.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expiry = 0;

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
      timer = setTimeout(() => void renew(h), Math.max(1000, lease.ttlSeconds * 1000 * settings!.renewAt));
    }
    // Keys sent with a new lease (servers that do not know `keys` send none: they are fetched).
    // After stop, nobody would take or wipe them.
    for (const [name, key] of keysOf(body, h.contentId)) stopped ? key.fill(0) : delivered.set(name, key);
    return lease;
  };

  const create = async (h: Held) => {
    const json = { contentId: h.contentId, keys: h.keys };
    h.keys = undefined;
    try {
      // `keys: []` when none: servers before `keys` ignore it, later ones send none.
      const lease = await leaseRequest(h, "/leases", json, true);
      events.emit("leasecreated", { ...lease });
      return lease;
    } catch (error) {
      if (
        error instanceof BlindcastPlayerError &&
        error.serverCode === "leases_disabled" &&
        !settings!.required
      ) {
        return undefined;
      }
      if (!signal.aborted && held === h) onFatal(asPlayerError(error));
      throw error;
    }
  };

  const renew = async (h: Held) => {
    const leaseId = h.lease!.leaseId;
    for (let attempt = 0; !gone(h); attempt++) {
      try {
        const lease = await leaseRequest(h, "/leases/renew", { leaseId }, false);
        if (!gone(h)) events.emit("leaserenewed", { ...lease });
        return;
      } catch (error) {
        if (signal.aborted || gone(h)) return;
        const playerError = asPlayerError(error);
        if (playerError.code !== "KEY_SERVER_UNAVAILABLE") return end(playerError);
        // Transient: keep trying while the lease is still valid.
        const delay = backoffDelay(attempt, retry);
        const remaining = expiry - Date.now();
        await sleep(Math.max(0, Math.min(delay, remaining)), signal).catch(() => {});
        if (delay >= remaining && !gone(h)) {
          return end(
            new BlindcastPlayerError("LEASE_EXPIRED", "Lease expired: not renewed in time", {
              contentId: h.contentId,
              cause: error,
            }),
          );
        }
      }
    }
  };

  const end = (error: BlindcastPlayerError) => {
    if (!held || stopped) return;
    clearTimeout(timer);
    stopped = true;
    events.emit("leaselost", {
      contentId: held.contentId,
      code: error.code,
      reason: error.reason ?? error.message,
    });
    onFatal(error);
  };

  const keeper: LeaseKeeper = {
    get current() {
      return held?.lease;
    },
    start(contentId, key) {
      if (!settings) return;
      if (held?.contentId !== contentId) {
        const previous = held && keeper.release();
        const h: Held = { contentId, keys: [] };
        held = h;
        // One lease at a time: the next is created once the previous one is released (unless it
        // is superseded or stopped meanwhile), or a cap of one would refuse it.
        h.ready = Promise.resolve(previous).then(() => (gone(h) ? undefined : create(h)));
        // Creation failures are reported through onFatal; key requests await `ready` themselves.
        h.ready.catch(() => {});
      }
      const { keys, ready } = held;
      if (key && keys && keys.length < MAX_LEASE_KEYS) keys.push(key.epoch ?? "content");
      return ready;
    },
    take(ref) {
      const name = keyName(ref);
      const key = delivered.get(name);
      delivered.delete(name);
      return key;
    },
    async leaseIdFor(ref) {
      return (await keeper.start(ref.contentId, ref))?.leaseId;
    },
    lost(error, leaseId) {
      if (!held || stopped) return false;
      if (held.lease?.leaseId === leaseId) end(error);
      return true;
    },
    async release() {
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
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      for (const key of delivered.values()) key.fill(0);
      delivered.clear();
    },
  };
  return keeper;
}

function parseLease(body: Record<string, unknown>): LeaseInfo {
  const value = body as Partial<Record<keyof LeaseInfo, unknown>>;
  const expiresAt = new Date(value.expiresAt as string);
  const { leaseId, contentId, ttlSeconds } = value;
  if (
    typeof leaseId !== "string" ||
    typeof contentId !== "string" ||
    !((ttlSeconds as number) > 0) ||
    !(expiresAt.getTime() > 0)
  ) {
    throw new BlindcastPlayerError("INVALID_RESPONSE", "Key server answered a malformed lease");
  }
  return { leaseId, contentId, expiresAt, ttlSeconds: ttlSeconds as number };
}

export function asPlayerError(error: unknown): BlindcastPlayerError {
  if (error instanceof BlindcastPlayerError) return error;
  return new BlindcastPlayerError("KEY_SERVER_UNAVAILABLE", "Key server request failed", { cause: error });
}
