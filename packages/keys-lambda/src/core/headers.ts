import { MAX_BODY_BYTES } from "./options.js";

/** Headers that must appear once: two values would make identity or the lease ambiguous. */
export const SINGLE_VALUE_HEADERS = ["authorization", "origin", "content-type", "x-blindcast-lease"];

/**
 * The first single-value header that arrived more than once, in headers whose repeats were joined
 * with commas (as HTTP APIs and the node:http adapter join them): no value we read holds one.
 */
export function repeatedSingleValueHeader(headers: Readonly<Record<string, string>>): string | undefined {
  for (const name of SINGLE_VALUE_HEADERS) {
    if (headers[name]?.includes(",")) return name;
  }
  return undefined;
}

export function repeatedHeaderProblem(name: string): string {
  return `Header ${name} must appear once`;
}

export const BODY_TOO_LARGE = `Request body is over ${MAX_BODY_BYTES} bytes`;
