import { BlindcastPlayerError } from "./errors.js";

/**
 * Playlists name keys by content and epoch, never by server, so one packaged stream plays against
 * any key server:
 *
 *     #EXT-X-KEY:METHOD=AES-128,URI="blindcast://keys/movie-42/7",IV=0x…
 *
 * `blindcast://keys/{contentId}` names the content key, `blindcast://keys/{contentId}/{epoch}`
 * the key of one rotation epoch. The player fetches them from `{keyServerUrl}/{contentId}` and
 * `{keyServerUrl}/{contentId}/{epoch}`.
 */
export const KEY_URI_PREFIX = "blindcast://keys/";

export interface KeyRef {
  contentId: string;
  /** Absent for the content key. */
  epoch?: number | undefined;
}

/**
 * Whether a string is a contentId the key derivation contract accepts: 1 to 128 of
 * `A-Z a-z 0-9 . _ ~ -`, and not `.` or `..`.
 */
export const isContentId = (value: unknown): value is string =>
  typeof value === "string" && /^(?!\.\.?$)[\w.~-]{1,128}$/.test(value);

/** The largest epoch: 2^32 - 1. */
export const MAX_EPOCH = 2 ** 32 - 1;

export function isBlindcastKeyUri(uri: string): boolean {
  return uri.startsWith(KEY_URI_PREFIX);
}

/** Parses a blindcast key URI; throws `INVALID_KEY_URI` for anything not exactly of that form. */
export function parseKeyUri(uri: string): KeyRef {
  // KEY_URI_PREFIX, a contentId, and optionally an epoch in decimal without leading zeros.
  const [, contentId, epoch] = /^blindcast:\/\/keys\/([^/]*)(?:\/(0|[1-9]\d*))?$/.exec(uri) ?? [];
  // Without an epoch, +undefined is NaN: never past MAX_EPOCH.
  if (!isContentId(contentId) || +(epoch as string) > MAX_EPOCH) {
    throw new BlindcastPlayerError(
      "INVALID_KEY_URI",
      `Key URI "${uri.slice(0, 200)}" is not of the form ${KEY_URI_PREFIX}{contentId}[/{epoch}]`,
    );
  }
  return epoch === undefined ? { contentId } : { contentId, epoch: +epoch };
}

export function formatKeyUri(ref: KeyRef): string {
  return KEY_URI_PREFIX + keyName(ref);
}

/** Where a key lives on a key server whose base URL is `keyServerUrl` (…/keys). */
export function keyUrl(keyServerUrl: string, ref: KeyRef): string {
  return `${keyServerUrl}/${keyName(ref)}`;
}

/** `{contentId}` or `{contentId}/{epoch}`: the key's name, as in its URI. */
export function keyName(ref: KeyRef): string {
  return ref.epoch === undefined ? ref.contentId : `${ref.contentId}/${ref.epoch}`;
}
