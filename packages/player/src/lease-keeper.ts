import type { Emitter } from "./emitter.js";
import { BlindcastPlayerError } from "./errors.js";
import type { PlayerEventMap } from "./events.js";
import type { KeyServerClient } from "./key-server-client.js";
import { backoffDelay, type ResolvedRetry, sleep } from "./retry.js";

/** A lease as the player holds it. */
export interface LeaseInfo {
  leaseId: string;
  contentId: string;
  /** As the server stated it. */
  expiresAt: Date;
  ttlSeconds: number;
}

export interface ResolvedLeaseSettings {
  enabled: boolean;
  required: boolean;
  renewAt: number;
}

interface Held {
  contentId: string;
  /** Settles once creation finished: the lease, or undefined where the server has leases off. */
  ready: Promise<LeaseInfo | undefined>;
  lease?: LeaseInfo;
  /** Local deadline (ms since epoch): request start + TTL, so clock skew cannot stretch it. */
  localExpiry?: number;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * Creates the viewer's lease, renews it before it expires, retries failed renewals while it is
 * still valid, and releases it at the end. A lease that is lost or expires ends playback through
 * `onFatal`.
 */
export class LeaseKeeper {
  private held: Held | undefined;
  private stopped = false;

  constructor(
    private readonly client: KeyServerClient,
    private readonly events: Emitter<PlayerEventMap>,
    private readonly settings: ResolvedLeaseSettings,
    private readonly retry: ResolvedRetry,
    private readonly signal: AbortSignal,
    private readonly onFatal: (error: BlindcastPlayerError) => void,
  ) {}

  get current(): LeaseInfo | undefined {
    return this.held?.lease;
  }

  /** Starts creating a lease for `contentId` now (releasing one held for other content). */
  start(contentId: string): Promise<LeaseInfo | undefined> {
    if (!this.settings.enabled) return Promise.resolve(undefined);
    if (this.held?.contentId === contentId) return this.held.ready;
    if (this.held) void this.release();
    const held: Held = { contentId, ready: Promise.resolve(undefined) };
    held.ready = this.create(held);
    // Creation failures are reported through onFatal; key requests await `ready` themselves.
    held.ready.catch(() => {});
    this.held = held;
    return held.ready;
  }

  /** The lease id to send with a key request for `contentId`; starts a lease if none is held. */
  async leaseIdFor(contentId: string): Promise<string | undefined> {
    const lease = await this.start(contentId);
    return lease?.leaseId;
  }

  /**
   * Reports a key request refused for its lease. Returns false when no lease is held (leases off
   * here but required by the server), so the caller reports the error itself.
   */
  lost(error: BlindcastPlayerError): boolean {
    if (!this.held || this.stopped) return false;
    this.end(error);
    return true;
  }

  /** Releases the lease with a keepalive request, so it still goes out while the page unloads. */
  async release(): Promise<void> {
    const held = this.held;
    this.held = undefined;
    if (!held) return;
    clearTimeout(held.timer);
    const lease = held.lease ?? (await held.ready.catch(() => undefined));
    if (!lease) return;
    try {
      await this.client.request({
        method: "DELETE",
        path: `/leases/${lease.leaseId}`,
        keepalive: true,
        retry: false,
        outlivesPlayer: true,
        subject: { contentId: lease.contentId },
      });
      this.events.emit("leasereleased", { ...lease });
    } catch {
      // Best effort: an unreleased lease still expires on the server after its TTL.
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.held) clearTimeout(this.held.timer);
  }

  private async create(held: Held): Promise<LeaseInfo | undefined> {
    const sentAt = Date.now();
    try {
      const response = await this.client.request({
        method: "POST",
        path: "/leases",
        json: { contentId: held.contentId },
        subject: { contentId: held.contentId },
      });
      const lease = parseLease(await response.json());
      this.accept(held, lease, sentAt);
      this.events.emit("leasecreated", { ...lease });
      return lease;
    } catch (error) {
      if (
        error instanceof BlindcastPlayerError &&
        error.serverCode === "leases_disabled" &&
        !this.settings.required
      ) {
        return undefined;
      }
      if (!this.signal.aborted && this.held === held) this.onFatal(asPlayerError(error));
      throw error;
    }
  }

  private accept(held: Held, lease: LeaseInfo, sentAt: number): void {
    held.lease = lease;
    held.localExpiry = sentAt + lease.ttlSeconds * 1000;
    clearTimeout(held.timer);
    if (this.stopped) return;
    const renewIn = Math.max(1000, lease.ttlSeconds * 1000 * this.settings.renewAt);
    held.timer = setTimeout(() => void this.renew(held), renewIn);
  }

  private async renew(held: Held): Promise<void> {
    const lease = held.lease;
    if (!lease) return;
    for (let attempt = 0; ; attempt++) {
      if (this.stopped || this.held !== held) return;
      const sentAt = Date.now();
      try {
        const response = await this.client.request({
          method: "POST",
          path: "/leases/renew",
          json: { leaseId: lease.leaseId },
          retry: false,
          subject: { contentId: lease.contentId },
        });
        const renewed = parseLease(await response.json());
        if (this.stopped || this.held !== held) return;
        this.accept(held, renewed, sentAt);
        this.events.emit("leaserenewed", { ...renewed });
        return;
      } catch (error) {
        if (this.signal.aborted || this.held !== held) return;
        const playerError = asPlayerError(error);
        if (playerError.code !== "KEY_SERVER_UNAVAILABLE") return this.end(playerError);
        // Transient: keep trying while the lease is still valid.
        const delay = backoffDelay(attempt, this.retry);
        const remaining = (held.localExpiry ?? 0) - Date.now();
        if (delay >= remaining) {
          await sleep(Math.max(0, remaining), this.signal).catch(() => {});
          if (this.held !== held || this.stopped) return;
          return this.end(
            new BlindcastPlayerError("LEASE_EXPIRED", "Lease expired: it could not be renewed in time", {
              contentId: lease.contentId,
              cause: error,
            }),
          );
        }
        await sleep(delay, this.signal).catch(() => {});
      }
    }
  }

  private end(error: BlindcastPlayerError): void {
    const held = this.held;
    if (!held || this.stopped) return;
    clearTimeout(held.timer);
    this.stopped = true;
    const reason = error.reason ?? error.message;
    this.events.emit("leaselost", { contentId: held.contentId, code: error.code, reason });
    this.onFatal(error);
  }
}

function parseLease(body: unknown): LeaseInfo {
  const value = body as Partial<Record<keyof LeaseInfo, unknown>> | null;
  const expiresAt = typeof value?.expiresAt === "string" ? new Date(value.expiresAt) : undefined;
  if (
    typeof value?.leaseId !== "string" ||
    typeof value.contentId !== "string" ||
    typeof value.ttlSeconds !== "number" ||
    !(value.ttlSeconds > 0) ||
    !expiresAt ||
    Number.isNaN(expiresAt.getTime())
  ) {
    throw new BlindcastPlayerError("BAD_REQUEST", "Key server answered a malformed lease");
  }
  return { leaseId: value.leaseId, contentId: value.contentId, expiresAt, ttlSeconds: value.ttlSeconds };
}

export function asPlayerError(error: unknown): BlindcastPlayerError {
  if (error instanceof BlindcastPlayerError) return error;
  return new BlindcastPlayerError("KEY_SERVER_UNAVAILABLE", "Key server request failed", { cause: error });
}
