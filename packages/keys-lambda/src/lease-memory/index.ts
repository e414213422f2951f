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
}

/** How long an expired lease stays readable as `expired` before it is swept away. */
const EXPIRED_GRACE_MS = 10 * 60_000;
const SWEEP_INTERVAL_MS = 30_000;

/**
 * Leases in this process's memory. Right for one long-lived process (the local server, tests);
 * wrong for Lambda, where each execution environment would hold its own leases.
 */
export function createMemoryLeaseStore(options: MemoryLeaseStoreOptions = {}): LeaseStore {
  const now = options.now ?? Date.now;
  const leases = new Map<string, Lease>();
  const byViewer = new Map<string, Set<string>>();
  let lastSweep = now();

  const remove = (lease: Lease) => {
    leases.delete(lease.leaseId);
    const ids = byViewer.get(lease.viewerId);
    ids?.delete(lease.leaseId);
    if (ids?.size === 0) byViewer.delete(lease.viewerId);
  };

  // Sweeping on writes (not on a timer) keeps memory bounded without keeping the process alive.
  const sweep = (t: number) => {
    if (t - lastSweep < SWEEP_INTERVAL_MS) return;
    lastSweep = t;
    for (const lease of leases.values()) {
      if (lease.expiresAt.getTime() + EXPIRED_GRACE_MS <= t) remove(lease);
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
  };
}
