import type { LeaseStore } from "../lease-store.js";
import type { PublishOptions } from "./publish/options.js";

/** What `authenticate` answers: let the request through (optionally naming the viewer), or refuse it. */
export type AuthResult =
  | {
      ok: true;
      viewerId?: string;
      /** The caller may publish (get packaging keys, presign uploads), unless `authorizePublish` decides. */
      publisher?: boolean;
    }
  | { ok: false; status: number; reason: string };

/** What `authorizePublish` is asked about: the caller, as `authenticate` named it, and the request. */
export interface PublishIdentity {
  /** The caller as named by `authenticate` / `getViewerId`. */
  viewerId: string;
  /** What `authenticate` said (`publisher: true`), e.g. from a JWT scope. */
  publisher: boolean;
  /** The title asked about, so a publisher can be held to their own titles. */
  contentId: string;
  /** `keys`: keys for packaging; `uploads`: presigned upload URLs. */
  action: "keys" | "uploads";
}

/** One structured record per request. Never holds key bytes, tokens, lease ids or the master key. */
export interface AuditRecord {
  type: "blindcast.keys.request";
  time: string;
  requestId?: string | undefined;
  method: string;
  /** The route; `preflight` for a CORS preflight of a known route, `unmatched` when none matched. */
  route: RouteName | "preflight" | "unmatched";
  contentId?: string | undefined;
  epoch?: number | undefined;
  viewerId?: string | undefined;
  /** Keys asked for on `title_keys`, with a new lease, or by a publisher (`null`: the content key). */
  keys?: (number | null)[] | undefined;
  /** Upload URLs signed (`publish_uploads`). */
  files?: number | undefined;
  /** Bytes those uploads may write in all. */
  bytes?: number | undefined;
  status: number;
  /** Why the request was refused, when it was. */
  reason?: string | undefined;
  durationMs: number;
}

export type RouteName =
  | "content_key"
  | "epoch_key"
  | "title_keys"
  | "lease_create"
  | "lease_renew"
  | "lease_release"
  | "publish_keys"
  | "publish_uploads";

/** Where warnings and errors go; `console` by default. Messages never contain secrets. */
export interface KeyServerLogger {
  warn(message: string): void;
  error(message: string): void;
}

/**
 * Options shared by every adapter. `TEvent` is what the adapter hands to your callbacks: for the
 * Lambda and node:http adapters, an API Gateway event with lowercase header names.
 */
export interface KeyServerOptions<TEvent> {
  /** The master key, at least 16 bytes (32 recommended). Keep it in a secret store. */
  masterKey: Uint8Array;
  /** The HKDF salt, at least 16 bytes. */
  salt: Uint8Array;
  /** Comma-separated exact origins (`https://app.example.com`) or `*`; also accepts an array. */
  corsOrigins: string | readonly string[];
  /** Decides whether a request may proceed. Without it, keys are served to anyone. */
  authenticate?: (event: TEvent) => AuthResult | Promise<AuthResult>;
  /** Enables leases: every key request must then present a live lease. */
  leaseStore?: LeaseStore;
  /**
   * Names the viewer a lease belongs to, from a request `authenticate` has already verified
   * (refused without `authenticate`). Without it, the `viewerId` from `authenticate` is used, and
   * with leases on, `authenticate` must name one; without both, every request is the viewer
   * `"anonymous"`.
   */
  getViewerId?: (event: TEvent) => string | undefined | Promise<string | undefined>;
  /** Lease lifetime in seconds, 10 to 86400. Default 60. */
  leaseTtlSeconds?: number;
  /**
   * At most this many live leases per viewer; more answers 429. Default 16 when `authenticate`
   * names viewers; needs `authenticate` (without it all viewers are one).
   */
  maxConcurrentLeases?: number;
  /** Receives one record per request; `false` turns auditing off. Default: a JSON line on stdout. */
  audit?: false | ((record: AuditRecord) => void);
  /**
   * How many derived keys to keep in memory at most (keys unused for longest go first). Default
   * 10000 (about 1 MB); 0 derives on every request.
   */
  keyCacheSize?: number;
  /** Preflight cache lifetime in seconds (`Access-Control-Max-Age`). Default 7200. */
  corsMaxAgeSeconds?: number;
  logger?: KeyServerLogger;
  /**
   * Turns on the publisher routes: `POST /keys/publish/{contentId}/keys` (keys for packaging
   * without the master key) and, with `storage`, `POST /keys/publish/{contentId}/uploads`
   * (presigned uploads). Off by default; needs `authenticate`.
   */
  publish?: PublishOptions;
  /**
   * Decides who may use the publisher routes. Default: callers `authenticate` marks
   * `publisher: true` (`createJwtAuthenticator({ publisherScope })`). Viewers never may.
   */
  authorizePublish?: (event: TEvent, identity: PublishIdentity) => boolean | Promise<boolean>;
}

export const DEFAULT_LEASE_TTL_SECONDS = 60;
export const MIN_LEASE_TTL_SECONDS = 10;
export const MAX_LEASE_TTL_SECONDS = 86_400;
export const DEFAULT_CORS_MAX_AGE_SECONDS = 7200;
/** Live leases one viewer may hold when `maxConcurrentLeases` is not set: no one watches more. */
export const DEFAULT_MAX_CONCURRENT_LEASES = 16;
export const DEFAULT_KEY_CACHE_SIZE = 10_000;
/** Largest request body accepted by the viewer routes, in bytes. */
export const MAX_BODY_BYTES = 4096;
/** Largest request body accepted by the publisher routes (a presign request for 1,000 files). */
export const MAX_PUBLISH_BODY_BYTES = 512 * 1024;

/** A configuration mistake, thrown when the server is created so it fails at deploy, not per request. */
export class KeyServerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyServerConfigError";
  }
}
