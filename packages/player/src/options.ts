import { BlindcastPlayerError } from "./errors.js";
import type { ResolvedLeaseSettings } from "./lease-keeper.js";
import { DEFAULT_RETRY, type ResolvedRetry, type RetrySettings } from "./retry.js";
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
  getToken: TokenProvider | undefined;
  leases: ResolvedLeaseSettings;
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
    throw invalidOptions("getToken must be a function returning a token (or a promise of one)");
  }
  const leases = resolveLeases(options.leases);
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  for (const [name, value] of Object.entries(retry)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw invalidOptions(`retry.${name} must be a non-negative number`);
    }
  }
  if (!Number.isInteger(retry.maxRetries) || retry.maxRetries > 20) {
    throw invalidOptions("retry.maxRetries must be an integer from 0 to 20");
  }
  if (retry.timeoutMs < 100) throw invalidOptions("retry.timeoutMs must be at least 100");
  const prefetchKeys = options.prefetchKeys ?? 2;
  if (!Number.isInteger(prefetchKeys) || prefetchKeys < 0 || prefetchKeys > 16) {
    throw invalidOptions("prefetchKeys must be an integer from 0 to 16");
  }
  return { keyServerUrl, getToken: options.getToken, leases, retry, prefetchKeys };
}

function resolveKeyServerUrl(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw invalidOptions("keyServerUrl is required, e.g. https://keys.example.com/keys");
  }
  let url: URL;
  try {
    const base = (globalThis as { location?: { href?: string } }).location?.href;
    url = new URL(value, base);
  } catch {
    throw invalidOptions(`keyServerUrl "${value}" is not a valid URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw invalidOptions(`keyServerUrl must be http(s), not ${url.protocol}`);
  }
  if (url.search || url.hash) throw invalidOptions("keyServerUrl must not have a query or fragment");
  return url.href.replace(/\/+$/, "");
}

function resolveLeases(value: KeySessionOptions["leases"]): ResolvedLeaseSettings {
  if (value === undefined || value === true) return { enabled: true, required: false, renewAt: 0.5 };
  if (value === false) return { enabled: false, required: false, renewAt: 0.5 };
  if (typeof value !== "object" || value === null)
    throw invalidOptions("leases must be a boolean or { required, renewAt }");
  const renewAt = value.renewAt ?? 0.5;
  if (typeof renewAt !== "number" || renewAt < 0.1 || renewAt > 0.9) {
    throw invalidOptions("leases.renewAt must be a fraction from 0.1 to 0.9");
  }
  return { enabled: true, required: value.required === true, renewAt };
}
