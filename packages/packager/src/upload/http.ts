// One HTTP exchange with a timeout, and the retry loop around it: exponential backoff with jitter
// on network errors, timeouts, 5xx, 429 and 408 (waiting at least what Retry-After asks), never on
// other answers. Nothing here prints a URL's query: presigned URLs carry their signature there.

export type FetchFunction = typeof globalThis.fetch;

export interface RetrySettings {
  /** Attempts after the first. */
  retries: number;
  /** The first backoff; doubled for each further attempt, up to {@link MAX_BACKOFF_MS}. */
  retryDelayMs: number;
  /** The longest one attempt may take, answer body included. */
  timeoutMs: number;
}

export const MAX_BACKOFF_MS = 30_000;
/** A Retry-After longer than this is not waited for: the attempt fails and says so. */
export const MAX_RETRY_AFTER_MS = 300_000;

/** An answer read to its end (bounded): status, headers and at most `maxBody` bytes of body. */
export interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** How one attempt went, as the caller judges the answer. */
export type Verdict<T> =
  | { ok: true; value: T }
  | { ok: false; retry: boolean; reason: string; status?: number; retryAfterMs?: number };

export interface RetryNotice {
  attempt: number;
  reason: string;
  delayMs: number;
}

export class Aborted extends Error {}

/** The request got no answer: a network failure or the timeout. Worth another attempt. */
export class NetworkError extends Error {}

/** Removes query strings from every URL in `text` and any occurrence of `secret`. */
export function redact(text: string, secret?: string): string {
  let out = text.replace(/(\bhttps?:\/\/[^\s?#"'<>]*)\?[^\s"'<>]*/gi, "$1?…");
  // Signature-looking parameters outside a whole URL (a fragment of one in an error message).
  out = out.replace(/(X-Amz-(Signature|Credential|Security-Token)=)[^&\s"'<>]*/gi, "$1…");
  if (secret && secret.length >= 4) out = out.split(secret).join("[token]");
  return out;
}

/** The URL without its query, for messages. */
export function bareUrl(url: string): string {
  return url.replace(/[?#].*$/, "");
}

/**
 * One attempt: sends the request, reads the answer's body up to `maxBody` bytes (the rest is
 * discarded so the connection is freed), all within `timeoutMs`. Throws {@link Aborted} when
 * `signal` aborts, and an Error with a reason for a network failure or timeout.
 */
export async function exchange(
  fetchFn: FetchFunction,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  maxBody: number,
  signal: AbortSignal | undefined,
): Promise<Answer> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const response = await fetchFn(url, { ...init, signal: combined, redirect: "manual" });
    const body = await readBounded(response, maxBody);
    return { status: response.status, headers: response.headers, body };
  } catch (error) {
    if (signal?.aborted) throw new Aborted("aborted");
    if (timeout.aborted) throw new NetworkError(`no answer within ${timeoutMs} ms`);
    throw new NetworkError(networkReason(error));
  }
}

async function readBounded(response: Response, maxBody: number): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (length < maxBody) {
        const kept = value.subarray(0, maxBody - length);
        chunks.push(kept);
        length += kept.length;
      }
    }
  } finally {
    reader.releaseLock();
  }
  const body = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  const message = typeof cause?.message === "string" ? cause.message : (error as Error | undefined)?.message;
  return `network error: ${code ?? message ?? "unknown"}`;
}

/** Whether an HTTP status is worth another attempt: overload, timeouts, server faults. */
export function retryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** Retry-After in milliseconds (delta seconds or an HTTP date), or undefined. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const value = headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Exponential backoff with "equal jitter": half the step fixed, half random. */
export function backoffMs(attempt: number, baseMs: number): number {
  const step = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** attempt);
  return step / 2 + Math.random() * (step / 2);
}

export type Failure = { reason: string; status?: number };

/**
 * Runs `attempt` until its verdict is ok, not worth retrying, or the retries are spent; a
 * {@link NetworkError} thrown by it counts as a failure worth retrying, anything else it throws
 * ends the loop. Returns the value, or the last failure. Throws {@link Aborted} when `signal` aborts.
 */
export async function withRetries<T>(
  settings: RetrySettings,
  signal: AbortSignal | undefined,
  attempt: () => Promise<Verdict<T>>,
  onRetry?: (notice: RetryNotice) => void,
): Promise<{ ok: true; value: T } | ({ ok: false } & Failure)> {
  for (let n = 0; ; n++) {
    if (signal?.aborted) throw new Aborted("aborted");
    let verdict: Verdict<T>;
    try {
      verdict = await attempt();
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      verdict = { ok: false, retry: true, reason: error.message };
    }
    if (verdict.ok) return verdict;
    const failure: Failure = {
      reason: verdict.reason,
      ...(verdict.status ? { status: verdict.status } : {}),
    };
    if (!verdict.retry || n >= settings.retries) {
      const tries = n + 1;
      return {
        ok: false,
        ...failure,
        reason: tries > 1 ? `${verdict.reason} (after ${tries} attempts)` : verdict.reason,
      };
    }
    if (verdict.retryAfterMs !== undefined && verdict.retryAfterMs > MAX_RETRY_AFTER_MS) {
      return {
        ok: false,
        ...failure,
        reason: `${verdict.reason}; the server asked to retry after ${Math.round(verdict.retryAfterMs / 1000)} s, longer than this waits`,
      };
    }
    const delayMs = Math.max(backoffMs(n, settings.retryDelayMs), verdict.retryAfterMs ?? 0);
    try {
      onRetry?.({ attempt: n + 1, reason: verdict.reason, delayMs });
    } catch {
      // A caller's progress callback does not decide the upload's outcome.
    }
    await sleep(delayMs, signal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Aborted("aborted"));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Aborted("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A short reason from an error answer: the key server's JSON, or S3's XML Code and Message only. */
export function answerReason(answer: Answer): string {
  const text = new TextDecoder().decode(answer.body.subarray(0, 4096));
  let detail = "";
  try {
    const json = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof json.error === "string") detail = json.error;
    if (typeof json.code === "string") detail = detail ? `${detail} (${json.code})` : json.code;
  } catch {
    // S3-style XML. Only Code and Message: a SignatureDoesNotMatch error also carries the
    // string to sign and the signature, which are not repeated anywhere.
    const code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
    const message = /<Message>([^<]{1,300})<\/Message>/.exec(text)?.[1];
    detail = [code, message].filter(Boolean).join(": ");
  }
  return `HTTP ${answer.status}${detail ? `: ${detail}` : ""}`;
}
