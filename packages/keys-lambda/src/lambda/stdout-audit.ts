import type { AuditRecord } from "../core/options.js";

/**
 * Audit records as JSON lines written straight to stdout: on Lambda each line reaches CloudWatch
 * as a pure JSON message (console.log would prefix it with a timestamp and request id, hiding
 * the fields from Logs Insights' automatic discovery), and it skips console's formatting.
 */
export function stdoutAudit(record: AuditRecord): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/**
 * The same lines, gathered and written once per turn of the event loop: for a long-lived server
 * under load, one write per batch instead of one per request.
 */
export function batchedStdoutAudit(): (record: AuditRecord) => void {
  let pending: string[] = [];
  const flush = () => {
    const lines = pending;
    pending = [];
    process.stdout.write(lines.join(""));
  };
  return (record) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(`${JSON.stringify(record)}\n`);
  };
}
