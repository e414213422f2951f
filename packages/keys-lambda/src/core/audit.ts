import type { AuditRecord } from "./options.js";

/**
 * The default audit sink: one JSON object per line on stdout, which CloudWatch Logs (and most log
 * shippers) index field by field.
 */
export function jsonLinesAudit(record: AuditRecord): void {
  console.log(JSON.stringify(record));
}
