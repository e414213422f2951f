import {
  assertSecretLengths,
  BlindcastCryptoError,
  contentIdProblem,
  createKeyDeriver,
  parseEpoch,
} from "@blindcast/crypto";
import { isLeaseIdFormat, type Lease, type LeaseLookup, type LeaseStore } from "../lease-store.js";
import { isoNow, jsonLinesAudit } from "./audit.js";
import { base64 } from "./base64.js";
import { parseJsonObject } from "./body.js";
import { monotonicMs } from "./clock.js";
import { ALLOWED_REQUEST_HEADERS, createCorsPolicy, EXPOSED_RESPONSE_HEADERS } from "./cors.js";
import { repeatedHeaderProblem } from "./headers.js";
import { cachingDeriver, type KeySource } from "./key-cache.js";
import { checkedKeyList } from "./key-list.js";
import {
  type AuditRecord,
  type AuthResult,
  DEFAULT_CORS_MAX_AGE_SECONDS,
  DEFAULT_KEY_CACHE_SIZE,
  DEFAULT_LEASE_TTL_SECONDS,
  DEFAULT_MAX_CONCURRENT_LEASES,
  KeyServerConfigError,
  type KeyServerLogger,
  type KeyServerOptions,
  MAX_LEASE_TTL_SECONDS,
  MAX_PUBLISH_BODY_BYTES,
  MIN_LEASE_TTL_SECONDS,
  type PublishIdentity,
} from "./options.js";
import { resolvePublishConfig } from "./publish/config.js";
import { createPublishRoutes, type PublishRoutes } from "./publish/routes.js";
import { emptyResponse, HttpError, jsonResponse, type KeyServerResponse, keyResponse } from "./response.js";
import { type MatchedRoute, matchRoute } from "./router.js";

/** The header that carries the lease id on key requests. */
export const LEASE_HEADER = "x-blindcast-lease";
/** The viewer every request belongs to when neither `getViewerId` nor `authenticate` names one. */
export const ANONYMOUS_VIEWER = "anonymous";
const MAX_VIEWER_ID_LENGTH = 256;

/** A request as an adapter hands it to the core: decoded, with lowercase header names. */
export interface KeyServerRequest<TEvent> {
  method: string;
  /** The path as received, percent-encoding untouched. */
  path: string;
  headers: Readonly<Record<string, string>>;
  body?: Uint8Array | undefined;
  /** Set by the adapter when the request is malformed before routing (a bad base64 body, say). */
  problem?: string | undefined;
  /** Set with `problem` when the malformation is a single-value header that arrived twice. */
  repeatedHeader?: string | undefined;
  requestId?: string | undefined;
  /** Passed to `authenticate` and `getViewerId` untouched. */
  event: TEvent;
}

export type KeyServerHandler<TEvent> = (request: KeyServerRequest<TEvent>) => Promise<KeyServerResponse>;

/** The body of a lease answer (201 on create, 200 on renew). */
export interface LeaseResponseBody {
  leaseId: string;
  contentId: string;
  /** ISO 8601, UTC. */
  expiresAt: string;
  ttlSeconds: number;
  /**
   * On create, the keys asked for with `keys` (base64, 16 bytes each): the first key arrives with
   * the lease, saving the player a round trip (and a CORS preflight) at startup.
   */
  keys?: LeaseKey[];
}

/**
 * A key delivered with a new lease or by `POST /keys/{contentId}/keys`; `epoch: null` is the
 * content key.
 */
export interface LeaseKey {
  epoch: number | null;
  key: string;
}

/** How many keys one lease request may ask for. */
export const MAX_KEYS_WITH_LEASE = 4;

/** How many keys one `POST /keys/{contentId}/keys` may ask for. */
export const MAX_KEYS_PER_REQUEST = 8;

/** The body of `POST /keys/{contentId}/keys`: the keys asked for, in the order asked. */
export interface TitleKeysResponseBody {
  contentId: string;
  keys: LeaseKey[];
}

interface RequestState {
  route: MatchedRoute["name"] | "preflight" | "unmatched";
  contentId?: string;
  epoch?: number;
  viewerId?: string;
  reason?: string;
  keyEpochs?: (number | null)[];
  files?: number;
  bytes?: number;
}

