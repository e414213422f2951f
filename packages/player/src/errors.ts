/** Stable error codes: switch on these, not on messages. */
export type PlayerErrorCode =
  /** `createPlayer` or `load` was called with invalid options. */
  | "INVALID_OPTIONS"
  /** The browser has no Media Source Extensions (e.g. iOS Safari before 17.1). */
  | "MSE_UNSUPPORTED"
  /** A playlist names a key with a malformed blindcast: URI. */
  | "INVALID_KEY_URI"
  /** The key server answered 401, still after the token was refreshed, or `getToken` threw. */
  | "AUTH_FAILED"
  /** The key server refused with 403 for a reason other than the lease (origin, `authenticate`). */
  | "FORBIDDEN"
  /** The key server refused the request as malformed (400) or unknown (404). */
  | "BAD_REQUEST"
  /** The lease is gone: released, unknown to the server, or another viewer's. */
  | "LEASE_LOST"
  /** The lease expired: it could not be renewed in time. */
  | "LEASE_EXPIRED"
  /** The viewer already holds the most concurrent streams allowed (429). */
  | "LEASE_LIMIT"
  /** The key server answered a key that is not exactly 16 bytes. */
  | "KEY_INVALID"
  /**
   * The key server's answer cannot be used: a redirect (key and lease requests never follow
   * one), or a lease answer that is malformed or over 16 KiB.
   */
  | "INVALID_RESPONSE"
  /** The key server kept failing (5xx, network, timeouts) through every retry. */
  | "KEY_SERVER_UNAVAILABLE"
  /** Segments did not decrypt with the key served: wrong master key, or corrupted content. */
  | "DECRYPTION_FAILED"
  /** hls.js reported a fatal error of its own (a playlist or segment that cannot load, say). */
  | "PLAYBACK_ERROR";

export interface PlayerErrorDetails {
  /** HTTP status of the key server's answer, when there was one. */
  status?: number | undefined;
  /** The key server's machine-readable `code` (e.g. `lease_expired`), when it gave one. */
  serverCode?: string | undefined;
  /** The key server's reason (`error` field), fit to show a person. */
  reason?: string | undefined;
  contentId?: string | undefined;
  epoch?: number | undefined;
  /** Whether playback stopped because of it. */
  fatal?: boolean;
  cause?: unknown;
}

/** Every failure the player reports. Never carries key bytes or tokens. */
export class BlindcastPlayerError extends Error {
  declare readonly code: PlayerErrorCode;
  declare readonly status: number | undefined;
  declare readonly serverCode: string | undefined;
  declare readonly reason: string | undefined;
  declare readonly contentId: string | undefined;
  declare readonly epoch: number | undefined;
  declare fatal: boolean;

  constructor(code: PlayerErrorCode, message: string, details: PlayerErrorDetails = {}) {
    // Error reads only `cause` from its options: the details carry it.
    super(message, details);
    const { cause: _, ...fields } = details;
    Object.assign(this, fields, { name: "BlindcastPlayerError", code, fatal: details.fatal ?? true });
  }
}
