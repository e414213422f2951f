import type { RouteName } from "./options.js";

export interface MatchedRoute {
  name: RouteName;
  /** The raw path segments after `/keys`, validated later by the route itself. */
  params: string[];
}

export type RouteMatch =
  | { kind: "matched"; route: MatchedRoute }
  | { kind: "method_not_allowed"; allow: string[] }
  | { kind: "not_found" };

interface RouteDef {
  name: RouteName;
  method: string;
  /** Literal segments after `/keys`; `*` matches any one segment. */
  pattern: string[];
}

// Routes are matched by method and shape, so a contentId such as "leases" stays usable for
// GET while POST /keys/leases still creates a lease.
const ROUTES: RouteDef[] = [
  { name: "lease_create", method: "POST", pattern: ["leases"] },
  { name: "lease_renew", method: "POST", pattern: ["leases", "renew"] },
  { name: "lease_release", method: "DELETE", pattern: ["leases"] },
  { name: "lease_release", method: "DELETE", pattern: ["leases", "*"] },
  { name: "publish_keys", method: "POST", pattern: ["publish", "*", "keys"] },
  { name: "publish_uploads", method: "POST", pattern: ["publish", "*", "uploads"] },
  // Any keys of one title through one URL, so a browser preflights it once per title (a GET per
  // key is a URL per key, each preflighted: Authorization and X-Blindcast-Lease are not safelisted).
  { name: "title_keys", method: "POST", pattern: ["*", "keys"] },
  { name: "content_key", method: "GET", pattern: ["*"] },
  { name: "epoch_key", method: "GET", pattern: ["*", "*"] },
];

const NOT_FOUND: RouteMatch = { kind: "not_found" };

/**
 * Finds the route for a path. Whatever precedes the first `/keys` segment (a stage, a base path)
 * is ignored. Empty segments (`//`, a trailing `/`) never match. Runs on every request, so it
 * walks the table with plain loops rather than allocating filtered copies.
 */
export function matchRoute(method: string, path: string): RouteMatch {
  const segments = path.split("/");
  const at = segments.indexOf("keys");
  if (at < 0) return NOT_FOUND;
  const rest = segments.slice(at + 1);
  if (rest.length === 0 || rest.includes("")) return NOT_FOUND;

  let allow: string[] | undefined;
  for (const route of ROUTES) {
    if (!fits(route.pattern, rest)) continue;
    // A literal route outranks a wildcard one for the same method (POST /keys/leases/renew):
    // the table lists literal routes first.
    if (route.method === method) return { kind: "matched", route: { name: route.name, params: rest } };
    allow ??= [];
    if (!allow.includes(route.method)) allow.push(route.method);
  }
  if (!allow) return NOT_FOUND;
  allow.push("OPTIONS");
  return { kind: "method_not_allowed", allow };
}

function fits(pattern: readonly string[], segments: readonly string[]): boolean {
  if (pattern.length !== segments.length) return false;
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== "*" && pattern[i] !== segments[i]) return false;
  }
  return true;
}

/** Methods a path answers, for `Allow` and preflights; empty when the path is unknown. */
export function allowedMethods(path: string): string[] {
  const match = matchRoute("OPTIONS", path);
  return match.kind === "method_not_allowed" ? match.allow : [];
}
