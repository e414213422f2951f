// What every peer server shares: the parts of the key route a developer would write the same way
// on any framework (configuration, validation, an in-memory lease map, HKDF with hkdfSync, one
// JSON audit line per request). Each peer's own file is the framework's part: routing, headers,
// the answer. Nothing here comes from Blindcast's packages.
import { hkdfSync, randomBytes } from "node:crypto";

const hex = (name) => Buffer.from(process.env[name] ?? "", "hex");
const masterKey = hex("MASTER_KEY");
const salt = hex("SALT");
if (masterKey.length < 16 || salt.length < 16) throw new Error("set MASTER_KEY and SALT (hex)");
const origins = new Set((process.env.CORS_ORIGINS ?? "").split(",").map((o) => o.trim()));
const TTL_SECONDS = Number(process.env.LEASE_TTL_SECONDS ?? 60);
const CONTENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;
const EPOCH = /^(0|[1-9][0-9]{0,9})$/;

/** undefined when no Origin was sent (not a browser), true or false otherwise. */
export const originAllowed = (origin) => (origin === undefined ? undefined : origins.has(origin));

export function corsHeaders(origin) {
  return origin === undefined
    ? {}
    : {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": "retry-after",
        vary: "Origin",
      };
}

export const KEY_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "content-type": "application/octet-stream",
};

/** Why the request is refused, as [status, error, code], or the key. */
export function keyFor(contentId, epochText, leaseId) {
  if (!CONTENT_ID.test(contentId) || contentId === "." || contentId === "..")
    return [400, "Invalid contentId", "bad_request"];
  if (!EPOCH.test(epochText) || Number(epochText) > 4294967295) return [400, "Invalid epoch", "bad_request"];
  if (!leaseId) return [403, "A lease is required", "lease_required"];
  const lease = leases.get(leaseId);
  if (lease === undefined) return [403, "Lease not found", "lease_not_found"];
  if (lease.expiresAt <= Date.now()) return [403, "Lease expired", "lease_expired"];
  if (lease.contentId !== contentId) return [403, "Lease is for other content", "lease_forbidden"];
  return hkdfSync("sha256", masterKey, salt, `blindcast/v1/epoch/${contentId}/${epochText}`, 16);
}

const leases = new Map();

/** A new lease for `contentId`, or [status, error, code] when the body is not one. */
export function createLease(body) {
  const contentId = body?.contentId;
  if (typeof contentId !== "string" || !CONTENT_ID.test(contentId))
    return [400, "Invalid contentId", "bad_request"];
  const leaseId = randomBytes(16).toString("base64url");
  const expiresAt = Date.now() + TTL_SECONDS * 1000;
  leases.set(leaseId, { contentId, expiresAt });
  return { leaseId, contentId, expiresAt: new Date(expiresAt).toISOString(), ttlSeconds: TTL_SECONDS };
}

// Audit lines are written in batches (every 20 ms or 64 KiB), as blindcast-keys writes its own:
// the comparison is of the key path, not of one stdout write per request.
let pending = "";
let timer;
const flush = () => {
  clearTimeout(timer);
  timer = undefined;
  if (pending !== "") process.stdout.write(pending);
  pending = "";
};
process.on("exit", flush);

export function audit(method, route, status, contentId, epoch, started) {
  pending += `${JSON.stringify({
    type: "key_request",
    time: new Date().toISOString(),
    method,
    route,
    contentId,
    epoch: epoch === undefined ? undefined : Number(epoch),
    viewerId: "anonymous",
    status,
    durationMs: performance.now() - started,
  })}\n`;
  if (pending.length >= 65536) flush();
  else timer ??= setTimeout(flush, 20);
}

export const PORT_MESSAGE = (port) => `listening on http://127.0.0.1:${port}/keys`;
