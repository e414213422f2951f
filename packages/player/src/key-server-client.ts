import { BlindcastPlayerError } from "./errors.js";
import type { KeyRef } from "./key-uri.js";
import { backoffDelay, type ResolvedRetry, sleep } from "./retry.js";
import type { TokenProvider } from "./token.js";

/**
 * Sends `POST {keyServerUrl}{path}` with `json`, or without `json` a `DELETE`, and resolves with
 * the body of its successful answer. A POST's answer is JSON, read only a little past
 * `JSON_LIMIT` (the rest is never downloaded), so the caller sees it is too long without holding
 * it; a DELETE's is not read. `leaseId` goes in the lease header; `subject`, what the request was
 * for, is carried into errors. `keepalive` requests survive page unload and the player's own
 * destruction (the lease release that `destroy` sends); 5xx and network failures are retried
 * with backoff unless `retries` is false.
 */
export type KeyServerClient = (
  path: string,
  json: unknown,
  leaseId?: string,
  subject?: KeyRef,
  keepalive?: boolean,
  retries?: boolean,
) => Promise<Uint8Array>;

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
  getToken: TokenProvider | undefined,
  retry: ResolvedRetry,
  signal: AbortSignal,
): KeyServerClient {
  // The token, asked for when first needed and shared by concurrent requests; a failed call is
  // forgotten, so the next request asks again.
  let token: Promise<string | null | undefined> | undefined;
  const askToken = (refresh: boolean) => {
    const asked = (async () => {
      let value: string | null | undefined;
      try {
        value = await getToken?.({ refresh });
      } catch (error) {
        throw new BlindcastPlayerError("AUTH_FAILED", "getToken failed", { cause: error });
      }
      if (value != null && typeof value !== "string") {
        throw new BlindcastPlayerError("AUTH_FAILED", "getToken must return a string or null");
      }
      return value; // null or undefined: no token
    })();
    // Forgotten once it has failed, and only if still the current one: cleared inside the call, a
    // getToken that threw at once was cleared before the caller stored it, and stayed for good.
    asked.catch(() => {
      if (token === asked) token = undefined;
    });
    return asked;
  };

  return async (path, json, leaseId, subject, keepalive = false, retries = true) => {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      token ??= askToken(false);
      const tokenPromise = token;
      const bearer = await tokenPromise;
      const headers: Record<string, string> = {};
      if (bearer) headers.authorization = `Bearer ${bearer}`;
      if (leaseId) headers["x-blindcast-lease"] = leaseId;
      if (json !== undefined) headers["content-type"] = "application/json";

      // One deadline for the whole answer, body included: a server that stalls mid-body fails too.
      const controller = new AbortController();
      const onAbort = () => controller.abort(signal.reason);
      const timer = setTimeout(
        () => controller.abort(new Error(`no complete answer within ${retry.timeoutMs} ms`)),
        retry.timeoutMs,
      );
      let response: Response | undefined;
      let body: Uint8Array | undefined;
      let failure: unknown;
      try {
        if (!keepalive) {
          // Nothing leaves once the session is destroyed (a lease or token that arrives late).
          signal.throwIfAborted();
          signal.addEventListener("abort", onAbort, { once: true });
        }
        response = await fetch(keyServerUrl + path, {
          method: json === undefined ? "DELETE" : "POST",
          headers,
          body: JSON.stringify(json),
          keepalive,
          credentials: "omit",
          // The default cache mode, not "no-store": Chromium neither reads nor keeps a CORS
          // preflight for a request that bypasses the HTTP cache, so every key request would
          // pay one. Nothing here is ever served from the cache: requests are POST and DELETE,
          // and every answer says Cache-Control: no-store.
          redirect: "manual",
          signal: controller.signal,
        });
        body = await readBody(response, json === undefined && response.ok ? 0 : JSON_LIMIT);
      } catch (error) {
        if (signal.aborted && !keepalive) throw error;
        failure = controller.signal.aborted && !signal.aborted ? controller.signal.reason : error;
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        // Drops whatever of the body was left unread.
        controller.abort();
      }

      let error: BlindcastPlayerError;
      let retryAfterMs = 0;
      if (body) {
        const { ok, status, headers } = response!;
        if (ok) return body;
        if (status === 401 && getToken && !refreshed) {
          refreshed = true;
          attempt--;
          // A fresh token, unless another request's 401 already asked for one.
          if (token === tokenPromise || !token) token = askToken(true);
          continue;
        }
        error = errorFromResponse(status, body, subject);
        // A redirect (a 3xx, or status 0 where browsers hide it) is neither ok nor transient.
        if (status < 500 && status !== 408) throw error;
        retryAfterMs = Number(headers.get("retry-after")) * 1000 || 0;
      } else {
        error = new BlindcastPlayerError("KEY_SERVER_UNAVAILABLE", `Key server unreachable (${failure})`, {
          ...subject,
          cause: failure,
        });
      }
      if (!retries || attempt >= retry.maxRetries) throw error;
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
function errorFromResponse(status: number, body: Uint8Array, subject?: KeyRef): BlindcastPlayerError {
  const { error, code } = parseJson(body);
  const reason = typeof error === "string" ? error : undefined;
  const serverCode = typeof code === "string" ? code : undefined;
  return new BlindcastPlayerError(
    // A redirect, what the server's code says of the lease, else what the status says. Without a
    // code, the pattern tests "undefined", which it does not match.
    status < 400
      ? "INVALID_RESPONSE"
      : serverCode === "lease_expired" || status === 410
        ? "LEASE_EXPIRED"
        : /^lease_(not_found|forbidden|required)$/.test(serverCode!)
          ? "LEASE_LOST"
          : status === 401
            ? "AUTH_FAILED"
            : status === 403
              ? "FORBIDDEN"
              : status === 429
                ? "LEASE_LIMIT"
                : status >= 500 || status === 408
                  ? "KEY_SERVER_UNAVAILABLE"
                  : "BAD_REQUEST",
    reason
      ? `${reason} (HTTP ${status})`
      : status < 400
        ? `Key server redirected (HTTP ${status || "3xx"}), not followed: keyServerUrl must be the final URL`
        : `Key server answered HTTP ${status}`,
    { status, serverCode, reason, ...subject },
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
