import type { AuditRecord } from "./options.js";

/**
 * The default audit sink: one JSON object per line on stdout, which CloudWatch Logs (and most log
 * shippers) index field by field.
 */
export function jsonLinesAudit(record: AuditRecord): void {
  console.log(auditJson(record));
}

const q = JSON.stringify;
const num = (value: number) => (Number.isFinite(value) ? `${value}` : "null");

/**
 * `JSON.stringify(record)`, exactly (a property test holds it to that), written out for the one
 * shape it serialises: on a busy server generic stringify was the largest cost of auditing. The
 * type, an ISO time and the route name need no escaping; everything a request can influence
 * still goes through JSON.stringify.
 */
export function auditJson(record: AuditRecord): string {
  let json = `{"type":"${record.type}","time":"${record.time}"`;
  if (record.requestId !== undefined) json += `,"requestId":${q(record.requestId)}`;
  json += `,"method":${q(record.method)},"route":"${record.route}"`;
  if (record.contentId !== undefined) json += `,"contentId":${q(record.contentId)}`;
  if (record.epoch !== undefined) json += `,"epoch":${num(record.epoch)}`;
  if (record.viewerId !== undefined) json += `,"viewerId":${q(record.viewerId)}`;
  if (record.keys !== undefined) json += `,"keys":${q(record.keys)}`;
  json += `,"status":${num(record.status)}`;
  if (record.reason !== undefined) json += `,"reason":${q(record.reason)}`;
  return `${json},"durationMs":${num(record.durationMs)}}`;
}

let lastMillis = Number.NaN;
let lastIso = "";

/**
 * The current time as ISO 8601. Under load many requests share a millisecond; formatting a date
 * costs about as much as the rest of the audit record, so the string is kept for that millisecond.
 */
export function isoNow(): string {
  const millis = Date.now();
  if (millis !== lastMillis) {
    lastMillis = millis;
    lastIso = new Date(millis).toISOString();
  }
  return lastIso;
}
