import type Hls from "hls.js";
import type { ErrorData, FragLoadingData, Fragment, HlsConfig, LevelDetails } from "hls.js";
import { BlindcastPlayerError } from "./errors.js";
import type { PlayerEventMap } from "./events.js";
import { createBlindcastLoader, type LoaderClass } from "./hls-loader.js";
import { createKeySession, type KeySession } from "./key-session.js";
import { isContentId, type KeyRef, MAX_EPOCH } from "./key-uri.js";
import type { LeaseInfo } from "./lease.js";
import { invalidOptions, type KeySessionOptions } from "./options.js";
import { type FragmentKeyInfo, keysToPrefetch } from "./prefetch.js";

/** Options of `createPlayer`: the key session's, plus hls.js configuration passed through. */
export interface PlayerOptions extends KeySessionOptions {
  /**
   * hls.js configuration, passed through. A `loader` you give still loads everything but
   * Blindcast keys. `enableSoftwareAES` is forced off: hls.js' software fallback would turn a
   * wrong key into garbage frames instead of an error.
   */
  hlsConfig?: Partial<HlsConfig>;
}

export interface LoadOptions {
  /**
   * The content's id, as in its key URIs. Given here, the lease (and the first key) are
   * requested at once, in parallel with the playlists; otherwise they wait for the playlist.
   */
  contentId?: string;
  /**
   * The key fetched with the lease at load, in parallel with the playlists: an epoch (default 0,
   * the first epoch `blindcast-pack` writes), `"content"` for streams packaged without rotation,
   * or `null`. `"playlist"`, for live streams: the lease waits for the first media playlist and
   * comes with the key of the segment playback starts at (and the next ones). Needs `contentId`.
   */
  firstKey?: number | "content" | "playlist" | null;
}

export interface BlindcastPlayer {
  readonly video: HTMLVideoElement;
  /** The underlying hls.js instance, for advanced use (levels, audio tracks, stats). */
  readonly hls: Hls;
  /** The lease currently held, if any. */
  readonly lease: LeaseInfo | undefined;
  /** Starts loading an HLS playlist (multivariant or media). */
  load(src: string, options?: LoadOptions): void;
  on<E extends keyof PlayerEventMap>(event: E, listener: (payload: PlayerEventMap[E]) => void): () => void;
  off<E extends keyof PlayerEventMap>(event: E, listener: (payload: PlayerEventMap[E]) => void): void;
  /**
   * Stops playback, releases the lease (a keepalive request) and overwrites every key the player
   * fetched, the buffers handed to hls.js included (see the README for what it cannot reach).
   */
  destroy(): Promise<void>;
}

export type HlsConstructor = typeof Hls;

