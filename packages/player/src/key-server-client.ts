import { BlindcastPlayerError, type PlayerErrorCode } from "./errors.js";
import { backoffDelay, type ResolvedRetry, sleep } from "./retry.js";
import type { TokenCache } from "./token.js";

export interface KeyServerRequest {
  method: "POST" | "DELETE";
  /** Appended to keyServerUrl, starting with "/". */
  path: string;
  json?: unknown;
  leaseId?: string | undefined;
  /**
   * Survive page unload and the player's own destruction: the lease release that `destroy`
   * sends.
   */
  keepalive?: boolean;
  /** Retry 5xx/network failures with backoff (default true). */
  retry?: boolean;
  /** The most bytes a successful answer may have; the body is read only that far. */
  maxBytes: number;
  /** What the request was for, carried into errors. */
  subject?: { contentId?: string | undefined; epoch?: number | undefined };
}

/**
 * Sends a request and resolves with the body of its successful answer. A body longer than
 * `maxBytes` is read only a little past it (the rest is never downloaded), so the caller sees
 * it is too long without holding it.
 */
export type KeyServerClient = (req: KeyServerRequest) => Promise<Uint8Array>;

/** Error answers are read this far for their reason; lease answers may be this long. */
export const JSON_LIMIT = 16_384;

/**
 * Talks to the key server: adds the token and the lease header, refreshes the token once after
 * a 401, retries transient failures with backoff, and turns every refusal into a typed error
 * carrying the server's reason. Redirects are never followed: key and lease requests carry the
 * token and the lease id, which must not go to another URL.
 */
export function createKeyServerClient(
  keyServerUrl: string,
  tokens: TokenCache,
  retry: ResolvedRetry,
  signal: AbortSignal,
): KeyServerClient {
  // One deadline for the whole answer, body included: a server that stalls mid-body fails too.
  const exchange = async (url: string, init: RequestInit, maxBytes: number) => {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    if (!init.keepalive) {
      // Nothing leaves once the session is destroyed (a lease or token that arrives late).
      signal.throwIfAborted();
      signal.addEventListener("abort", onAbort, { once: true });
    }
    const timer = setTimeout(
      () => controller.abort(new Error(`no complete answer within ${retry.timeoutMs} ms`)),
      retry.timeoutMs,
    );
    try {
      const response = await fetch(url, { ...init, signal: controller.signal });
      return { response, body: await readBody(response, response.ok ? maxBytes : JSON_LIMIT) };
    } catch (error) {
      throw controller.signal.aborted && !signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      // Drops whatever of the body was left unread.
      controller.abort();
    }
  };

  return async (req) => {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const tokenPromise = tokens.get();
      const token = await tokenPromise;
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (req.leaseId) headers["x-blindcast-lease"] = req.leaseId;
      if (req.json !== undefined) headers["content-type"] = "application/json";

      let answer: { response: Response; body: Uint8Array } | undefined;
      let failure: unknown;
      try {
        answer = await exchange(
          `${keyServerUrl}${req.path}`,
          {
            method: req.method,
            headers,
            body: req.json === undefined ? undefined : JSON.stringify(req.json),
            keepalive: req.keepalive ?? false,
            credentials: "omit",
            // The default cache mode, not "no-store": Chromium neither reads nor keeps a CORS
            // preflight for a request that bypasses the HTTP cache, so every key request would
            // pay one. Nothing here is ever served from the cache: requests are POST and DELETE,
            // and every answer says Cache-Control: no-store.
            redirect: "manual",
          },
          req.maxBytes,
        );
      } catch (error) {
        if (signal.aborted && !req.keepalive) throw error;
        failure = error;
      }

      let retryAfterMs = 0;
      if (answer) {
        const { response, body } = answer;
        if (response.ok) return body;
        if (response.status === 401 && tokens.hasProvider && !refreshed) {
          refreshed = true;
          attempt--;
          await tokens.refresh(tokenPromise);
          continue;
        }
        // A redirect (a 3xx, or status 0 where browsers hide it) is neither ok nor transient.
        const transient = response.status >= 500 || response.status === 408;
        if (!transient || req.retry === false || attempt >= retry.maxRetries) {
          throw errorFromResponse(response.status, body, req);
        }
        retryAfterMs = Number(response.headers.get("retry-after")) * 1000 || 0;
      } else if (req.retry === false || attempt >= retry.maxRetries) {
        throw new BlindcastPlayerError(
          "KEY_SERVER_UNAVAILABLE",
          `Key server unreachable (${String(failure)})`,
          {
            ...req.subject,
            cause: failure,
          },
        );
      }
      await sleep(Math.min(Math.max(backoffDelay(attempt, retry), retryAfterMs), retry.maxDelayMs), signal);
    }
  };
}

