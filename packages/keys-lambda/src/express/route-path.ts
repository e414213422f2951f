/**
 * The path the core routes, from where Express mounted the key server (`req.baseUrl`) and the
 * path below it (`req.path`, percent-encoding untouched). Mounted at a path (`/keys`,
 * `/api/v1/keys`, `/media`), that path is the base of the key routes and everything below it is
 * theirs, as `/keys` is on the other adapters. Mounted at the root, the routes sit under `/keys`,
 * as on the node:http server, and any other path is the app's: `undefined`, passed on.
 */
export function keyRoutePath(baseUrl: string, path: string): string | undefined {
  if (baseUrl !== "") return `/keys${path}`;
  return path === "/keys" || path.startsWith("/keys/") ? path : undefined;
}
