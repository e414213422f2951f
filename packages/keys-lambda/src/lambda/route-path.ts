/**
 * The path of a request relative to the API, from what API Gateway says about the route it
 * matched. Behind a custom domain, `path` (REST) and `rawPath` (HTTP API) keep the base path
 * mapping (`/media/keys/movie-1`), and nothing in the path itself tells a base path named `keys`
 * from the route's own `keys`. The matched route does: its template (`resource` on REST,
 * `routeKey` on HTTP APIs) filled with `pathParameters` has as many segments as the part of the
 * path the API routed, so the path's last that-many segments are the route's own.
 *
 * Answers `undefined` when the event names no route (`$default`, an ALB, a hand-made event) or
 * does not add up (a parameter missing, a decoded `%2F` making the route longer than the path);
 * the caller then falls back to the path as received.
 */
export function routeRelativePath(
  path: string,
  template: string | undefined,
  pathParameters: unknown,
): string | undefined {
  if (template === undefined || !template.startsWith("/")) return undefined;
  const params =
    typeof pathParameters === "object" && pathParameters !== null
      ? (pathParameters as Record<string, unknown>)
      : {};
  let routed = "";
  for (const segment of template.slice(1).split("/")) {
    const variable = /^\{([^{}+]+)\+?\}$/.exec(segment);
    const value = variable ? params[variable[1] as string] : segment;
    if (typeof value !== "string") return undefined;
    routed += `/${value}`;
  }
  const count = routed.split("/").length - 1;
  const segments = path.split("/");
  if (segments[0] !== "" || segments.length - 1 < count) return undefined;
  return `/${segments.slice(segments.length - count).join("/")}`;
}

/** The template of an HTTP API route key (`GET /keys/{proxy+}` → `/keys/{proxy+}`). */
export function routeKeyTemplate(routeKey: unknown): string | undefined {
  if (typeof routeKey !== "string") return undefined;
  const space = routeKey.indexOf(" ");
  return space < 0 ? undefined : routeKey.slice(space + 1);
}

/** HTTP APIs put a named stage at the front of rawPath; REST APIs leave it out of `path`. */
export function stripStage(path: string, stage: string | undefined): string {
  if (!stage || stage === "$default") return path;
  const prefix = `/${stage}`;
  return path === prefix || path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path;
}
