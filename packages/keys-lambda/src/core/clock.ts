interface NodeProcessClock {
  process?: { hrtime?: { bigint?: () => bigint } };
}

const hrtime = (globalThis as NodeProcessClock).process?.hrtime?.bigint;

/**
 * A monotonic clock in milliseconds, for request durations. On Node it reads `process.hrtime`:
 * the first read of the `performance` global loads perf_hooks (a dozen internal modules), which
 * a Lambda would pay on its first request. Elsewhere, `performance.now()`.
 */
export const monotonicMs: () => number = hrtime ? () => Number(hrtime()) / 1e6 : () => performance.now();