/** What an adapter may supply from its runtime. */
export interface KeyServerRuntime {
  /**
   * A faster derivation than WebCrypto's where the runtime has one (node:crypto). It may answer
   * synchronously; a `KeyDeriver` from `@blindcast/crypto` also fits.
   */
  createDeriver?: (masterKey: Uint8Array, salt: Uint8Array) => KeySource;
  /** The audit sink used when the options name none (JSON lines on the console otherwise). */
  audit?: (record: AuditRecord) => void;
}

/**
 * Builds the transport-free key server. Validates the configuration now, so mistakes surface at
 * cold start rather than on the first viewer's request. Keys are derived with WebCrypto
 * (`createKeyDeriver`) unless the runtime brings its own derivation.
 */
export function createKeyServer<TEvent>(
  options: KeyServerOptions<TEvent>,
  runtime: KeyServerRuntime = {},
): KeyServerHandler<TEvent> {
  return buildKeyServer(options, { ...runtime, createDeriver: runtime.createDeriver ?? createKeyDeriver });
}

/**
 * `createKeyServer` with the derivation named. The Node adapters call this one: a bundle of them
 * then carries no WebCrypto deriver it would never use.
 */
export function buildKeyServer<TEvent>(
  options: KeyServerOptions<TEvent>,
  runtime: KeyServerRuntime & Required<Pick<KeyServerRuntime, "createDeriver">>,
): KeyServerHandler<TEvent> {
  const config = resolveConfig(options, runtime);
  const { logger, leaseStore } = config;

  async function handle(request: KeyServerRequest<TEvent>, state: RequestState): Promise<KeyServerResponse> {
    const headers = request.headers;
    const origin = headers.origin;
    let cors: Record<string, string> = {};
    // Two Origins name no origin to check: that is a malformed request (400), not a refused one.
    if (request.repeatedHeader === "origin") {
      throw new HttpError(400, request.problem ?? repeatedHeaderProblem("origin"), "bad_request");
    }
    if (origin !== undefined) {
      const allowed = config.cors.allowOriginFor(origin);
      // CORS only tells browsers what they may read; refusing outright keeps a disallowed page
      // from even spending a lease or triggering derivation.
      if (allowed === undefined) throw new HttpError(403, "Origin not allowed", "origin_not_allowed");
      cors = {
        "access-control-allow-origin": allowed,
        "access-control-expose-headers": EXPOSED_RESPONSE_HEADERS,
        vary: "Origin",
      };
    }

    try {
      return withHeaders(await route(request, state, cors), cors);
    } catch (error) {
      if (error instanceof HttpError) {
        state.reason = error.reason;
        return withHeaders(error.toResponse(), cors);
      }
      throw error;
    }
  }

  /**
   * Finds the route and hands the request on. Key requests, nearly all of them, take a small
   * function of their own: an async function's frame is allocated per call, sized by the function.
   */
  function route(
    request: KeyServerRequest<TEvent>,
    state: RequestState,
    cors: Record<string, string>,
  ): KeyServerResponse | Promise<KeyServerResponse> {
    const method = request.method.toUpperCase();
    if (method === "OPTIONS") {
      const answer = preflight(request, cors);
      state.route = "preflight";
      return answer;
    }
    const match = matchRoute(method, request.path);
    if (match.kind === "not_found") throw new HttpError(404, "Not found", "not_found");
    if (match.kind === "method_not_allowed") {
      throw new HttpError(405, `Method ${method} not allowed`, "method_not_allowed", {
        allow: match.allow.join(", "),
      });
    }
    state.route = match.route.name;
    if (request.problem) throw new HttpError(400, request.problem, "bad_request");
    const name = match.route.name;
    if (name === "content_key" || name === "epoch_key") return keyRoute(request, state, match.route.params);
    if (name === "publish_keys" || name === "publish_uploads")
      return publishRoute(request, state, match.route);
    if (name === "title_keys") return titleKeysRoute(request, state, match.route.params);
    return leaseRoute(request, state, match.route);
  }

  /** The viewer of a request; the event is read only when a callback wants it. */
  function viewerOf(request: KeyServerRequest<TEvent>): string | Promise<string> {
    return options.authenticate || options.getViewerId ? identify(request.event) : ANONYMOUS_VIEWER;
  }

  /** GET /keys/:contentId and /keys/:contentId/:epoch. */
  async function keyRoute(
    request: KeyServerRequest<TEvent>,
    state: RequestState,
    params: string[],
  ): Promise<KeyServerResponse> {
    // Not awaited when authenticate answered at once: an await per request costs allocations.
    const identified = viewerOf(request);
    const viewerId = typeof identified === "string" ? identified : await identified;
    state.viewerId = viewerId;
    const contentId = checkedContentId(params[0]);
    state.contentId = contentId;
    const epoch = state.route === "epoch_key" ? checkedEpoch(params[1] ?? "") : undefined;
    state.epoch = epoch;
    const leaseChecked = requireLease(request.headers, contentId, viewerId);
    if (leaseChecked) await leaseChecked;
    const key =
      epoch === undefined ? config.deriver.contentKey(contentId) : config.deriver.epochKey(contentId, epoch);
    return keyResponse(key instanceof Uint8Array ? key : await key);
  }

  /**
   * POST /keys/:contentId/keys: any keys of a title through one URL, so a browser preflights it
   * once per title rather than once per key.
   */
  async function titleKeysRoute(
    request: KeyServerRequest<TEvent>,
    state: RequestState,
    params: string[],
  ): Promise<KeyServerResponse> {
    const identified = viewerOf(request);
    const viewerId = typeof identified === "string" ? identified : await identified;
    state.viewerId = viewerId;
    const contentId = checkedContentId(params[0]);
    state.contentId = contentId;
    const body = parseJsonObject(request.body, request.headers["content-type"]);
    // Required, and may be empty: an empty list checks the token and lease and warms the
    // browser's preflight cache for this URL without deriving anything.
    state.keyEpochs = checkedKeyList(body.keys ?? null, MAX_KEYS_PER_REQUEST, false);
    const leaseChecked = requireLease(request.headers, contentId, viewerId);
    if (leaseChecked) await leaseChecked;
    const answer: TitleKeysResponseBody = { contentId, keys: await derived(contentId, state.keyEpochs) };
    return jsonResponse(200, answer);
  }

  /** The lease routes: create, renew, release. */
  async function leaseRoute(
    request: KeyServerRequest<TEvent>,
    state: RequestState,
    route: MatchedRoute,
  ): Promise<KeyServerResponse> {
    const identified = viewerOf(request);
    const viewerId = typeof identified === "string" ? identified : await identified;
    state.viewerId = viewerId;
    const [, second] = route.params as [string, string?];
    switch (route.name) {
      case "lease_create": {
        const store = requireStore();
        const body = parseJsonObject(request.body, request.headers["content-type"]);
        state.contentId = checkedContentId(body.contentId);
        const contentId = state.contentId;
        const wanted = checkedKeyList(body.keys, MAX_KEYS_WITH_LEASE, false);
        const result = await storeCall(() =>
          store.create({
            contentId,
            viewerId,
            ttlSeconds: config.leaseTtlSeconds,
            maxConcurrentLeases: config.maxConcurrentLeases,
          }),
        );
        if (!result.ok) {
          throw new HttpError(
            429,
            `Too many concurrent streams: this viewer already holds ${result.activeLeases} of ${config.maxConcurrentLeases} allowed`,
            "lease_limit",
          );
        }
        const answer = leaseBody(result.lease);
        if (wanted.length > 0) {
          state.keyEpochs = wanted;
          answer.keys = await derived(contentId, wanted);
        }
        return jsonResponse(201, answer);
      }
      case "lease_renew": {
        const store = requireStore();
        const body = parseJsonObject(request.body, request.headers["content-type"]);
        const leaseId = checkedLeaseId(body.leaseId);
        const result = await storeCall(() =>
          store.renew({ leaseId, viewerId, ttlSeconds: config.leaseTtlSeconds }),
        );
        switch (result.status) {
          case "renewed":
            state.contentId = result.lease.contentId;
            return jsonResponse(200, leaseBody(result.lease));
          case "not_found":
            throw new HttpError(404, "Lease not found", "lease_not_found");
          case "expired":
            throw new HttpError(410, "Lease expired", "lease_expired");
          case "wrong_viewer":
            throw new HttpError(403, "Lease belongs to another viewer", "lease_forbidden");
        }
        break;
      }
      case "lease_release": {
        const store = requireStore();
        // `DELETE /keys/leases` with the lease in its header keeps the id out of access logs;
        // `DELETE /keys/leases/:leaseId` stays for clients that put it in the path.
        const fromHeader = request.headers[LEASE_HEADER];
        if (second === undefined && fromHeader === undefined) {
          throw new HttpError(
            400,
            "Send the lease id to release in the X-Blindcast-Lease header",
            "bad_request",
          );
        }
        const leaseId = checkedLeaseId(second ?? fromHeader);
        const result = await storeCall(() => store.release({ leaseId, viewerId }));
        if (result.status === "not_found") throw new HttpError(404, "Lease not found", "lease_not_found");
        if (result.status === "wrong_viewer") {
          throw new HttpError(403, "Lease belongs to another viewer", "lease_forbidden");
        }
        return emptyResponse(204);
      }
    }
    throw new Error("unreachable route");
  }

  /** POST /keys/publish/:contentId/keys and /uploads: publishers only (docs/publishing.md). */
  async function publishRoute(
    request: KeyServerRequest<TEvent>,
    state: RequestState,
    route: MatchedRoute,
  ): Promise<KeyServerResponse> {
    const publish = config.publish;
    if (!publish) throw new HttpError(404, "Publishing is not enabled on this server", "publishing_disabled");
    // `publish` needs `authenticate` (checked at start); its answer says who publishes.
    const auth = await authenticate(request.event);
    const viewerId = options.getViewerId ? await viewerFromCallback(request.event) : viewerFrom(auth);
    state.viewerId = viewerId;
    const contentId = checkedContentId(route.params[1]);
    state.contentId = contentId;
    const action: PublishIdentity["action"] = route.name === "publish_keys" ? "keys" : "uploads";
    await requirePublisher(request.event, auth, { viewerId, contentId, action });
    const body = parseJsonObject(request.body, request.headers["content-type"], MAX_PUBLISH_BODY_BYTES);
    const [response, audit] =
      action === "keys" ? await publish.keys(contentId, body) : await publish.uploads(contentId, body);
    state.keyEpochs = audit.keys;
    state.files = audit.files;
    state.bytes = audit.bytes;
    return response;
  }

  /** The keys asked for (`null`: the content key), base64, in the order asked. */
  function derived(contentId: string, wanted: readonly (number | null)[]): Promise<LeaseKey[]> {
    return Promise.all(
      wanted.map(async (epoch) => ({
        epoch,
        key: base64(
          epoch === null
            ? await config.deriver.contentKey(contentId)
            : await config.deriver.epochKey(contentId, epoch),
        ),
      })),
    );
  }

  function preflight(request: KeyServerRequest<TEvent>, cors: Record<string, string>): KeyServerResponse {
    const match = matchRoute("OPTIONS", request.path);
    if (match.kind !== "method_not_allowed") throw new HttpError(404, "Not found", "not_found");
    const allow = match.allow.join(", ");
    if (!cors["access-control-allow-origin"]) return emptyResponse(204, { allow });
    return emptyResponse(204, {
      allow,
      "access-control-allow-methods": allow,
      "access-control-allow-headers": ALLOWED_REQUEST_HEADERS,
      "access-control-max-age": String(config.corsMaxAgeSeconds),
    });
  }

  /** The viewer: at once when `authenticate` answers synchronously and there is no `getViewerId`. */
  function identify(event: TEvent): string | Promise<string> {
    const auth = authenticate(event);
    if (options.getViewerId) return Promise.resolve(auth).then(() => viewerFromCallback(event));
    return auth instanceof Promise ? auth.then(viewerFrom) : viewerFrom(auth);
  }

  function authenticate(event: TEvent): AuthResult | Promise<AuthResult> {
    if (!options.authenticate) return AUTHENTICATED;
    let result: AuthResult | Promise<AuthResult>;
    try {
      result = options.authenticate(event);
    } catch (error) {
      throw authenticateFailed(error);
    }
    if (!isThenable(result)) return checkedAuth(result);
    return Promise.resolve(result).then(checkedAuth, (error: unknown) => {
      throw authenticateFailed(error);
    });
  }

  function authenticateFailed(error: unknown): HttpError {
    // The exception text may hold a token or a stack; it goes to neither the log nor the viewer.
    logger.error(`authenticate threw ${errorName(error)}; answering 500`);
    return new HttpError(500, "Internal server error", "internal");
  }

  function checkedAuth(result: AuthResult): AuthResult {
    if (typeof result !== "object" || result === null || typeof result.ok !== "boolean") {
      logger.error("authenticate returned neither { ok: true } nor { ok: false, status, reason }");
      throw new HttpError(500, "Internal server error", "internal");
    }
    if (result.ok) return result;
    const status =
      Number.isInteger(result.status) && result.status >= 400 && result.status <= 599 ? result.status : 401;
    const reason = typeof result.reason === "string" && result.reason !== "" ? result.reason : "Unauthorized";
    throw new HttpError(status, reason);
  }

  /**
   * Publishing is refused unless the server says yes: `authorizePublish` when given, otherwise
   * `authenticate`'s `publisher: true`. A viewer's token never passes.
   */
  async function requirePublisher(
    event: TEvent,
    auth: AuthResult | undefined,
    asked: Omit<PublishIdentity, "publisher">,
  ): Promise<void> {
    const publisher = auth?.ok === true && auth.publisher === true;
    let allowed: unknown = publisher;
    if (options.authorizePublish) {
      try {
        allowed = await options.authorizePublish(event, { ...asked, publisher });
      } catch (error) {
        logger.error(`authorizePublish threw ${errorName(error)}; answering 500`);
        throw new HttpError(500, "Internal server error", "internal");
      }
    }
    if (allowed !== true) {
      throw new HttpError(
        403,
        "This caller may not publish (a publisher token is required)",
        "publisher_required",
      );
    }
  }

  async function viewerFromCallback(event: TEvent): Promise<string> {
    let viewerId: unknown;
    try {
      viewerId = await options.getViewerId?.(event);
    } catch {
      throw new HttpError(401, "Viewer could not be identified", "unauthenticated");
    }
    return checkedViewerId(viewerId);
  }

  function viewerFrom(auth: AuthResult): string {
    let viewerId: unknown;
    if (!options.authenticate) {
      viewerId = ANONYMOUS_VIEWER;
    } else if (auth?.ok && auth.viewerId !== undefined) {
      viewerId = auth.viewerId;
    } else if (leaseStore) {
      // Leases tell viewers apart; lumping every viewer into one would share one cap and let
      // anyone's lease unlock keys for everyone. A misconfiguration: fail every request, loudly.
      logger.error(
        "blindcast keys: authenticate let a request through without naming its viewer ({ ok: true, viewerId }), which leases need; answering 500",
      );
      throw new HttpError(500, "Internal server error", "internal");
    } else {
      viewerId = ANONYMOUS_VIEWER;
    }
    return checkedViewerId(viewerId);
  }

  function requireStore(): LeaseStore {
    if (!leaseStore) throw new HttpError(404, "Leases are not enabled on this server", "leases_disabled");
    return leaseStore;
  }

  /**
   * Settles when the request's lease is live and held by this viewer for this content; nothing
   * to wait for without leases. Not an async function: one frame fewer on every key request.
   */
  function requireLease(
    headers: Readonly<Record<string, string>>,
    contentId: string,
    viewerId: string,
  ): Promise<void> | undefined {
    if (!leaseStore) return undefined;
    const leaseId = headers[LEASE_HEADER];
    if (leaseId === undefined || leaseId === "") {
      throw new HttpError(
        403,
        "A lease is required: send its id in the X-Blindcast-Lease header",
        "lease_required",
      );
    }
    if (!isLeaseIdFormat(leaseId)) throw new HttpError(403, "Lease not found", "lease_not_found");
    let lookup: Promise<LeaseLookup>;
    try {
      lookup = Promise.resolve(leaseStore.get(leaseId));
    } catch (error) {
      throw storeUnavailable(error);
    }
    return lookup.then(
      (found) => checkLease(found, contentId, viewerId),
      (error: unknown) => {
        throw storeUnavailable(error);
      },
    );
  }

  async function storeCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw storeUnavailable(error);
    }
  }

  function storeUnavailable(error: unknown): HttpError {
    logger.error(`lease store failed (${errorName(error)}); answering 503`);
    return new HttpError(503, "Lease store unavailable, try again shortly", "store_unavailable", {
      "retry-after": "1",
    });
  }

  function leaseBody(lease: Lease): LeaseResponseBody {
    return {
      leaseId: lease.leaseId,
      contentId: lease.contentId,
      expiresAt: lease.expiresAt.toISOString(),
      ttlSeconds: config.leaseTtlSeconds,
    };
  }

  // Built only when someone listens: this runs on every request.
  function emitAudit(
    request: KeyServerRequest<TEvent>,
    state: RequestState,
    status: number,
    started: number,
  ): void {
    const audit = config.audit;
    if (!audit) return;
    try {
      audit({
        type: "blindcast.keys.request",
        time: isoNow(),
        requestId: request.requestId,
        method: request.method,
        route: state.route,
        contentId: state.contentId,
        epoch: state.epoch,
        viewerId: state.viewerId,
        keys: state.keyEpochs,
        files: state.files,
        bytes: state.bytes,
        status,
        reason: state.reason,
        durationMs: Math.round((monotonicMs() - started) * 1000) / 1000,
      });
    } catch (error) {
      logger.error(`audit sink threw ${errorName(error)}`);
    }
  }

  return async (request) => {
    const started = monotonicMs();
    const state: RequestState = { route: "unmatched" };
    let response: KeyServerResponse;
    try {
      response = await handle(request, state);
    } catch (error) {
      if (error instanceof HttpError) {
        state.reason = error.reason;
        response = error.toResponse();
      } else {
        state.reason = "Internal server error";
        logger.error(`unexpected ${errorName(error)} while answering a request; answering 500`);
        response = new HttpError(500, "Internal server error", "internal").toResponse();
      }
    }
    emitAudit(request, state, response.statusCode, started);
    return response;
  };
}

