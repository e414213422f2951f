/** Headers that must appear once: two values would make identity or the lease ambiguous. */
export const SINGLE_VALUE_HEADERS: readonly string[] = [
  "authorization",
  "origin",
  "content-type",
  "x-blindcast-lease",
];

/**
 * The single-value headers whose valid values never hold a comma. Where repeats reach us only
 * joined with commas (HTTP API payload 2.0, Function URLs), a comma in one of these can only be
 * a repeat. `Authorization` is not among them: a SigV4 value is
 * `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, and a quoted Content-Type
 * parameter may hold one too.
 */
export const COMMA_FREE_HEADERS: readonly string[] = ["origin", "x-blindcast-lease"];

/** The first comma-free single-value header whose value holds a comma, i.e. arrived twice. */
export function commaJoinedRepeat(headers: Readonly<Record<string, string>>): string | undefined {
  for (const name of COMMA_FREE_HEADERS) {
    if (headers[name]?.includes(",")) return name;
  }
  return undefined;
}

export function isSingleValueHeader(lowercaseName: string): boolean {
  return SINGLE_VALUE_HEADERS.includes(lowercaseName);
}

export function repeatedHeaderProblem(name: string): string {
  return `Header ${name} must appear once`;
}
