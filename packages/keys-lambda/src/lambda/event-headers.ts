import { commaJoinedRepeat, isSingleValueHeader } from "../core/headers.js";

/** An event's headers with lowercase names, and the first single-value header seen twice. */
export interface EventHeaders {
  headers: Record<string, string>;
  repeated: string | undefined;
}

/**
 * HTTP API payload 2.0 and Function URLs: one value per name, repeats joined with commas. Only
 * headers whose valid values cannot hold a comma can be told repeated (see COMMA_FREE_HEADERS).
 */
export function commaJoinedHeaders(raw: unknown): EventHeaders {
  const read = singleValueHeaders(raw);
  read.repeated ??= commaJoinedRepeat(read.headers);
  return read;
}

/**
 * REST APIs (payload 1.0) and ALB targets: `multiValueHeaders` lists every value as sent, so
 * repeats are counted, not guessed. An ALB target group with multi-value headers on sends no
 * `headers` at all; without it, an ALB keeps only the last value, as `headers` does on REST.
 */
export function multiValueHeaders(raw: unknown, multi: unknown): EventHeaders {
  if (!isRecord(multi)) return singleValueHeaders(raw);
  const headers: Record<string, string> = {};
  let repeated: string | undefined;
  for (const [name, values] of Object.entries(multi)) {
    if (!Array.isArray(values)) continue;
    const strings = values.filter((value): value is string => typeof value === "string");
    if (strings.length === 0) continue;
    const lower = name.toLowerCase();
    if (lower === "__proto__") continue;
    const joined = strings.join(",");
    const seen = headers[lower];
    headers[lower] = seen === undefined ? joined : `${seen},${joined}`;
    if (repeated === undefined && isSingleValueHeader(lower) && (seen !== undefined || strings.length > 1)) {
      repeated = lower;
    }
  }
  return { headers, repeated };
}

/** One value per name; two spellings of one name (Origin and origin) are a repeat. */
function singleValueHeaders(raw: unknown): EventHeaders {
  const headers: Record<string, string> = {};
  let repeated: string | undefined;
  if (!isRecord(raw)) return { headers, repeated };
  // for…in with an own-property check rather than Object.entries: no array of pairs per request.
  for (const name in raw) {
    if (!Object.hasOwn(raw, name)) continue;
    const value = raw[name];
    if (typeof value !== "string") continue;
    const lower = name.toLowerCase();
    if (lower === "__proto__") continue;
    const seen = headers[lower];
    headers[lower] = seen === undefined ? value : `${seen},${value}`;
    if (seen !== undefined && repeated === undefined && isSingleValueHeader(lower)) repeated = lower;
  }
  return { headers, repeated };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
