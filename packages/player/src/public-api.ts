// Everything both entry points (full and light hls.js) export, with no hls.js import of its own.
export { BlindcastPlayerError, type PlayerErrorCode, type PlayerErrorDetails } from "./errors.js";
export type { KeyLoadedEvent, LeaseLostEvent, PlayerEvent, PlayerEventMap } from "./events.js";
export { createBlindcastLoader, type LoaderClass } from "./hls-loader.js";
export { createKeySession, type KeySession } from "./key-session.js";
export {
  formatKeyUri,
  isBlindcastKeyUri,
  KEY_URI_PREFIX,
  type KeyRef,
  keyUrl,
  parseKeyUri,
} from "./key-uri.js";
export type { LeaseInfo } from "./lease.js";
export type { KeySessionOptions, LeaseSettings } from "./options.js";
export type { BlindcastPlayer, HlsConstructor, LoadOptions, PlayerOptions } from "./player.js";
export { type FragmentKeyInfo, keysToPrefetch } from "./prefetch.js";
export type { RetrySettings } from "./retry.js";
export type { TokenProvider } from "./token.js";
