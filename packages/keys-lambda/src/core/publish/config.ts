import { KeyServerConfigError } from "../options.js";
import {
  DEFAULT_MAX_FILE_BYTES,
  DEFAULT_UPLOAD_URL_TTL_SECONDS,
  MAX_UPLOAD_URL_TTL_SECONDS,
  MIN_UPLOAD_URL_TTL_SECONDS,
  type PublishOptions,
} from "./options.js";
import { type ResolvedStorage, resolveStorage } from "./storage.js";

/** `publish` options checked once, at start: what the publisher routes run with. */
export interface PublishConfig {
  storage: ResolvedStorage | undefined;
  /** Lifetime of upload URLs, in seconds. */
  ttl: number;
  maxFileBytes: number;
}

/**
 * Checks `publish` when the server is created, so a mistake is a config error at cold start,
 * not a 500 on the first publisher's request. Kept apart from the upload signer (./uploads.ts,
 * with aws4fetch), which ./routes.ts imports only at the first upload request: a server without
 * publishing (most Lambda deployments) never loads it, and a bundle leaves it out of the file
 * every cold start reads.
 */
export function resolvePublishConfig(options: PublishOptions): PublishConfig {
  if (typeof options !== "object" || options === null) {
    throw new KeyServerConfigError("publish must be an object ({} for the keys route alone)");
  }
  return {
    storage: options.storage === undefined ? undefined : resolveStorage(options.storage),
    ttl: integerOption(
      "publish.uploadUrlTtlSeconds",
      options.uploadUrlTtlSeconds ?? DEFAULT_UPLOAD_URL_TTL_SECONDS,
      MIN_UPLOAD_URL_TTL_SECONDS,
      MAX_UPLOAD_URL_TTL_SECONDS,
    ),
    maxFileBytes: integerOption(
      "publish.maxFileBytes",
      options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
      1,
      DEFAULT_MAX_FILE_BYTES,
    ),
  };
}

function integerOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new KeyServerConfigError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}