/**
 * Reads the body until it ends or passes `limit` bytes, within the request's deadline; past
 * `limit` it stops (the rest is never downloaded) and the caller sees a body too long. Each
 * chunk is overwritten once copied: it may hold a key.
 */
async function readBody(response: Response, limit: number): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  let body = new Uint8Array(0);
  while (reader && body.length <= limit) {
    const { done, value } = await reader.read();
    if (done) break;
    const longer = new Uint8Array(body.length + value.length);
    longer.set(body);
    longer.set(value, body.length);
    body.fill(0);
    value.fill(0);
    body = longer;
  }
  return body;
}

/** Maps a key server refusal to a typed error, keeping the server's reason and code. */
function errorFromResponse(
  status: number,
  body: Uint8Array,
  req: Pick<KeyServerRequest, "subject">,
): BlindcastPlayerError {
  const { error, code } = parseJson(body);
  const reason = typeof error === "string" ? error : undefined;
  const serverCode = typeof code === "string" ? code : undefined;
  return new BlindcastPlayerError(
    codeFor(status, serverCode),
    reason
      ? `${reason} (HTTP ${status})`
      : status < 400
        ? `Key server redirected (HTTP ${status || "3xx"}), not followed: keyServerUrl must be the final URL`
        : `Key server answered HTTP ${status}`,
    { status, serverCode, reason, ...req.subject },
  );
}

/**
 * The JSON in `body` as an object whose fields the caller checks one by one, or `{}` when it is
 * not JSON (a proxy's error page, say) or too long to have been read whole. Overwrites `body`:
 * a lease's or a title's answer holds keys.
 */
export function parseJson(body: Uint8Array): Record<string, unknown> {
  try {
    // Object(): a JSON null is {}, and other values have no fields of their own.
    return Object(body.length <= JSON_LIMIT && JSON.parse(new TextDecoder().decode(body)));
  } catch {
    return {};
  } finally {
    body.fill(0);
  }
}

/**
 * The keys of an answer's `keys: [{ epoch, key }]` (a lease's, or a title's), by key name
 * (`keyName`): base64 of 16 bytes each, `epoch: null` the content key. Anything else is skipped.
 */
export function keysOf(body: Record<string, unknown>, contentId: string): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  if (Array.isArray(body.keys)) {
    for (const { epoch, key } of body.keys as { epoch?: unknown; key?: unknown }[]) {
      const bytes = typeof key === "string" ? Uint8Array.from(atob(key), (c) => c.charCodeAt(0)) : undefined;
      if (bytes?.length === 16)
        keys.set(typeof epoch === "number" ? `${contentId}/${epoch}` : contentId, bytes);
      else bytes?.fill(0);
    }
  }
  return keys;
}

function codeFor(status: number, serverCode = ""): PlayerErrorCode {
  if (status < 400) return "INVALID_RESPONSE";
  if (serverCode === "lease_expired" || status === 410) return "LEASE_EXPIRED";
  if (/^lease_(not_found|forbidden|required)$/.test(serverCode)) return "LEASE_LOST";
  if (status === 401) return "AUTH_FAILED";
  if (status === 403) return "FORBIDDEN";
  if (status === 429) return "LEASE_LIMIT";
  return status >= 500 ? "KEY_SERVER_UNAVAILABLE" : "BAD_REQUEST";
}
