import { jwtVerify } from "jose";
import type { AuthResult } from "../core/options.js";

export interface JwtAuthOptions {
  /** The HS256 signing secret shared with whoever issues viewer tokens; at least 32 bytes. */
  secret: string | Uint8Array;
  /** Require this `iss` claim. */
  issuer?: string;
  /** Require this `aud` claim. */
  audience?: string;
}

/** Anything with API Gateway-style lowercase headers. */
export interface EventWithHeaders {
  headers?: Record<string, string | undefined> | null;
}

/**
 * An `authenticate` callback for bearer JWTs signed with HS256: refuses a missing, malformed,
 * expired or wrongly signed token with 401, and names the viewer by the token's `sub` claim.
 */
export function createJwtAuthenticator(
  options: JwtAuthOptions,
): (event: EventWithHeaders) => Promise<AuthResult> {
  const secret =
    typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret;
  if (!(secret instanceof Uint8Array) || secret.length < 32) {
    throw new Error("JWT secret must be at least 32 bytes");
  }
  const verify = {
    algorithms: ["HS256"],
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  return async (event) => {
    const header = event.headers?.authorization;
    const match = header ? /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header) : null;
    if (!match?.[1]) {
      return { ok: false, status: 401, reason: header ? "Malformed Authorization header" : "Missing token" };
    }
    try {
      const { payload } = await jwtVerify(match[1], secret, verify);
      if (typeof payload.sub !== "string" || payload.sub === "") {
        return { ok: false, status: 401, reason: "Token has no subject" };
      }
      return { ok: true, viewerId: payload.sub };
    } catch (error) {
      const expired = (error as { code?: string }).code === "ERR_JWT_EXPIRED";
      return { ok: false, status: 401, reason: expired ? "Token expired" : "Invalid token" };
    }
  };
}
