import type { JWTVerifyGetKey, JWTVerifyOptions } from "jose";
// jose's own subpath, not its index: importing the index loads all of jose (its JWE, JWK and
// key generation modules too), and reaches the JWKS code this module imports only on demand.
import { jwtVerify } from "jose/jwt/verify";
import type { AuthResult } from "../core/options.js";

/** HS256 tokens signed with a secret you share with whoever issues them. */
export interface JwtSecretOptions {
  /** The HS256 signing secret; at least 32 bytes. */
  secret: string | Uint8Array;
  jwksUrl?: undefined;
}

/**
 * Tokens from an identity provider (Cognito, Auth0, Okta, Keycloak…) that signs with its own
 * keys (RS256, ES256, …) and publishes them as a JWKS. `issuer` and `audience` are required:
 * without them any token the provider issues, for any application, would be accepted.
 */
export interface JwtJwksOptions {
  secret?: undefined;
  /** The provider's JWKS URL (`https://…/.well-known/jwks.json`). */
  jwksUrl: string | URL;
  issuer: string;
  audience: string | readonly string[];
  /** Signature algorithms accepted. Default `RS256` and `ES256`. */
  algorithms?: readonly string[];
  /**
   * Seconds after a fetch of the JWKS before a token signed by an unknown key (the provider
   * rotated its keys) may fetch it again. Default 30; cached keys stay in use meanwhile.
   */
  jwksCooldownSeconds?: number;
}

export type JwtAuthOptions = (JwtSecretOptions | JwtJwksOptions) & JwtCheckOptions;

/** The checks every token gets, whatever signs it. */
export interface JwtCheckOptions {
  /** Require this `iss` claim. */
  issuer?: string;
  /** Require this `aud` claim (one of these). */
  audience?: string | readonly string[];
  /**
   * Refuse tokens without `exp`, which would otherwise be valid forever. Default true; turn off
   * only with `maxTokenAgeSeconds` set, so every token still ages out.
   */
  requireExpiration?: boolean;
  /** Leeway for clocks that disagree, applied to `exp`, `nbf` and `iat`. 0 to 300; default 30. */
  clockToleranceSeconds?: number;
  /** Refuse tokens issued (`iat`) longer ago than this, and tokens without `iat`. Default: no limit. */
  maxTokenAgeSeconds?: number;
  /**
   * Header `typ` values accepted when a token has one (case-insensitive); tokens without `typ`
   * are accepted. Default `JWT` and `at+jwt` (RFC 9068 access tokens): other typed tokens (an ID
   * token's cousin, a logout token) are for other purposes.
   */
  acceptedTypes?: readonly string[];
  /**
   * Tokens whose `publisherClaim` holds this value are publishers (`publisher: true`): they may
   * use the publisher routes (packaging keys, upload URLs). E.g. `blindcast:publish`. Default: no
   * token is a publisher.
   */
  publisherScope?: string;
  /**
   * The claim `publisherScope` is looked for in: a space-separated string or an array of strings.
   * Default `scope` (OAuth 2.0, RFC 8693; `scp` is read too, as Okta and Azure AD name it).
   */
  publisherClaim?: string;
}

/**
 * Anything with lowercase header names: an API Gateway event, or a Node or Express request (whose
 * `headers` may hold arrays, though never for Authorization).
 */
export interface EventWithHeaders {
  headers?: Readonly<Record<string, string | readonly string[] | undefined>> | null;
}

export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;
const MAX_CLOCK_TOLERANCE_SECONDS = 300;
const DEFAULT_ACCEPTED_TYPES = ["jwt", "at+jwt", "application/at+jwt"];

/**
 * An `authenticate` callback for bearer JWTs, signed with HS256 and a shared `secret` or by an
 * identity provider whose keys are at `jwksUrl` (fetched once, cached, fetched again when a token
 * names a key it has not seen, so the provider's key rotation is picked up): refuses a missing,
 * malformed,
 * expired, not-yet-valid, future-issued, wrongly typed or wrongly signed token with 401, and
 * names the viewer by the token's `sub` claim.
 */
export function createJwtAuthenticator(
  options: JwtAuthOptions,
): (event: EventWithHeaders) => Promise<AuthResult> {
  const { key, algorithms } = verificationKey(options);
  const tolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (!Number.isInteger(tolerance) || tolerance < 0 || tolerance > MAX_CLOCK_TOLERANCE_SECONDS) {
    throw new Error(`clockToleranceSeconds must be an integer from 0 to ${MAX_CLOCK_TOLERANCE_SECONDS}`);
  }
  const maxAge = options.maxTokenAgeSeconds;
  if (maxAge !== undefined && (!Number.isInteger(maxAge) || maxAge < 1)) {
    throw new Error("maxTokenAgeSeconds must be a positive integer");
  }
  const requireExpiration = options.requireExpiration ?? true;
  if (!requireExpiration && maxAge === undefined) {
    throw new Error("requireExpiration: false needs maxTokenAgeSeconds, or tokens would never expire");
  }
  const acceptedTypes = (options.acceptedTypes ?? DEFAULT_ACCEPTED_TYPES).map((type) => type.toLowerCase());
  const isPublisher = publisherCheck(options);
  const verify: JWTVerifyOptions = {
    algorithms,
    clockTolerance: tolerance,
    requiredClaims: requireExpiration ? ["exp"] : [],
    ...(maxAge !== undefined ? { maxTokenAge: maxAge } : {}),
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: [options.audience].flat() } : {}),
  };
  return async (event) => {
    const header = event.headers?.authorization;
    // A list (from a multi-value source) is refused as malformed rather than one value picked.
    if (header !== undefined && typeof header !== "string") {
      return { ok: false, status: 401, reason: "Malformed Authorization header" };
    }
    const match = header ? /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header) : null;
    if (!match?.[1]) {
      return { ok: false, status: 401, reason: header ? "Malformed Authorization header" : "Missing token" };
    }
    try {
      // Two calls, not one: jose's overloads take a secret or a key-set function, not their union.
      const { payload, protectedHeader } =
        key instanceof Uint8Array
          ? await jwtVerify(match[1], key, verify)
          : await jwtVerify(match[1], key, verify);
      if (protectedHeader.typ !== undefined && !acceptedTypes.includes(protectedHeader.typ.toLowerCase())) {
        return { ok: false, status: 401, reason: "Token type not accepted" };
      }
      // jose checks `iat` against the clock only with maxTokenAge; a token from the future is a
      // forged or mis-issued one either way.
      if (typeof payload.iat === "number" && payload.iat > Date.now() / 1000 + tolerance) {
        return { ok: false, status: 401, reason: "Token issued in the future" };
      }
      if (typeof payload.sub !== "string" || payload.sub === "") {
        return { ok: false, status: 401, reason: "Token has no subject" };
      }
      return isPublisher(payload)
        ? { ok: true, viewerId: payload.sub, publisher: true }
        : { ok: true, viewerId: payload.sub };
    } catch (error) {
      return { ok: false, status: 401, reason: refusalReason(error) };
    }
  };
}

