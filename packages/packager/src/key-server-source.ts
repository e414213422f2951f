import { isValidContentId, isValidEpoch } from "@blindcast/crypto";
import { type KeyServerFailure, PackagerError, type PackagerErrorCode } from "./errors.js";
import { BEARER_TOKEN, resolveKeysUrl } from "./key-server-url.js";
import type { KeyId, KeySource } from "./key-source.js";

/** The most keys the key server's publisher route gives in one answer. */
export const MAX_KEYS_PER_REQUEST = 1024;

export interface KeyServerKeySourceOptions {
  /**
   * The key server: its keys URL, the one the player is given as `keyServerUrl`
   * (`https://keys.example.com/keys`), or the base URL its routes are under
   * (`https://keys.example.com`: a URL whose path does not end in `/keys` gets `/keys` added,
   * since every key server route is under a `keys` segment). The publisher route is
   * `{keys URL}/publish/{contentId}/keys`. `https:` only, or `http:` to a loopback address (`localhost`, 127.0.0.0/8, `::1`): the
   * token and the keys must not cross a network in clear. No credentials, query or fragment.
   */
  url: string;
  /**
   * A publisher's bearer token (for the CLI's JWT authenticator: a JWT whose `scope` has
   * `blindcast:publish`). Sent only in the `Authorization` header of requests to `url`; never in
   * a message.
   */
  token: string;
  /** The `fetch` to use (one with a proxy agent, say). Default: the global `fetch`. */
  fetch?: typeof globalThis.fetch;
  /** A request whose whole answer has not arrived after this many ms fails. 100 to 600000; default 10000. */
  timeoutMs?: number;
  /**
   * Retries after the first attempt, for network errors, timeouts, 5xx and 429 (never for other
   * 4xx). 0 to 10; default 3.
   */
  retries?: number;
  /** First wait before a retry, in ms; doubles each retry (with jitter). 0 to 60000; default 500. */
  retryDelayMs?: number;
  /**
   * Longest wait before a retry, in ms. A `Retry-After` is honoured up to this; one asking for
   * longer fails at once rather than wait. 0 to 600000; default 30000.
   */
  maxRetryDelayMs?: number;
  /** Keys asked per request, 1 to 1024 (the server's limit); default 1024. */
  keysPerRequest?: number;
}

/** Successful answers are read this far at most: 1024 entries are about 53 KB. */
const MAX_ANSWER_BYTES = 256 * 1024;
/** Error answers are read this far for their reason. */
const MAX_ERROR_BYTES = 16 * 1024;
/** A 16-byte key in canonical base64: 21 full characters, one carrying 2 bits, then padding. */
const BASE64_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * Keys fetched from a key server's publisher route (`POST {url}/publish/{contentId}/keys`) with
 * a publisher's token: whoever packages needs no master key. Asks for at most 1024 keys per
 * request, one request at a time; each request is bounded by `timeoutMs` and retried with
 * backoff after network errors, timeouts, 5xx and 429 (honouring `Retry-After`). Every answer is
 * checked: exactly the keys asked, each 16 bytes. Every failure is a `PackagerError`
 * (`KEY_SERVER_UNAUTHORIZED`, `KEY_SERVER_ERROR`, `KEY_SERVER_UNAVAILABLE`,
 * `KEY_SERVER_INVALID_RESPONSE`) whose message carries the server's reason, never the token or a
 * key. Bad options throw `INVALID_OPTIONS` here, before any request.
 */
