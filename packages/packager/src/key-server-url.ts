// What the packager's clients of the key server (the key source and the uploader) accept as its
// URL and as a token: one rule for both, since both send the publisher's token there.
import { BlockList, isIP } from "node:net";

/** RFC 6750 b64token: what a bearer token may contain, so it cannot break the header. */
export const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** 127.0.0.0/8 and ::1, in any spelling (also IPv4-mapped). */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * The key routes' URL, without trailing slashes, from either URL people hold: the player's
 * `keyServerUrl` (ending in `/keys`) or the base URL of the routes (`/keys` is added; the routes
 * always sit under a `keys` segment). Refused unless https, or http to this machine: the token
 * would otherwise cross the network in clear.
 */
export function resolveKeysUrl(value: unknown): { url: string } | { problem: string } {
  let url: URL | undefined;
  try {
    url = new URL(String(value));
  } catch {
    // Reported below.
  }
  const shown = JSON.stringify(String(value).slice(0, 200));
  if (typeof value !== "string" || !url || !/^https?:$/.test(url.protocol)) {
    return { problem: `the key server URL must be an https:// URL (got ${shown})` };
  }
  if (url.username || url.password || url.search || url.hash) {
    // Not quoted: user:password@ in it may be a secret, and so may a query.
    return { problem: "the key server URL must have no user name, password, query or fragment" };
  }
  if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    return {
      problem: `the key server URL must be https:// (got ${shown}): the token and the keys would cross the network in clear; http:// is only for localhost`,
    };
  }
  const href = url.href.replace(/\/+$/, "");
  return { url: /\/keys$/.test(url.pathname.replace(/\/+$/, "")) ? href : `${href}/keys` };
}

function isLoopback(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (name === "localhost") return true;
  const family = isIP(name);
  return family !== 0 && LOOPBACK.check(name, family === 6 ? "ipv6" : "ipv4");
}