/** Whether a token's claims make it a publisher's, as `publisherScope` / `publisherClaim` say. */
function publisherCheck(options: JwtCheckOptions): (payload: Readonly<Record<string, unknown>>) => boolean {
  const scope = options.publisherScope;
  if (scope === undefined) {
    if (options.publisherClaim !== undefined) throw new Error("publisherClaim needs publisherScope");
    return () => false;
  }
  if (typeof scope !== "string" || !/^\S+$/.test(scope)) {
    throw new Error("publisherScope must be one word without spaces, such as blindcast:publish");
  }
  const claims = options.publisherClaim === undefined ? ["scope", "scp"] : [options.publisherClaim];
  return (payload) =>
    claims.some((claim) => {
      const value = payload[claim];
      if (typeof value === "string") return value.split(" ").includes(scope);
      return Array.isArray(value) && value.includes(scope);
    });
}

const DEFAULT_JWKS_ALGORITHMS = ["RS256", "ES256"];
const DEFAULT_JWKS_COOLDOWN_SECONDS = 30;
/** A JWKS fetch that takes longer fails the token's check (401) instead of holding the request. */
const JWKS_TIMEOUT_MS = 3000;

function verificationKey(options: JwtAuthOptions): {
  key: Uint8Array | JWTVerifyGetKey;
  algorithms: string[];
} {
  if (options.jwksUrl !== undefined) {
    if (options.secret !== undefined) throw new Error("Give either secret or jwksUrl, not both");
    const url = new URL(options.jwksUrl);
    if (url.protocol !== "https:" && !["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)) {
      throw new Error("jwksUrl must be https (plain http only on localhost)");
    }
    if (!options.issuer || !options.audience || [options.audience].flat().length === 0) {
      throw new Error("A jwksUrl needs issuer and audience: without them any token of that provider passes");
    }
    const cooldown = options.jwksCooldownSeconds ?? DEFAULT_JWKS_COOLDOWN_SECONDS;
    if (!Number.isFinite(cooldown) || cooldown < 0) throw new Error("jwksCooldownSeconds must be 0 or more");
    const algorithms = [...(options.algorithms ?? DEFAULT_JWKS_ALGORITHMS)];
    if (algorithms.length === 0 || algorithms.some((alg) => alg === "none" || alg.startsWith("HS"))) {
      // A symmetric algorithm would let anyone holding the provider's public key sign tokens.
      throw new Error("algorithms for a JWKS must be asymmetric (RS256, ES256, …)");
    }
    const jwksOptions = { cooldownDuration: cooldown * 1000, timeoutDuration: JWKS_TIMEOUT_MS };
    // jose's JWKS fetcher (createRemoteJWKSet) is imported at the first token, not with this
    // module: an authenticator with a secret never loads it (nor reads `navigator`, as jose's
    // JWKS module does when loaded), and a bundle may leave it out of the file a cold start
    // reads (scripts/build-lambda.mjs does). Everything above is still checked now, at start;
    // the key set is created once and shared by every request after.
    let keySet: Promise<JWTVerifyGetKey> | undefined;
    const key: JWTVerifyGetKey = (header, token) => {
      keySet ??= import("./remote-jwks.js").then(
        ({ createRemoteJWKSet }) => createRemoteJWKSet(url, jwksOptions),
        (error: unknown) => {
          // Not kept: the next token tries again (this one is refused with 401, as any failure).
          keySet = undefined;
          throw error;
        },
      );
      return keySet.then((getKey) => getKey(header, token));
    };
    return { key, algorithms };
  }
  const secret =
    typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret;
  if (!(secret instanceof Uint8Array) || secret.length < 32) {
    throw new Error("JWT secret must be at least 32 bytes");
  }
  return { key: secret, algorithms: ["HS256"] };
}

function refusalReason(error: unknown): string {
  const { code, claim, reason } = error as { code?: string; claim?: string; reason?: string };
  // jose reports a token past maxTokenAge as expired, with the claim that failed.
  if (code === "ERR_JWT_EXPIRED") return claim === "iat" ? "Token too old" : "Token expired";
  if (code !== "ERR_JWT_CLAIM_VALIDATION_FAILED") return "Invalid token";
  if (claim === "exp" && reason === "missing") return "Token has no expiry";
  if (claim === "iat" && reason === "missing") return "Token has no issue time";
  if (claim === "nbf") return "Token not yet valid";
  return "Invalid token";
}
