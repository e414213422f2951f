import { PackagerError } from "./errors.js";

/**
 * Checks a `keyUriBase` and returns it in the form key URIs are built from: an absolute http(s)
 * URL, as `URL` serialises it (so a `"` can never end the playlist's quoted attribute), with no
 * trailing slash. Credentials, a query or a fragment are refused: appending `/{contentId}/{epoch}`
 * to them would not name the key route, and a playlist is public.
 */
export function checkKeyUriBase(base: unknown): string {
  const refuse = (why: string) =>
    new PackagerError("INVALID_OPTIONS", `keyUriBase ${JSON.stringify(base)} ${why}`);
  if (typeof base !== "string" || base.trim() === "") throw refuse("must be a URL");
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw refuse("is not an absolute URL (https://keys.example.com/keys)");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw refuse("must be an http: or https: URL");
  if (url.username || url.password) throw refuse("must not hold credentials: playlists are public");
  if (base.includes("?") || base.includes("#")) throw refuse("must have no query or fragment");
  return url.href.replace(/\/+$/, "");
}
