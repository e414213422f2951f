import { BlindcastPlayerError, type PlayerErrorCode } from "./errors.js";
import { backoffDelay, type ResolvedRetry, sleep } from "./retry.js";
import type { TokenCache } from "./token.js";

export interface KeyServerRequest {
  method: "GET" | "POST" | "DELETE";
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
  /** What the request was for, carried into errors. */
  subject?: { contentId?: string | undefined; epoch?: number | undefined };
}

export type KeyServerClient = (req: KeyServerRequest) => Promise<Response>;

/**
 * Talks to the key server: adds the token and the lease header, refreshes the token once after
 * a 401, retries transient failures with backoff, and turns every refusal into a typed error
 * carrying the server's reason.
 */
export function createKeyServerClient(
  keyServerUrl: string,
  tokens: TokenCache,
  retry: ResolvedRetry,
  signal: AbortSignal,
): KeyServerClient {
  const fetchWithTimeout = async (url: string, init: RequestInit) => {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    if (!init.keepalive) signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer within ${retry.timeoutMs} ms`)),
      retry.timeoutMs,
    );
    try {
      return await fetch(url, { ...init, signal: controller.signal });
    } catch (error) {
      throw controller.signal.aborted && !signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
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

      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await fetchWithTimeout(`${keyServerUrl}${req.path}`, {
          method: req.method,
          headers,
          body: req.json === undefined ? undefined : JSON.stringify(req.json),
          keepalive: req.keepalive ?? false,
          credentials: "omit",
          cache: "no-store",
        });
      } catch (error) {
        if (signal.aborted && !req.keepalive) throw error;
        failure = error;
      }

      if (response?.ok) return response;
      if (response?.status === 401 && tokens.hasProvider && !refreshed) {
        refreshed = true;
        attempt--;
        void response.body?.cancel().catch(() => {});
        await tokens.refresh(tokenPromise);
        continue;
      }
      const transient = !response || response.status >= 500 || response.status === 408;
      if (response && (!transient || req.retry === false || attempt >= retry.maxRetries)) {
        throw await errorFromResponse(response, req);
      }
      if (req.retry === false || attempt >= retry.maxRetries) {
        throw new BlindcastPlayerError(
          "KEY_SERVER_UNAVAILABLE",
          `Key server unreachable (${String(failure)})`,
          {
            ...req.subject,
            cause: failure,
          },
        );
      }
      void response?.body?.cancel().catch(() => {});
      const retryAfterMs = Number(response?.headers.get("retry-after")) * 1000 || 0;
      await sleep(Math.min(Math.max(backoffDelay(attempt, retry), retryAfterMs), retry.maxDelayMs), signal);
    }
  };
}

/** Maps a key server refusal to a typed error, keeping the server's reason and code. */
async function errorFromResponse(
  response: Response,
  req: Pick<KeyServerRequest, "subject">,
): Promise<BlindcastPlayerError> {
  let reason: string | undefined;
  let serverCode: string | undefined;
  try {
    const body = (await response.json()) as { error?: unknown; code?: unknown };
    if (typeof body.error === "string") reason = body.error;
    if (typeof body.code === "string") serverCode = body.code;
  } catch {
    // Not JSON (a proxy's error page, say): the status alone has to do.
  }
  const status = response.status;
  return new BlindcastPlayerError(
    codeFor(status, serverCode),
    reason ? `${reason} (HTTP ${status})` : `Key server answered HTTP ${status}`,
    { status, serverCode, reason, ...req.subject },
  );
}

function codeFor(status: number, serverCode = ""): PlayerErrorCode {
  if (serverCode === "lease_expired" || status === 410) return "LEASE_EXPIRED";
  if (/^lease_(not_found|forbidden|required)$/.test(serverCode)) return "LEASE_LOST";
  if (status === 401) return "AUTH_FAILED";
  if (status === 403) return "FORBIDDEN";
  if (status === 429) return "LEASE_LIMIT";
  return status >= 500 ? "KEY_SERVER_UNAVAILABLE" : "BAD_REQUEST";
}
