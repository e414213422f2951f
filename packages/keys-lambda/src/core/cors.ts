import { KeyServerConfigError } from "./options.js";

/** Request headers the player sends; a preflight allows exactly these. */
export const ALLOWED_REQUEST_HEADERS = "authorization, content-type, x-blindcast-lease";

/**
 * Response headers the player reads that are not CORS-safelisted: without this list a browser
 * hides them from a page on another origin (the player could not honour `Retry-After`).
 */
export const EXPOSED_RESPONSE_HEADERS = "retry-after";

export interface CorsPolicy {
  /** The `Access-Control-Allow-Origin` value for this request's origin, or undefined if refused. */
  allowOriginFor(origin: string): string | undefined;
}

/**
 * Parses `corsOrigins` strictly: each entry must be an exact origin (scheme, host, optional port,
 * nothing else), because a typo such as a trailing slash would otherwise silently refuse every
 * browser.
 */
export function createCorsPolicy(corsOrigins: string | readonly string[]): CorsPolicy {
  const entries = (typeof corsOrigins === "string" ? corsOrigins.split(",") : [...corsOrigins]).map(
    (entry) => (typeof entry === "string" ? entry.trim() : ""),
  );
  if (entries.length === 0 || entries.every((entry) => entry === "")) {
    throw new KeyServerConfigError(
      "corsOrigins is empty: give comma-separated origins such as https://app.example.com, or * to allow any",
    );
  }
  if (entries.includes("*")) {
    if (entries.length > 1)
      throw new KeyServerConfigError("corsOrigins: '*' cannot be combined with origins");
    return { allowOriginFor: () => "*" };
  }
  const allowed = new Set<string>();
  for (const entry of entries) {
    if (entry === "") throw new KeyServerConfigError("corsOrigins has an empty entry");
    allowed.add(canonicalOrigin(entry));
  }
  return { allowOriginFor: (origin) => (allowed.has(origin) ? origin : undefined) };
}

function canonicalOrigin(entry: string): string {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new KeyServerConfigError(
      `corsOrigins: "${entry}" is not an origin such as https://app.example.com`,
    );
  }
  const bare = url.pathname === "/" && !url.search && !url.hash && !url.username && !url.password;
  if ((url.protocol !== "https:" && url.protocol !== "http:") || !bare || entry.endsWith("/")) {
    throw new KeyServerConfigError(
      `corsOrigins: "${entry}" must be just scheme://host[:port], with no path or trailing slash`,
    );
  }
  // Browsers send origins lowercased and without default ports; compare in that form.
  return url.origin;
}
