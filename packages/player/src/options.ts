import { BlindcastPlayerError } from "./errors.js";
import type { ResolvedLeaseSettings } from "./lease.js";
import type { ResolvedRetry, RetrySettings } from "./retry.js";
import type { TokenProvider } from "./token.js";

export interface LeaseSettings {
  /**
   * Fail when the key server has leases turned off. Default false: the player then plays
   * without a lease, as the server allows.
   */
  required?: boolean;
  /** Renew once this fraction of the lease's TTL has passed, 0.1 to 0.9. Default 0.5. */
  renewAt?: number;
}

/** Options of the key machinery, shared by `createPlayer` and `createKeySession`. */
export interface KeySessionOptions {
  /** Base URL of the key routes, e.g. `https://abc123.execute-api.us-east-1.amazonaws.com/keys`. */
  keyServerUrl: string;
  /** Supplies the viewer's bearer token; refreshed once after a 401. */
  getToken?: TokenProvider;
  /** Leases: on by default; `false` never creates one. */
  leases?: boolean | LeaseSettings;
  /** Retries of failed key server requests. */
  retry?: RetrySettings;
  /**
   * How many distinct keys past the current fragment's to fetch ahead (rotation prefetch).
   * Default 2; 0 turns prefetching off.
   */
  prefetchKeys?: number;
}

export interface ResolvedSessionOptions {
  keyServerUrl: string;
  getToken?: TokenProvider | undefined;
  leases: ResolvedLeaseSettings | undefined;
  retry: ResolvedRetry;
  prefetchKeys: number;
}

export function invalidOptions(message: string): BlindcastPlayerError {
  return new BlindcastPlayerError("INVALID_OPTIONS", message);
}

/** Validates options up front, so a typo fails at `createPlayer` rather than mid-playback. */
export function resolveSessionOptions(options: KeySessionOptions): ResolvedSessionOptions {
  if (typeof options !== "object" || options === null)
    throw invalidOptions("options are required: { keyServerUrl }");
  const keyServerUrl = resolveKeyServerUrl(options.keyServerUrl);
  if (options.getToken !== undefined && typeof options.getToken !== "function") {
    throw invalidOptions("getToken must be a function");
  }
  const leases = resolveLeases(options.leases);
  const retry: ResolvedRetry = {
    maxRetries: 4,
    baseDelayMs: 300,
    maxDelayMs: 5000,
    timeoutMs: 10_000,
    ...options.retry,
  };
  const prefetchKeys = options.prefetchKeys ?? 2;
  checkInteger("retry.maxRetries", retry.maxRetries, 0, 20);
  checkInteger("retry.baseDelayMs", retry.baseDelayMs, 0, 60_000);
  checkInteger("retry.maxDelayMs", retry.maxDelayMs, 0, 300_000);
  checkInteger("retry.timeoutMs", retry.timeoutMs, 100, 300_000);
  checkInteger("prefetchKeys", prefetchKeys, 0, 16);
  return { ...options, keyServerUrl, leases, retry, prefetchKeys };
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidOptions(`${name} must be an integer from ${min} to ${max}`);
  }
}

function resolveKeyServerUrl(value: unknown): string {
  try {
    const url = new URL(value as string, (globalThis as { location?: { href?: string } }).location?.href);
    if (value && typeof value === "string" && /^https?:$/.test(url.protocol) && !url.search && !url.hash) {
      return url.href.replace(/\/+$/, "");
    }
  } catch {
    // Reported below, with what a valid value looks like.
  }
  throw invalidOptions(
    `keyServerUrl must be an http(s) URL without query or fragment (got ${JSON.stringify(value)})`,
  );
}

/** Lease settings, or undefined when leases are off. */
function resolveLeases(value: KeySessionOptions["leases"]): ResolvedLeaseSettings | undefined {
  if (value === undefined || typeof value === "boolean")
    return value === false ? undefined : { required: false, renewAt: 0.5 };
  const renewAt = value?.renewAt ?? 0.5;
  if (!value || typeof value !== "object" || !(renewAt >= 0.1 && renewAt <= 0.9)) {
    throw invalidOptions("leases must be a boolean or { required?, renewAt: 0.1 to 0.9 }");
  }
  return { required: value.required === true, renewAt };
}