export function createKeyServerKeySource(options: KeyServerKeySourceOptions): KeySource {
  const settings = checkOptions(options);
  const where = `key server ${settings.url}`;

  const fetchBatch = async (contentId: string, ids: readonly KeyId[]) => {
    const url = `${settings.url}/publish/${encodeURIComponent(contentId)}/keys`;
    const init: RequestInit = {
      method: "POST",
      headers: {
        authorization: `Bearer ${settings.token}`,
        "content-type": "application/json",
        accept: "application/json",
      },
      body: JSON.stringify({ keys: ids }),
      // The token must not follow a redirect to another URL.
      redirect: "manual",
    };
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= settings.retries;
      let failure: string;
      let failureDetails: KeyServerFailure = {};
      let retryAfterMs = 0;
      try {
        const { response, body } = await exchange(settings, url, init);
        if (response.ok) return parseAnswer(body, contentId, ids, where);
        const refusal = readRefusal(response, body, settings.token);
        failureDetails = refusal.details;
        const transient = response.status >= 500 || response.status === 429;
        if (!transient) throw refusalError(response, refusal, where, contentId);
        failure = refusal.text;
        retryAfterMs = retryAfter(response.headers.get("retry-after"));
        if (retryAfterMs > settings.maxRetryDelayMs && !last) {
          throw new PackagerError(
            "KEY_SERVER_UNAVAILABLE",
            `${where} cannot give the keys of ${contentId} now: ${failure}; it asks to retry after ${Math.ceil(retryAfterMs / 1000)} s, longer than maxRetryDelayMs`,
            { keyServer: failureDetails },
          );
        }
      } catch (error) {
        if (error instanceof PackagerError) throw error;
        failure = networkProblem(error, settings.timeoutMs);
      }
      if (last) {
        throw new PackagerError(
          "KEY_SERVER_UNAVAILABLE",
          `${where} could not give the keys of ${contentId}: ${failure} (${attempt + 1} attempt${attempt === 0 ? "" : "s"})`,
          { keyServer: failureDetails },
        );
      }
      const ceiling = Math.min(settings.maxRetryDelayMs, settings.retryDelayMs * 2 ** attempt);
      // Equal jitter: half fixed, half random, so many packagers retrying after an outage spread out.
      const backoff = ceiling / 2 + Math.random() * (ceiling / 2);
      await new Promise((resolve) => setTimeout(resolve, Math.max(backoff, retryAfterMs)));
    }
  };

  return {
    description: where,
    async getKeys(contentId, ids) {
      if (!isValidContentId(contentId)) {
        throw new PackagerError("INVALID_OPTIONS", `invalid contentId ${JSON.stringify(contentId)}`);
      }
      const bad = ids.find((id) => id !== "content" && !isValidEpoch(id));
      if (bad !== undefined) {
        throw new PackagerError(
          "INVALID_OPTIONS",
          `invalid key id ${JSON.stringify(bad)}: an epoch (0 to 4294967295) or "content"`,
        );
      }
      const unique = [...new Set(ids)];
      const keys = new Map<KeyId, Uint8Array>();
      try {
        for (let i = 0; i < unique.length; i += settings.keysPerRequest) {
          for (const [id, key] of await fetchBatch(contentId, unique.slice(i, i + settings.keysPerRequest))) {
            keys.set(id, key);
          }
        }
      } catch (error) {
        for (const key of keys.values()) key.fill(0);
        throw error;
      }
      return keys;
    },
  };
}

interface Settings {
  url: string;
  token: string;
  fetch: typeof globalThis.fetch;
  timeoutMs: number;
  retries: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  keysPerRequest: number;
}

function checkOptions(options: KeyServerKeySourceOptions): Settings {
  if (typeof options !== "object" || options === null) throw invalid("options are required: { url, token }");
  const url = keyServerUrl(options.url);
  // The token is never quoted: a wrong one may still be someone's secret.
  if (typeof options.token !== "string" || options.token === "") throw invalid("token is required");
  if (!BEARER_TOKEN.test(options.token)) {
    throw invalid("token is not a bearer token (letters, digits and -._~+/ only, = at the end)");
  }
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof fetchFn !== "function") throw invalid("fetch must be a function");
  return {
    url,
    token: options.token,
    fetch: fetchFn,
    timeoutMs: integer("timeoutMs", options.timeoutMs, 10_000, 100, 600_000),
    retries: integer("retries", options.retries, 3, 0, 10),
    retryDelayMs: integer("retryDelayMs", options.retryDelayMs, 500, 0, 60_000),
    maxRetryDelayMs: integer("maxRetryDelayMs", options.maxRetryDelayMs, 30_000, 0, 600_000),
    keysPerRequest: integer(
      "keysPerRequest",
      options.keysPerRequest,
      MAX_KEYS_PER_REQUEST,
      1,
      MAX_KEYS_PER_REQUEST,
    ),
  };
}

/** The keys URL, without trailing slashes; refused unless https, or http to this machine. */
function keyServerUrl(value: unknown): string {
  const resolved = resolveKeysUrl(value);
  if ("problem" in resolved) throw invalid(resolved.problem);
  return resolved.url;
}

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

class RequestTimeout extends Error {}

/**
 * One request and its whole answer, under one deadline (a server that stalls mid-body fails
 * too), the body read at most a little past its limit.
 */
async function exchange(settings: Settings, url: string, init: RequestInit) {
  const controller = new AbortController();
  const timeout = new RequestTimeout(`no complete answer within ${settings.timeoutMs} ms`);
  const timer = setTimeout(() => controller.abort(timeout), settings.timeoutMs);
  try {
    const response = await settings.fetch(url, { ...init, signal: controller.signal });
    const body = await readBody(response, response.ok ? MAX_ANSWER_BYTES : MAX_ERROR_BYTES);
    return { response, body };
  } catch (error) {
    throw controller.signal.aborted ? timeout : error;
  } finally {
    clearTimeout(timer);
    // Drops whatever of the body was left unread.
    controller.abort();
  }
}

async function readBody(response: Response, limit: number): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (reader && length <= limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  const body = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
    // It may hold keys.
    chunk.fill(0);
  }
  return body;
}

interface Refusal {
  details: KeyServerFailure;
  /** For a message: the reason (without the token), status and code. */
  text: string;
}

