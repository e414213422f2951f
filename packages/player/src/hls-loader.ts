import type { HlsConfig, Loader, LoaderCallbacks, LoaderConfiguration, LoaderContext } from "hls.js";
import type { BlindcastPlayerError } from "./errors.js";
import type { KeySession } from "./key-session.js";
import { isBlindcastKeyUri, parseKeyUri } from "./key-uri.js";

/** The shape of hls.js' `config.loader`. */
export type LoaderClass = new (config: HlsConfig) => Loader<LoaderContext>;

/**
 * An hls.js loader class that answers Blindcast key requests (`context.type === "key"` with a
 * blindcast:// URI) from the key session and leaves every other request, unchanged, to `Base`
 * (hls.js' default loader, or yours), which it extends. The context hls.js passes in is passed
 * back untouched: hls.js matches the answer to its request by `context.url`.
 */
export function createBlindcastLoader(session: KeySession, Base: LoaderClass): LoaderClass {
  return class BlindcastLoader extends Base {
    /**
     * Callbacks of the key request in flight; a distinct name, as `Base` may have its own.
     * Declared, not initialised: a field initialiser costs bundles for older targets a helper.
     */
    declare private keyCallbacks: LoaderCallbacks<LoaderContext> | null | undefined;

    override load(
      context: LoaderContext,
      config: LoaderConfiguration,
      callbacks: LoaderCallbacks<LoaderContext>,
    ): void {
      if (context.type !== "key" || !isBlindcastKeyUri(context.url)) {
        super.load(context, config, callbacks);
        return;
      }
      this.context = context;
      this.keyCallbacks = callbacks;
      // hls.js' key loader reads only the data; the stats object is passed along unfilled.
      const stats = this.stats;
      new Promise<Uint8Array>((resolve) => resolve(session.key(parseKeyUri(context.url)))).then(
        (bytes) => {
          if (this.keyCallbacks !== callbacks) return;
          this.keyCallbacks = null;
          // The session's own buffer, not a copy: hls.js keeps views on it as its key
          // (decryptdata.key), so the session's wipe on destroy overwrites hls.js' key too.
          callbacks.onSuccess(
            { url: context.url, data: bytes.buffer as ArrayBuffer, code: 200 },
            stats,
            context,
            null,
          );
        },
        (error: unknown) => {
          if (this.keyCallbacks !== callbacks) return;
          this.keyCallbacks = null;
          // A key server's refusal carries its HTTP status.
          const status = (error as BlindcastPlayerError)?.status || 0;
          callbacks.onError(
            { code: status, text: `${(error as Error)?.message ?? error}` },
            context,
            null,
            stats,
          );
        },
      );
    }

    override abort(): void {
      const callbacks = this.keyCallbacks;
      if (!callbacks) {
        super.abort();
        return;
      }
      this.keyCallbacks = null;
      this.stats.aborted = true;
      // The shared key fetch goes on (another fragment may need it); only this request ends.
      // (load set the context along with the callbacks.)
      callbacks.onAbort?.(this.stats, this.context!, null);
    }

    override destroy(): void {
      this.keyCallbacks = null;
      super.destroy();
    }
  };
}
