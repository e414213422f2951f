import { isSingleValueHeader } from "../core/headers.js";

/** Request headers as API Gateway's HTTP API hands them to Lambda. */
export interface JoinedHeaders {
  /** Lowercase names; a repeated header's values joined with commas. */
  headers: Record<string, string>;
  /** Every cookie pair, apart from the headers (HTTP API payload 2.0 passes them that way). */
  cookies: string[] | undefined;
  /** The first single-value header (`Authorization`, `Origin`, …) that arrived more than once. */
  repeated: string | undefined;
}

/**
 * Reads `rawHeaders`, which keeps every repeat: `req.headers` silently drops a repeated
 * Authorization or Content-Type, which would hide an ambiguous request instead of refusing it.
 * Repeats are counted here, where they are still separate, rather than guessed from commas
 * afterwards (a SigV4 Authorization value holds commas).
 */
export function joinHeaders(raw: readonly string[]): JoinedHeaders {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  let repeated: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    if (name === "cookie") {
      cookies ??= [];
      for (const pair of value.split(/;\s*/)) if (pair !== "") cookies.push(pair);
    } else if (name !== "__proto__") {
      const seen = headers[name];
      if (seen === undefined) {
        headers[name] = value;
      } else {
        headers[name] = `${seen},${value}`;
        if (repeated === undefined && isSingleValueHeader(name)) repeated = name;
      }
    }
  }
  return { headers, cookies, repeated };
}
