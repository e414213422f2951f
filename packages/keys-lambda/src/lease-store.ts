/**
 * The lease contract between the key server and any storage backend. Stores judge expiry by their
 * own clock (a database's `now()`, say), so callers never pass a time in.
 */

/** A viewer's permission to fetch keys of one piece of content until `expiresAt`. */
export interface Lease {
  /** Unguessable id (at least 128 bits of randomness); the viewer presents it with key requests. */
  leaseId: string;
  contentId: string;
  viewerId: string;
  expiresAt: Date;
}

export interface CreateLeaseInput {
  contentId: string;
  viewerId: string;
  ttlSeconds: number;
  /** When set, refuse the lease if the viewer already holds this many live leases. */
  maxConcurrentLeases?: number | undefined;
}

export type CreateLeaseResult =
  | { ok: true; lease: Lease }
  | { ok: false; reason: "limit"; activeLeases: number };

export type LeaseLookup =
  | { status: "live"; lease: Lease }
  | { status: "expired"; lease: Lease }
  | { status: "not_found" };

export interface RenewLeaseInput {
  leaseId: string;
  viewerId: string;
  ttlSeconds: number;
}

export type RenewLeaseResult =
  | { status: "renewed"; lease: Lease }
  | { status: "expired" }
  | { status: "not_found" }
  | { status: "wrong_viewer" };

export interface ReleaseLeaseInput {
  leaseId: string;
  viewerId: string;
}

export type ReleaseLeaseResult =
  | { status: "released" }
  | { status: "not_found" }
  | { status: "wrong_viewer" };

/**
 * Storage for leases. Implement it to keep leases anywhere; run the conformance suite against
 * your implementation. Any method may throw when the backend is unreachable: the server then
 * answers 503 and never hands out a key without a lease check.
 */
export interface LeaseStore {
  /** Creates a lease, atomically enforcing `maxConcurrentLeases` for the viewer. */
  create(input: CreateLeaseInput): Promise<CreateLeaseResult>;
  /** Looks a lease up; `expired` means it exists but its time has passed. */
  get(leaseId: string): Promise<LeaseLookup>;
  /** Extends a live lease of this viewer to now + ttlSeconds. */
  renew(input: RenewLeaseInput): Promise<RenewLeaseResult>;
  /** Ends a lease of this viewer at once, freeing its slot. */
  release(input: ReleaseLeaseInput): Promise<ReleaseLeaseResult>;
  /**
   * Optional, for readiness probes (`/readyz` of `blindcast-keys`): resolves when the backend
   * answers a trivial query, throws when it does not. Cheap (no lease is read or written) and
   * bounded like the other calls: a backend that stops answering must make it throw, not hang (the
   * server gives up after its own bound anyway). A store without it is reported ready unchecked.
   */
  ping?(): Promise<void>;
}

/**
 * Thrown by a store that gave up on a call within its time bound (a database that stopped
 * answering, a lock held elsewhere): the key server answers 503 with `Retry-After`, and logs only
 * this name. Stores of your own may throw it too.
 */
export class LeaseStoreTimeoutError extends Error {
  override readonly name = "LeaseStoreTimeoutError";
}

/** The longest delay a timer can wait (2^31 - 1 ms); a longer one would fire at once. */
export const MAX_TIMEOUT_MILLIS = 2_147_483_647;

/**
 * A store's option that is a whole number within bounds, or its default when not given: a typo'd
 * timeout must fail at start-up, not turn into "no timeout" or "time out at once".
 */
export function boundedInteger(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const shown =
      typeof value === "number" || typeof value === "string" ? JSON.stringify(value) : typeof value;
    throw new TypeError(`${name} must be a whole number from ${min} to ${max}, not ${shown}`);
  }
  return value;
}

const LEASE_ID_BYTES = 16;
const LEASE_ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/** A fresh lease id: 128 random bits from the platform CSPRNG, as 32 lowercase hex digits. */
export function newLeaseId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(LEASE_ID_BYTES));
  let id = "";
  for (const byte of bytes) id += byte.toString(16).padStart(2, "0");
  return id;
}

/**
 * Whether a string could be a lease id of any store: 16 to 128 characters of `A-Z a-z 0-9 _ -`
 * (hex, base64url and UUIDs all fit). Checked before a store is asked, so junk never reaches it.
 */
export function isLeaseIdFormat(value: unknown): value is string {
  return typeof value === "string" && LEASE_ID_PATTERN.test(value);
}