interface ResolvedConfig {
  deriver: KeySource;
  publish: PublishRoutes | undefined;
  cors: ReturnType<typeof createCorsPolicy>;
  leaseStore: LeaseStore | undefined;
  leaseTtlSeconds: number;
  maxConcurrentLeases: number | undefined;
  corsMaxAgeSeconds: number;
  audit: ((record: AuditRecord) => void) | undefined;
  logger: KeyServerLogger;
}

function resolveConfig<TEvent>(
  options: KeyServerOptions<TEvent>,
  runtime: KeyServerRuntime & Required<Pick<KeyServerRuntime, "createDeriver">>,
): ResolvedConfig {
  if (typeof options !== "object" || options === null) {
    throw new KeyServerConfigError("options are required: { masterKey, salt, corsOrigins, ... }");
  }
  if (options.masterKey === undefined) throw new KeyServerConfigError("masterKey is required");
  if (options.salt === undefined) throw new KeyServerConfigError("salt is required");
  try {
    assertSecretLengths(options.masterKey, options.salt);
  } catch (error) {
    if (error instanceof BlindcastCryptoError) throw new KeyServerConfigError(error.message);
    throw error;
  }
  if (options.corsOrigins === undefined || options.corsOrigins === null) {
    throw new KeyServerConfigError("corsOrigins is required (comma-separated origins, or *)");
  }
  const cors = createCorsPolicy(options.corsOrigins);
  const logger = options.logger ?? console;

  const leaseTtlSeconds = options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
  if (
    !Number.isInteger(leaseTtlSeconds) ||
    leaseTtlSeconds < MIN_LEASE_TTL_SECONDS ||
    leaseTtlSeconds > MAX_LEASE_TTL_SECONDS
  ) {
    throw new KeyServerConfigError(
      `leaseTtlSeconds must be an integer from ${MIN_LEASE_TTL_SECONDS} to ${MAX_LEASE_TTL_SECONDS}`,
    );
  }
  if (options.getViewerId && !options.authenticate) {
    throw new KeyServerConfigError(
      "getViewerId needs authenticate: without it the viewer is read from an unverified request, so anyone can name any viewer (fill their streams, or bypass the cap). Verify the caller in authenticate (createJwtAuthenticator, createApiGatewayAuthenticator), which can name the viewer itself",
    );
  }
  const max = resolveMaxConcurrentLeases(options);
  const keyCacheSize = options.keyCacheSize ?? DEFAULT_KEY_CACHE_SIZE;
  if (!Number.isInteger(keyCacheSize) || keyCacheSize < 0) {
    throw new KeyServerConfigError("keyCacheSize must be a non-negative integer");
  }
  const corsMaxAgeSeconds = options.corsMaxAgeSeconds ?? DEFAULT_CORS_MAX_AGE_SECONDS;
  if (!Number.isInteger(corsMaxAgeSeconds) || corsMaxAgeSeconds < 0) {
    throw new KeyServerConfigError("corsMaxAgeSeconds must be a non-negative integer");
  }
  for (const name of ["authenticate", "getViewerId", "audit", "authorizePublish"] as const) {
    const value = options[name];
    if (value !== undefined && value !== false && typeof value !== "function") {
      throw new KeyServerConfigError(`${name} must be a function`);
    }
  }
  if (options.leaseStore !== undefined) {
    const store = options.leaseStore as Partial<LeaseStore>;
    for (const method of ["create", "get", "renew", "release"] as const) {
      if (typeof store[method] !== "function") {
        throw new KeyServerConfigError(`leaseStore must implement ${method}()`);
      }
    }
  }

  if (!options.authenticate) {
    logger.warn(
      "blindcast keys: no authenticate option, so keys are served to anyone who can reach this server",
    );
  }

  if (options.publish !== undefined && !options.authenticate) {
    throw new KeyServerConfigError(
      "publish needs authenticate: publisher routes hand out keys and upload URLs, so callers must be verified (createJwtAuthenticator({ publisherScope }), or authenticate with authorizePublish)",
    );
  }
  if (options.authorizePublish && options.publish === undefined) {
    throw new KeyServerConfigError(
      "authorizePublish is set but publish is not: set publish to turn the routes on",
    );
  }
  const deriver = cachingDeriver(runtime.createDeriver(options.masterKey, options.salt), keyCacheSize);
  return {
    deriver,
    // Checked now (resolvePublishConfig); the routes load their upload signer on first use.
    publish:
      options.publish === undefined
        ? undefined
        : createPublishRoutes(resolvePublishConfig(options.publish), deriver),
    cors,
    leaseStore: options.leaseStore,
    leaseTtlSeconds,
    maxConcurrentLeases: max,
    corsMaxAgeSeconds,
    audit: options.audit === false ? undefined : (options.audit ?? runtime.audit ?? jsonLinesAudit),
    logger,
  };
}

