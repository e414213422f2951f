import {
  type CreateLeaseInput,
  type CreateLeaseResult,
  type Lease,
  type LeaseLookup,
  type LeaseStore,
  newLeaseId,
  type ReleaseLeaseInput,
  type ReleaseLeaseResult,
  type RenewLeaseInput,
  type RenewLeaseResult,
} from "../lease-store.js";

export interface MemoryLeaseStoreOptions {
  /** Clock in milliseconds since the epoch; defaults to `Date.now` (so fake timers drive it). */
  now?: () => number;
  /**
   * The most leases held at once, live or recently expired (about 0.5 KB each). Past it, leases
   * that have expired go first; when all are live, creating one fails and the server answers 503.
   * Default 100000.
   */
  maxLeases?: number;
}

/** Thrown by `create` when the store holds `maxLeases` live leases. */
export class LeaseStoreFullError extends Error {
  constructor(maxLeases: number) {
    super(`The memory lease store holds its maximum of ${maxLeases} live leases`);
    this.name = "LeaseStoreFullError";
  }
}

export const DEFAULT_MAX_MEMORY_LEASES = 100_000;
/** How long an expired lease stays readable as `expired` before it is swept away. */
const EXPIRED_GRACE_MS = 10 * 60_000;
const SWEEP_INTERVAL_MS = 30_000;
/**
 * Leases looked at per write while a sweep is under way: a sweep of a full store happens a slice
 * at a time, never as one pause of the event loop.
 */
const SWEEP_SLICE = 1000;

/**
 * Leases in this process's memory. Right for one long-lived process (the local server, tests);
 * wrong for Lambda, where each execution environment would hold its own leases.
 */
export function createMemoryLeaseStore(options: MemoryLeaseStoreOptions = {}): LeaseStore {
  const now = options.now ?? Date.now;
  const maxLeases = options.maxLeases ?? DEFAULT_MAX_MEMORY_LEASES;
  if (!Number.isInteger(maxLeases) || maxLeases < 1) {
    throw new TypeError("maxLeases must be a positive integer");
  }
  const leases = new Map<string, Lease>();
  const byViewer = new Map<string, Set<string>>();
  let lastSweep = now();
  let sweeping: Iterator<Lease> | undefined;

  const remove = (lease: Lease) => {
    leases.delete(lease.leaseId);
    const ids = byViewer.get(lease.viewerId);
    ids?.delete(lease.leaseId);
    if (ids?.size === 0) byViewer.delete(lease.viewerId);
  };

  /** Looks at up to `limit` leases from where the sweep stopped; true when the sweep is done. */
  const sweepSlice = (t: number, limit: number): boolean => {
    sweeping ??= leases.values();
    for (let seen = 0; seen < limit; seen++) {
      const next = sweeping.next();
      if (next.done) {
        sweeping = undefined;
        return true;
      }
      if (next.value.expiresAt.getTime() + EXPIRED_GRACE_MS <= t) remove(next.value);
    }
    return false;
  };

  // Sweeping on writes (not on a timer) keeps memory bounded without keeping the process alive;
  // a Map iterator survives deletes and inserts, so each write carries the sweep a slice further.
  const sweep = (t: number) => {
    if (sweeping === undefined && t - lastSweep < SWEEP_INTERVAL_MS) return;
    if (sweeping === undefined) lastSweep = t;
    sweepSlice(t, SWEEP_SLICE);
  };

  // When a full store was last scanned and held only live leases: none can give way before the
  // earliest of them expires, so until then a create fails at once instead of scanning again.
  let fullUntil = 0;

  /** At capacity: expired leases give way (their `expired` answer becomes `not_found`). */
  const makeRoom = (t: number) => {
    if (leases.size < maxLeases) return;
    if (t < fullUntil) throw new LeaseStoreFullError(maxLeases);
    sweeping = undefined;
    let earliest = Number.POSITIVE_INFINITY;
    for (const lease of leases.values()) {
      const expires = lease.expiresAt.getTime();
      if (expires <= t) remove(lease);
      else if (expires < earliest) earliest = expires;
    }
    if (leases.size >= maxLeases) {
      fullUntil = earliest;
      throw new LeaseStoreFullError(maxLeases);
    }
  };

  const copy = (lease: Lease): Lease => ({ ...lease, expiresAt: new Date(lease.expiresAt) });

  return {
    async create(input: CreateLeaseInput): Promise<CreateLeaseResult> {
      const t = now();
      sweep(t);
      const ids = byViewer.get(input.viewerId) ?? new Set<string>();
      if (input.maxConcurrentLeases !== undefined) {
        let active = 0;
        for (const id of ids) {
          const lease = leases.get(id);
          if (lease && lease.expiresAt.getTime() > t) active++;
        }
        if (active >= input.maxConcurrentLeases) return { ok: false, reason: "limit", activeLeases: active };
      }
      makeRoom(t);
      const lease: Lease = {
        leaseId: newLeaseId(),
        contentId: input.contentId,
        viewerId: input.viewerId,
        expiresAt: new Date(t + input.ttlSeconds * 1000),
      };
      leases.set(lease.leaseId, lease);
      ids.add(lease.leaseId);
      byViewer.set(input.viewerId, ids);
      return { ok: true, lease: copy(lease) };
    },

    async get(leaseId: string): Promise<LeaseLookup> {
      const lease = leases.get(leaseId);
      if (!lease) return { status: "not_found" };
      const live = lease.expiresAt.getTime() > now();
      return { status: live ? "live" : "expired", lease: copy(lease) };
    },

    async renew(input: RenewLeaseInput): Promise<RenewLeaseResult> {
      const lease = leases.get(input.leaseId);
      if (!lease) return { status: "not_found" };
      if (lease.viewerId !== input.viewerId) return { status: "wrong_viewer" };
      const t = now();
      if (lease.expiresAt.getTime() <= t) return { status: "expired" };
      lease.expiresAt = new Date(t + input.ttlSeconds * 1000);
      return { status: "renewed", lease: copy(lease) };
    },

    async release(input: ReleaseLeaseInput): Promise<ReleaseLeaseResult> {
      const lease = leases.get(input.leaseId);
      if (!lease) return { status: "not_found" };
      if (lease.viewerId !== input.viewerId) return { status: "wrong_viewer" };
      remove(lease);
      return { status: "released" };
    },

    // Always reachable: it is this process.
    async ping(): Promise<void> {},
  };
}
