import Hls from "hls.js/light";
import { type BlindcastPlayer, createPlayerWith, type PlayerOptions } from "./player.js";

export * from "./public-api.js";

/**
 * `createPlayer` on hls.js' light build: smaller, without alternate audio renditions,
 * subtitles, EME/DRM, CMCD, content steering or interstitials. AES-128 decryption is included.
 */
export function createPlayer(video: HTMLVideoElement, options: PlayerOptions): BlindcastPlayer {
  return createPlayerWith(Hls, video, options);
}

/** Whether this browser can run the player (Media Source Extensions and WebCrypto). */
export function isSupported(): boolean {
  return Hls.isSupported() && Boolean((globalThis as { crypto?: Crypto }).crypto?.subtle);
}