/**
 * The per-viewer cap: as given, or DEFAULT_MAX_CONCURRENT_LEASES where viewers are told apart (so
 * one viewer cannot fill the store with leases); none for anonymous viewers, who are everyone.
 */
function resolveMaxConcurrentLeases<TEvent>(options: KeyServerOptions<TEvent>): number | undefined {
  const max = options.maxConcurrentLeases;
  if (max === undefined) {
    return options.leaseStore && options.authenticate ? DEFAULT_MAX_CONCURRENT_LEASES : undefined;
  }
  if (!Number.isInteger(max) || max < 1) {
    throw new KeyServerConfigError("maxConcurrentLeases must be a positive integer");
  }
  if (!options.leaseStore) throw new KeyServerConfigError("maxConcurrentLeases needs a leaseStore");
  if (!options.authenticate) {
    throw new KeyServerConfigError(
      "maxConcurrentLeases needs authenticate: without it every request is one viewer, and the cap would hold all viewers together",
    );
  }
  return max;
}

const AUTHENTICATED: AuthResult = { ok: true };

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function checkedViewerId(viewerId: unknown): string {
  if (typeof viewerId !== "string" || viewerId === "" || viewerId.length > MAX_VIEWER_ID_LENGTH) {
    throw new HttpError(401, "Viewer could not be identified", "unauthenticated");
  }
  return viewerId;
}