function readRefusal(response: Response, body: Uint8Array, token: string): Refusal {
  const json = parseJson(body);
  const serverCode =
    typeof json.code === "string" && /^[a-z0-9_]{1,64}$/.test(json.code) ? json.code : undefined;
  // The server's words, short, on one line, and never the token even if a proxy echoed it.
  const reason =
    typeof json.error === "string" && json.error.trim() !== ""
      ? json.error.split(token).join("[token]").replace(/\s+/g, " ").trim().slice(0, 300)
      : undefined;
  const status = `HTTP ${response.status}${serverCode ? ` ${serverCode}` : ""}`;
  return {
    details: { status: response.status, serverCode, reason },
    text: reason ? `${reason} (${status})` : status,
  };
}

function refusalError(response: Response, refusal: Refusal, where: string, contentId: string): PackagerError {
  const { status } = response;
  let code: PackagerErrorCode = "KEY_SERVER_ERROR";
  let text = `${where} refused the keys of ${contentId}: ${refusal.text}`;
  if (status === 401 || status === 403) {
    code = "KEY_SERVER_UNAUTHORIZED";
    text += status === 403 ? "; the token must be a publisher's" : "; check the token";
  } else if (status >= 300 && status < 400) {
    const location = (response.headers.get("location") ?? "").slice(0, 200);
    text = `${where} redirected${location ? ` to ${location}` : ""} (HTTP ${status}), not followed (it would carry the token): give the final URL`;
  } else if (status === 404 && refusal.details.serverCode === "not_found") {
    text += "; is it the key server's URL (the player's keyServerUrl, or the base URL of its routes)?";
  }
  return new PackagerError(code, text, { keyServer: refusal.details });
}

/** What went wrong on the way, for a message: the system's error code and words, or the timeout. */
function networkProblem(error: unknown, timeoutMs: number): string {
  if (error instanceof RequestTimeout) return error.message;
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const text = cause instanceof Error ? cause.message : String(cause);
  return `unreachable (${text.replace(/\s+/g, " ").slice(0, 200) || `no answer within ${timeoutMs} ms`})`;
}

/** Retry-After in ms: delay-seconds or an HTTP date; 0 when absent or unreadable. */
function retryAfter(value: string | null): number {
  if (!value) return 0;
  const text = value.trim();
  if (/^[0-9]{1,9}$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? 0 : Math.max(0, date - Date.now());
}

function parseJson(body: Uint8Array): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/**
 * The keys of a 200 answer, checked against what was asked: the same content, exactly the ids
 * asked (each once), each key 16 bytes in canonical base64. Nothing of the body goes into a
 * message: it holds keys.
 */
function parseAnswer(
  body: Uint8Array,
  contentId: string,
  ids: readonly KeyId[],
  where: string,
): Map<KeyId, Uint8Array> {
  const wrong = (problem: string) =>
    new PackagerError(
      "KEY_SERVER_INVALID_RESPONSE",
      `${where} answered the keys of ${contentId} with ${problem}; is it a Blindcast key server?`,
    );
  if (body.length > MAX_ANSWER_BYTES) throw wrong(`more than ${MAX_ANSWER_BYTES} bytes`);
  const json = parseJson(body);
  body.fill(0);
  if (!Array.isArray(json.keys)) throw wrong("no JSON object with a keys list");
  if (json.contentId !== contentId) throw wrong("another contentId");
  const asked = new Set(ids);
  const keys = new Map<KeyId, Uint8Array>();
  try {
    for (const [i, entry] of (json.keys as unknown[]).entries()) {
      const { epoch, key } = (typeof entry === "object" && entry !== null ? entry : {}) as Record<
        string,
        unknown
      >;
      const id: KeyId | undefined =
        epoch === null
          ? "content"
          : typeof epoch === "number" && Number.isSafeInteger(epoch)
            ? epoch
            : undefined;
      if (id === undefined)
        throw wrong(`entry ${i} without an epoch (an integer, or null for the content key)`);
      const name = id === "content" ? "the content key" : `epoch ${id}`;
      if (!asked.has(id)) throw wrong(`${name}, which was not asked`);
      if (keys.has(id)) throw wrong(`${name} twice`);
      if (typeof key !== "string" || !BASE64_KEY.test(key)) throw wrong(`${name} not 16 bytes in base64`);
      const decoded = Buffer.from(key, "base64");
      keys.set(id, new Uint8Array(decoded));
      decoded.fill(0);
    }
    const missing = ids.find((id) => !keys.has(id));
    if (missing !== undefined) {
      throw wrong(`no key for ${missing === "content" ? "the content key" : `epoch ${missing}`}`);
    }
  } catch (error) {
    for (const key of keys.values()) key.fill(0);
    throw error;
  }
  return keys;
}

function invalid(message: string): PackagerError {
  return new PackagerError("INVALID_OPTIONS", message);
}