/** `createPlayer` for a given hls.js build (full or light). */
export function createPlayerWith(
  HlsClass: HlsConstructor,
  video: HTMLVideoElement,
  options: PlayerOptions,
): BlindcastPlayer {
  if (typeof (video as { canPlayType?: unknown } | null)?.canPlayType !== "function") {
    throw invalidOptions("createPlayer needs a <video> element");
  }
  // Native HLS (Safari without MSE) would fetch keys itself, without the token or lease.
  if (!HlsClass.isSupported() || !(globalThis as { crypto?: Crypto }).crypto?.subtle) {
    throw new BlindcastPlayerError(
      "MSE_UNSUPPORTED",
      "Needs Media Source Extensions (iOS Safari 17.1+) and WebCrypto (https or localhost)",
    );
  }
  const session = createKeySession(options);

  const baseLoader = (options.hlsConfig?.loader ?? HlsClass.DefaultConfig.loader) as LoaderClass;
  const hls = new HlsClass({
    ...options.hlsConfig,
    loader: createBlindcastLoader(session, baseLoader) as HlsConfig["loader"],
    enableSoftwareAES: false,
  });
  hls.attachMedia(video);
  let stopped = false;
  let destroyed = false;

  // Every fatal error, the session's own or found here, ends the session and stops playback.
  const stop = (error: BlindcastPlayerError) => {
    if (stopped) return;
    stopped = true;
    hls.stopLoad();
    video.pause();
    session.fail(error);
    void session.destroy();
  };
  session.on("error", stop);

  // The latest playlist of each rendition, by fragment type and level (audio/subtitle track id).
  const playlists = new Map<string, LevelDetails>();
  const prefetchFrom = (details: LevelDetails, index: number) => {
    if (!session.prefetchKeys || stopped) return;
    for (const ref of keysToPrefetch(
      details.fragments.map(keyInfoOf),
      index,
      session.prefetchKeys,
      details.live,
    ))
      session.prefetch(ref);
  };

  // Every rendition's playlist, as it loads and (live) each time it is refreshed: video, and the
  // audio and subtitle tracks hls.js loads on their own, whose epochs may not be in the video's.
  const onPlaylist =
    (type: string) => (_event: string, data: { details: LevelDetails; level?: number; id?: number }) => {
      const { details } = data;
      playlists.set(type + (data.level ?? data.id), details);
      // Where playback will start: the current position, else hls.js' live start or the start
      // position (-1, hls.js' default, finds the first fragment as 0 does).
      const position =
        video.currentTime ||
        (details.live
          ? (hls.liveSyncPosition ?? details.edge - 3 * details.targetduration)
          : hls.config.startPosition);
      // None ends after it (-1): keysToPrefetch starts from the first.
      prefetchFrom(
        details,
        details.fragments.findIndex((frag) => frag.end > position),
      );
    };
  const { Events } = HlsClass;
  hls.on(Events.LEVEL_LOADED, onPlaylist("main"));
  hls.on(Events.AUDIO_TRACK_LOADED, onPlaylist("audio"));
  hls.on(Events.SUBTITLE_TRACK_LOADED, onPlaylist("subtitle"));

  hls.on(Events.FRAG_LOADING, (_event: string, { frag }: FragLoadingData) => {
    const details = playlists.get(frag.type + frag.level);
    if (details && typeof frag.sn === "number") prefetchFrom(details, frag.sn - details.startSN);
  });

  hls.on(Events.ERROR, (_event: string, data: ErrorData) => {
    if (stopped) return;
    if (isDecryptionFailure(data, HlsClass)) {
      // Keys are derived, so fetching the same key again cannot help: a decrypt failure means
      // the server's master key does not match the one the content was packaged with.
      return stop(
        new BlindcastPlayerError("DECRYPTION_FAILED", "Segments did not decrypt with the key served", {
          cause: data.error,
        }),
      );
    }
    if (!data.fatal) return;
    if (session.failure) return stop(session.failure);
    stop(
      new BlindcastPlayerError("PLAYBACK_ERROR", `Playback failed: ${data.details}`, {
        cause: data.error,
      }),
    );
  });

  return {
    video,
    hls,
    get lease() {
      return session.lease;
    },
    load(src, loadOptions = {}) {
      if (destroyed) throw invalidOptions("this player was destroyed");
      if (typeof src !== "string" || src === "") throw invalidOptions("load needs the playlist URL");
      const { contentId, firstKey = 0 } = loadOptions;
      if (contentId !== undefined) {
        if (!isContentId(contentId)) throw invalidOptions(`invalid contentId "${String(contentId)}"`);
        // Before loadSource, so the lease request leaves first and runs alongside the playlists.
        // "playlist": the first key asked for, by hls.js or the prefetch, starts the lease.
        if (firstKey !== "playlist") session.start(contentId, firstKeyRef(contentId, firstKey));
      }
      hls.loadSource(src);
    },
    on: session.on,
    off: session.off,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      stopped = true;
      hls.destroy();
      await session.destroy();
    },
  };
}

function firstKeyRef(contentId: string, firstKey: number | "content" | null): KeyRef | undefined {
  if (firstKey === null) return undefined;
  if (firstKey === "content") return { contentId };
  if (!Number.isInteger(firstKey) || firstKey < 0 || firstKey > MAX_EPOCH) {
    throw invalidOptions('firstKey must be an epoch, "content", "playlist" or null');
  }
  return { contentId, epoch: firstKey };
}

/**
 * hls.js reports a segment that fails to decrypt as FRAG_DECRYPT_ERROR, or, when decryption runs
 * inside its transmuxer (the usual path for AES-128 segments), as a non-fatal FRAG_PARSING_ERROR
 * carrying its decrypter's "failed to decrypt data" error. Both mean the same to us.
 */
function isDecryptionFailure(data: ErrorData, HlsClass: HlsConstructor): boolean {
  const { details } = data;
  const { ErrorDetails } = HlsClass;
  return (
    details === ErrorDetails.FRAG_DECRYPT_ERROR ||
    (details === ErrorDetails.FRAG_PARSING_ERROR && /failed to decrypt/i.test(data.error?.message))
  );
}

/** What keysToPrefetch needs of a fragment: the URI of its key, when it is encrypted. */
function keyInfoOf({ levelkeys }: Fragment): FragmentKeyInfo {
  const key = levelkeys && (levelkeys.identity ?? Object.values(levelkeys)[0]);
  return { keyUri: key?.encrypted ? key.uri : undefined };
}

export type { KeySession };
