import type { BlindcastPlayerError, PlayerErrorCode } from "./errors.js";
import type { LeaseInfo } from "./lease.js";

/** A key arrived from the key server (each key once per player). Never carries the key bytes. */
export interface KeyLoadedEvent {
  contentId: string;
  /** Absent for the content key. */
  epoch: number | undefined;
  /** Time until the key was in hand, in ms: waiting for the lease and retries included. */
  durationMs: number;
  /** Fetched ahead of need (rotation prefetch, or at load), not on hls.js' request. */
  prefetch: boolean;
}

export interface LeaseLostEvent {
  contentId: string;
  code: PlayerErrorCode;
  /** The key server's reason, or what went wrong locally. */
  reason: string;
}

export type PlayerEventMap = {
  keyloaded: KeyLoadedEvent;
  leasecreated: LeaseInfo;
  leaserenewed: LeaseInfo;
  leasereleased: LeaseInfo;
  leaselost: LeaseLostEvent;
  error: BlindcastPlayerError;
};

export type PlayerEvent = keyof PlayerEventMap;
