import Hls from "hls.js";
import { type BlindcastPlayer, createPlayerWith, type PlayerOptions } from "./player.js";

export * from "./public-api.js";

/**
 * Creates a player on `video` that plays Blindcast-encrypted HLS with the full hls.js build.
 * Throws `BlindcastPlayerError` (`MSE_UNSUPPORTED`, `INVALID_OPTIONS`) when it cannot.
 */
export function createPlayer(video: HTMLVideoElement, options: PlayerOptions): BlindcastPlayer {
  return createPlayerWith(Hls, video, options);
}

/** Whether this browser can run the player (Media Source Extensions and WebCrypto). */
export function isSupported(): boolean {
  return Hls.isSupported() && Boolean((globalThis as { crypto?: Crypto }).crypto?.subtle);
}