function checkLease(lookup: LeaseLookup, contentId: string, viewerId: string): void {
  if (lookup.status === "not_found") throw new HttpError(403, "Lease not found", "lease_not_found");
  if (lookup.status === "expired") throw new HttpError(403, "Lease expired", "lease_expired");
  if (lookup.lease.viewerId !== viewerId) {
    throw new HttpError(403, "Lease belongs to another viewer", "lease_forbidden");
  }
  if (lookup.lease.contentId !== contentId) {
    throw new HttpError(403, "Lease is for other content", "lease_forbidden");
  }
}

function checkedContentId(value: unknown): string {
  const problem = contentIdProblem(value);
  if (problem !== undefined) throw new HttpError(400, problem, "bad_request");
  return value as string;
}

function checkedEpoch(text: string): number {
  try {
    return parseEpoch(text);
  } catch (error) {
    throw new HttpError(400, (error as Error).message, "bad_request");
  }
}

function checkedLeaseId(value: unknown): string {
  if (!isLeaseIdFormat(value)) {
    throw new HttpError(
      400,
      "leaseId must be a string of 16 to 128 characters A-Z a-z 0-9 _ -",
      "bad_request",
    );
  }
  return value;
}

function withHeaders(response: KeyServerResponse, extra: Record<string, string>): KeyServerResponse {
  Object.assign(response.headers, extra);
  return response;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
