import { auditJson } from "../core/audit.js";
import type { AuditRecord } from "../core/options.js";

/**
 * Audit records as JSON lines written straight to stdout: on Lambda each line reaches CloudWatch
 * as a pure JSON message (console.log would prefix it with a timestamp and request id, hiding
 * the fields from Logs Insights' automatic discovery), and it skips console's formatting.
 */
export function stdoutAudit(record: AuditRecord): void {
  process.stdout.write(`${auditJson(record)}\n`);
}

/** An audit sink that holds lines back; `flush` writes what it holds. */
export interface BufferedAudit {
  (record: AuditRecord): void;
  flush(): void;
}

/**
 * The same lines, gathered and written at most every `maxDelayMs` (or once `maxBytes` are held):
 * under load, one write (a system call) per many requests instead of one per request or per turn
 * of the event loop, which cost a local server as much as the rest of the audit. Whoever creates
 * it flushes it when stopping: held lines are the only state it has.
 */
export function bufferedStdoutAudit(maxDelayMs = 20, maxBytes = 64 * 1024): BufferedAudit {
  let pending = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const lines = pending;
    pending = "";
    process.stdout.write(lines);
  };
  const sink = (record: AuditRecord) => {
    pending += `${auditJson(record)}\n`;
    if (pending.length >= maxBytes) flush();
    // Unref'd: a pending write never keeps the process alive; exit and close flush it instead.
    else if (timer === undefined) timer = setTimeout(flush, maxDelayMs).unref();
  };
  return Object.assign(sink, { flush });
}
