/** Retry policy for requests to the key server. */
export interface RetrySettings {
  /** Retries after the first attempt, for 5xx, 408, network errors and timeouts. Default 4 (0 to 20). */
  maxRetries?: number;
  /** First backoff delay in whole ms; doubles each retry. Default 300. */
  baseDelayMs?: number;
  /** Largest backoff delay in ms. Default 5000. */
  maxDelayMs?: number;
  /**
   * A request whose whole answer (headers and body) has not arrived after this many ms counts as
   * failed. Default 10000 (100 or more).
   */
  timeoutMs?: number;
}

export type ResolvedRetry = Required<RetrySettings>;

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries from
 * many viewers spread out after an outage but none retries immediately.
 */
export function backoffDelay(attempt: number, retry: ResolvedRetry): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt);
  return (ceiling / 2) * (1 + Math.random());
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
