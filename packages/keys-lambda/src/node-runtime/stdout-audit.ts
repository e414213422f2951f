import { auditJson, isoNow } from "../core/audit.js";
import { type AuditRecord, KeyServerConfigError } from "../core/options.js";

/**
 * At most this many bytes of audit lines wait for stdout by default (held here or in stdout's own
 * buffer), about 17,000 lines. When stdout goes to a pipe whose reader stalls, node buffers every
 * write in memory without limit; past this bound lines are dropped and counted instead.
 */
export const DEFAULT_AUDIT_BUFFER_BYTES = 4 * 1024 * 1024;
/** Below this a stream's own buffering (16 KiB) and one batch could not fit. */
export const MIN_AUDIT_BUFFER_BYTES = 64 * 1024;

/** The line written once stdout drains again after lines were dropped. */
export interface AuditDroppedRecord {
  type: "blindcast.keys.audit_dropped";
  /** When the line was written. */
  time: string;
  /** How many audit lines were dropped. */
  count: number;
  /** When the first of them was dropped. */
  since: string;
}

/** What a stdout audit sink needs of its stream (process.stdout, or any node Writable). */
export interface AuditStream {
  write(chunk: string): boolean;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  once(event: "drain", listener: () => void): unknown;
}

export interface StdoutAuditOptions {
  /**
   * Lines are held back and written together at most this many ms late; 0 writes each line at
   * once. Default 0.
   */
  maxDelayMs?: number;
  /** Held lines are written as soon as they reach this many bytes. Default 64 KiB. */
  batchBytes?: number;
  /**
   * At most this many bytes of lines waiting to be written (held back, plus those in the
   * stream's buffer); past it lines are dropped and counted, and the count is written as an
   * `AuditDroppedRecord` line once the stream drains. At least 64 KiB; default 4 MiB.
   */
  maxBufferedBytes?: number;
  /** Default `process.stdout`. */
  stream?: AuditStream;
}

/** An audit sink; `flush` writes what it holds back, and the count of dropped lines if any. */
export interface StdoutAudit {
  (record: AuditRecord): void;
  flush(): void;
}

/**
 * Audit records as JSON lines on stdout: on Lambda each line reaches CloudWatch as a pure JSON
 * message (console.log would prefix it with a timestamp and request id, hiding the fields from
 * Logs Insights' automatic discovery), and it skips console's formatting.
 *
 * With `maxDelayMs`, lines are gathered and written at most that late (or once `batchBytes` are
 * held): under load one write (a system call) per many requests instead of one per request,
 * which cost a local server as much as the rest of the audit. Whoever creates such a sink
 * flushes it when stopping: held lines are the only state it has.
 *
 * Memory is bounded whatever the reader does: a line that would take the bytes waiting for the
 * stream past `maxBufferedBytes` is dropped. Dropping is counted, never silent: once the stream
 * drains (or at the next flush with room) one line
 * `{"type":"blindcast.keys.audit_dropped","time":…,"count":N,"since":…}` says how many were lost.
 */
export function createStdoutAudit(options: StdoutAuditOptions = {}): StdoutAudit {
  const { maxDelayMs = 0, batchBytes = 64 * 1024, maxBufferedBytes = DEFAULT_AUDIT_BUFFER_BYTES } = options;
  if (!Number.isInteger(maxBufferedBytes) || maxBufferedBytes < MIN_AUDIT_BUFFER_BYTES) {
    throw new KeyServerConfigError(
      `the audit buffer must be an integer of at least ${MIN_AUDIT_BUFFER_BYTES} bytes`,
    );
  }
  // Lines held here are written well before they could fill the bound themselves: lines are
  // dropped only when the stream is backed up, which it signals with "drain" when it empties.
  const flushAtBytes = Math.min(batchBytes, Math.floor(maxBufferedBytes / 4));
  // Looked up at the first line, not at import: process.stdout is created when first read.
  const out = (): AuditStream => options.stream ?? process.stdout;
  let pending = "";
  let pendingBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let dropped = 0;
  let droppedSince = "";
  let waitingForDrain = false;

  /** The dropped count, once, ahead of whatever is written next. */
  const takeDroppedReport = (): string => {
    if (dropped === 0) return "";
    const record: AuditDroppedRecord = {
      type: "blindcast.keys.audit_dropped",
      time: isoNow(),
      count: dropped,
      since: droppedSince,
    };
    dropped = 0;
    return `${JSON.stringify(record)}\n`;
  };

  /** Writes the held lines; with `report`, the count of dropped lines after them. */
  const write = (report: boolean) => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    // Held lines were accepted before the drops: the count follows them, where the gap is. It is
    // written even past the bound: one short line per time the reader stalled.
    const lines = report ? pending + takeDroppedReport() : pending;
    pending = "";
    pendingBytes = 0;
    if (lines !== "") out().write(lines);
  };
  // While the stream is backed up, the count waits for "drain": written now it would be followed
  // by more drops, and a count per batch.
  const onTimer = () => write(!waitingForDrain);
  const flush = () => write(true);

  const onDrain = () => {
    waitingForDrain = false;
    if (dropped > 0) flush();
  };

  const sink = (record: AuditRecord) => {
    const line = `${auditJson(record)}\n`;
    // Bytes, not UTF-16 units: a viewerId or reason may hold any character.
    const bytes = Buffer.byteLength(line);
    const stream = out();
    if (stream.writableLength + pendingBytes + bytes > maxBufferedBytes) {
      if (dropped === 0) droppedSince = record.time;
      dropped++;
      // A stream that cannot take more says so with "drain" once it has emptied. (Should it not be
      // backed up, the flush already scheduled for the lines held here writes the count.)
      if (!waitingForDrain && stream.writableNeedDrain) {
        waitingForDrain = true;
        stream.once("drain", onDrain);
      }
      return;
    }
    if (dropped > 0) {
      // Room again: the count goes between the lines held before the gap and this one, after it.
      const report = takeDroppedReport();
      pending += report;
      pendingBytes += report.length;
    }
    pending += line;
    pendingBytes += bytes;
    if (pendingBytes >= flushAtBytes || maxDelayMs === 0) write(true);
    // Unref'd: a pending write never keeps the process alive; exit and close flush it instead.
    else if (timer === undefined) timer = setTimeout(onTimer, maxDelayMs).unref();
  };
  return Object.assign(sink, { flush });
}

/** The Lambda's sink: each line written at once (a frozen environment must not hold lines back). */
export const stdoutAudit: StdoutAudit = createStdoutAudit();

/**
 * The local server's sink: lines gathered for at most 20 ms (or 64 KiB) and written together,
 * bounded like every stdout sink.
 */
export function bufferedStdoutAudit(maxBufferedBytes = DEFAULT_AUDIT_BUFFER_BYTES): StdoutAudit {
  return createStdoutAudit({ maxDelayMs: 20, batchBytes: 64 * 1024, maxBufferedBytes });
}
