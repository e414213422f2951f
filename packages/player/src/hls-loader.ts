import type {
  HlsConfig,
  Loader,
  LoaderCallbacks,
  LoaderConfiguration,
  LoaderContext,
  LoaderStats,
} from "hls.js";
import { BlindcastPlayerError } from "./errors.js";
import type { KeySession } from "./key-session.js";
import { isBlindcastKeyUri, parseKeyUri } from "./key-uri.js";

/** The shape of hls.js' `config.loader`. */
export type LoaderClass = new (config: HlsConfig) => Loader<LoaderContext>;

/**
 * An hls.js loader class that answers Blindcast key requests (`context.type === "key"` with a
 * blindcast:// URI) from the key session and hands every other request, unchanged, to `Base`
 * (hls.js' default loader, or yours). The context hls.js passes in is passed back untouched:
 * hls.js matches the answer to its request by `context.url`.
 */
export function createBlindcastLoader(session: KeySession, Base: LoaderClass): LoaderClass {
  return class BlindcastLoader implements Loader<LoaderContext> {
    context: LoaderContext | null = null;
    stats: LoaderStats = newStats();
    private inner: Loader<LoaderContext> | null = null;
    private callbacks: LoaderCallbacks<LoaderContext> | null = null;

    constructor(private readonly config: HlsConfig) {}

    load(
      context: LoaderContext,
      config: LoaderConfiguration,
      callbacks: LoaderCallbacks<LoaderContext>,
    ): void {
      if (context.type !== "key" || !isBlindcastKeyUri(context.url)) {
        const inner = new Base(this.config);
        this.inner = inner;
        this.stats = inner.stats;
        inner.load(context, config, callbacks);
        this.context = inner.context;
        return;
      }
      this.context = context;
      this.callbacks = callbacks;
      const stats = this.stats;
      stats.loading.start = performance.now();
      let key: Promise<Uint8Array>;
      try {
        key = session.key(parseKeyUri(context.url));
      } catch (error) {
        key = Promise.reject(error);
      }
      key.then(
        (bytes) => {
          if (this.callbacks !== callbacks) return;
          this.callbacks = null;
          stats.loading.first = stats.loading.end = performance.now();
          stats.loaded = stats.total = bytes.length;
          // A copy: hls.js keeps its key while the session may wipe its own on destroy.
          callbacks.onSuccess(
            { url: context.url, data: bytes.slice().buffer, code: 200 },
            stats,
            context,
            null,
          );
        },
        (error: unknown) => {
          if (this.callbacks !== callbacks) return;
          this.callbacks = null;
          stats.loading.end = performance.now();
          const status = error instanceof BlindcastPlayerError ? (error.status ?? 0) : 0;
          const text = error instanceof Error ? error.message : String(error);
          callbacks.onError({ code: status, text }, context, null, stats);
        },
      );
    }

    abort(): void {
      if (this.inner) {
        this.inner.abort();
        return;
      }
      const callbacks = this.callbacks;
      this.callbacks = null;
      this.stats.aborted = true;
      // The shared key fetch goes on (another fragment may need it); only this request ends.
      if (callbacks && this.context) callbacks.onAbort?.(this.stats, this.context, null);
    }

    destroy(): void {
      this.inner?.destroy();
      this.inner = null;
      this.callbacks = null;
      this.context = null;
    }

    getCacheAge(): number | null {
      return this.inner?.getCacheAge?.() ?? null;
    }

    getResponseHeader(name: string): string | null {
      return this.inner?.getResponseHeader?.(name) ?? null;
    }
  };
}

function newStats(): LoaderStats {
  return {
    aborted: false,
    loaded: 0,
    retry: 0,
    total: 0,
    chunkCount: 0,
    bwEstimate: 0,
    loading: { start: 0, first: 0, end: 0 },
    parsing: { start: 0, end: 0 },
    buffering: { start: 0, first: 0, end: 0 },
  };
}
