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
  { name: "lease_release", method: "DELETE", pattern: ["leases", "*"] },
  { name: "content_key", method: "GET", pattern: ["*"] },
  { name: "epoch_key", method: "GET", pattern: ["*", "*"] },
];

/**
 * Finds the route for a path. Whatever precedes the first `/keys` segment (a stage, a base path)
 * is ignored. Empty segments (`//`, a trailing `/`) never match.
 */
export function matchRoute(method: string, path: string): RouteMatch {
  const segments = path.split("/");
  const at = segments.indexOf("keys");
  if (at < 0) return { kind: "not_found" };
  const rest = segments.slice(at + 1);
  if (rest.length === 0 || rest.some((segment) => segment === "")) return { kind: "not_found" };

  const fits = ROUTES.filter(
    (route) =>
      route.pattern.length === rest.length &&
      route.pattern.every((part, i) => part === "*" || part === rest[i]),
  );
  if (fits.length === 0) return { kind: "not_found" };
  // A literal route outranks a wildcard one for the same method (POST /keys/leases/renew).
  const route = fits.find((r) => r.method === method);
  if (route) return { kind: "matched", route: { name: route.name, params: rest } };
  const allow = [...new Set(fits.map((r) => r.method)), "OPTIONS"];
  return { kind: "method_not_allowed", allow };
}

/** Methods a path answers, for `Allow` and preflights; empty when the path is unknown. */
export function allowedMethods(path: string): string[] {
  const match = matchRoute("OPTIONS", path);
  return match.kind === "method_not_allowed" ? match.allow : [];
}
