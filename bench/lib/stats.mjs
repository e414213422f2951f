export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs `fn` for about `ms` milliseconds, `batch` calls at a time; resolves to calls per second. */
export async function rate(fn, ms, batch = 100) {
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < batch; i++) await fn(calls++);
  }
  return calls / ((performance.now() - start) / 1000);
}

/**
 * Like `rate`, but per second of this process's CPU time (user and system, all threads): on a
 * machine shared with other work, time spent waiting for a core does not count. For synchronous
 * or CPU-bound work; anything that waits on I/O needs `rate`.
 */
export async function cpuRate(fn, ms, batch = 100) {
  let calls = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() - start < ms) {
    for (let i = 0; i < batch; i++) await fn(calls++);
  }
  const used = process.cpuUsage(cpu);
  return calls / ((used.user + used.system) / 1e6);
}

/**
 * Measures candidate and baseline alternately, `runs` times each, so drift on a noisy machine
 * hits both alike; returns the medians, and the median of each pair's ratio (`ratio`), which
 * drift between pairs moves least.
 */
export async function alternate(runs, measureCandidate, measureBaseline) {
  const candidate = [];
  const baseline = [];
  for (let i = 0; i < runs; i++) {
    baseline.push(await measureBaseline(i));
    candidate.push(await measureCandidate(i));
  }
  return {
    candidate: median(candidate),
    baseline: median(baseline),
    ratio: pairedRatio(candidate, baseline),
    candidateRuns: candidate,
    baselineRuns: baseline,
  };
}

/** The median of `candidate[i] / baseline[i]`: runs measured side by side compared with each other. */
export function pairedRatio(candidate, baseline) {
  return median(candidate.map((value, i) => value / baseline[i]));
}

export const round = (value, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
