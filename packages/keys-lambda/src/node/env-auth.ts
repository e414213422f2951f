import type { AuthResult } from "../core/options.js";
import { createJwtAuthenticator, type EventWithHeaders } from "../jwt/index.js";
import { EnvConfigError } from "./env.js";
import { DEFAULT_PUBLISHER_SCOPE } from "./env-publish.js";

export interface AuthFromEnv {
  authenticate: ((event: EventWithHeaders) => Promise<AuthResult>) | undefined;
  /** One line for the start-up summary. */
  summary: string;
}

/**
 * Bearer JWTs from the environment: `JWT_SECRET` (HS256, shared with your token issuer) or
 * `JWT_JWKS_URL` with `JWT_ISSUER` and `JWT_AUDIENCE` (an identity provider's RS256/ES256 keys);
 * `JWT_ISSUER` / `JWT_AUDIENCE` are checked with a secret too when set.
 */
export function authFromEnv(env: Record<string, string | undefined>, publishing = false): AuthFromEnv {
  // Tokens carrying the publisher scope may publish; only read when publishing is on.
  const scope = env.JWT_PUBLISHER_SCOPE?.trim() || DEFAULT_PUBLISHER_SCOPE;
  const claim = env.JWT_PUBLISHER_CLAIM?.trim() || undefined;
  const publisher = publishing ? { publisherScope: scope, ...(claim ? { publisherClaim: claim } : {}) } : {};
  const publisherNote = publishing ? `; publishers carry ${scope} in ${claim ?? "scope/scp"}` : "";
  const secret = env.JWT_SECRET?.trim();
  const jwksUrl = env.JWT_JWKS_URL?.trim();
  const issuer = env.JWT_ISSUER?.trim() || undefined;
  const audience = env.JWT_AUDIENCE?.split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (secret && jwksUrl) throw new EnvConfigError("Set JWT_SECRET or JWT_JWKS_URL, not both");
  if (jwksUrl) {
    if (!issuer || !audience?.length) {
      throw new EnvConfigError(
        "JWT_JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE: without them any token of that provider, for any application, would pass",
      );
    }
    const algorithms = env.JWT_ALGORITHMS?.split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "");
    try {
      return {
        authenticate: createJwtAuthenticator({
          jwksUrl,
          issuer,
          audience,
          ...(algorithms?.length ? { algorithms } : {}),
          ...publisher,
        }),
        summary: `auth: bearer JWT from ${new URL(jwksUrl).host} (JWKS, issuer ${issuer}); the viewer is the token's sub${publisherNote}`,
      };
    } catch (error) {
      throw new EnvConfigError(`JWT_JWKS_URL: ${(error as Error).message}`);
    }
  }
  if (secret) {
    if (new TextEncoder().encode(secret).length < 32) {
      throw new EnvConfigError("JWT_SECRET must be at least 32 bytes; generate with: openssl rand -hex 32");
    }
    return {
      authenticate: createJwtAuthenticator({
        secret,
        ...(issuer ? { issuer } : {}),
        ...(audience?.length ? { audience } : {}),
        ...publisher,
      }),
      summary: `auth: bearer JWT (HS256, JWT_SECRET); the viewer is the token's sub${publisherNote}`,
    };
  }
  return {
    authenticate: undefined,
    summary: "auth: none (set JWT_SECRET or JWT_JWKS_URL to require bearer JWTs)",
  };
}
