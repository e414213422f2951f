import { BlindcastPlayerError, type PlayerErrorCode } from "./errors.js";
import { backoffDelay, type ResolvedRetry, sleep } from "./retry.js";
import type { TokenCache } from "./token.js";

export interface KeyServerRequest {
  method: "GET" | "POST" | "DELETE";
  /** Appended to keyServerUrl, starting with "/". */
  path: string;
  json?: unknown;
  leaseId?: string | undefined;
  /** Survive page unload (lease release). */
  keepalive?: boolean;
  /** Retry 5xx/network failures with backoff (default true). */
  retry?: boolean;
  /** Not cancelled when the player is destroyed (the lease release that destroy itself sends). */
  outlivesPlayer?: boolean;
  /** What the request was for, carried into errors. */
  subject?: { contentId?: string | undefined; epoch?: number | undefined };
}

/**
 * Talks to the key server: adds the token and the lease header, refreshes the token once after
 * a 401, retries transient failures with backoff, and turns every refusal into a typed error
 * carrying the server's reason.
 */
export class KeyServerClient {
  constructor(
    readonly keyServerUrl: string,
    private readonly tokens: TokenCache,
    private readonly retry: ResolvedRetry,
    private readonly signal: AbortSignal,
  ) {}

  async request(req: KeyServerRequest): Promise<Response> {
    let refreshed = false;
    let attempt = 0;
    for (;;) {
      const tokenPromise = this.tokens.get();
      const token = await tokenPromise;
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (req.leaseId) headers["x-blindcast-lease"] = req.leaseId;
      if (req.json !== undefined) headers["content-type"] = "application/json";

      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await this.fetchWithTimeout(
          `${this.keyServerUrl}${req.path}`,
          req.outlivesPlayer === true,
          {
            method: req.method,
            headers,
            body: req.json === undefined ? undefined : JSON.stringify(req.json),
            keepalive: req.keepalive ?? false,
            credentials: "omit",
            cache: "no-store",
          },
        );
      } catch (error) {
        if (this.signal.aborted && !req.outlivesPlayer) throw error;
        failure = error;
      }

      if (response?.ok) return response;
      if (response?.status === 401 && this.tokens.hasProvider && !refreshed) {
        refreshed = true;
        void response.body?.cancel().catch(() => {});
        await this.tokens.refresh(tokenPromise);
        continue;
      }
      const transient = response === undefined || response.status >= 500 || response.status === 408;
      if (response && !transient) throw await errorFromResponse(response, req);
      if (req.retry === false || attempt >= this.retry.maxRetries) {
        if (response) throw await errorFromResponse(response, req);
        throw new BlindcastPlayerError(
          "KEY_SERVER_UNAVAILABLE",
          `Key server unreachable (${describe(failure)})`,
          { ...req.subject, cause: failure },
        );
      }
      void response?.body?.cancel().catch(() => {});
      const retryAfterMs = Number(response?.headers.get("retry-after")) * 1000;
      const delay = Math.max(
        backoffDelay(attempt, this.retry),
        Number.isFinite(retryAfterMs) ? retryAfterMs : 0,
      );
      attempt++;
      await sleep(Math.min(delay, this.retry.maxDelayMs), this.signal);
    }
  }

  private async fetchWithTimeout(url: string, outlivesPlayer: boolean, init: RequestInit): Promise<Response> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(this.signal.reason);
    if (!outlivesPlayer) this.signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer within ${this.retry.timeoutMs} ms`)),
      this.retry.timeoutMs,
    );
    try {
      return await fetch(url, { ...init, signal: controller.signal });
    } catch (error) {
      throw controller.signal.aborted && !this.signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener("abort", onAbort);
    }
  }
}

/** Maps a key server refusal to a typed error, keeping the server's reason and code. */
export async function errorFromResponse(
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
  const code = codeFor(status, serverCode);
  const message = reason ? `${reason} (HTTP ${status})` : `Key server answered HTTP ${status}`;
  return new BlindcastPlayerError(code, message, { status, serverCode, reason, ...req.subject });
}

function codeFor(status: number, serverCode: string | undefined): PlayerErrorCode {
  if (serverCode === "lease_expired" || status === 410) return "LEASE_EXPIRED";
  if (
    serverCode === "lease_not_found" ||
    serverCode === "lease_forbidden" ||
    serverCode === "lease_required"
  ) {
    return "LEASE_LOST";
  }
  if (status === 401) return "AUTH_FAILED";
  if (status === 403) return "FORBIDDEN";
  if (status === 429) return "LEASE_LIMIT";
  if (status >= 500) return "KEY_SERVER_UNAVAILABLE";
  return "BAD_REQUEST";
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
