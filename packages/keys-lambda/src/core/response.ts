/** The transport-neutral answer; adapters turn it into a Lambda result or an HTTP response. */
export interface KeyServerResponse {
  statusCode: number;
  headers: Record<string, string>;
  /** Raw bytes (a key) or text (JSON). */
  body: Uint8Array | string;
}

// Every answer says no-store: keys and lease ids must never be cached by browsers, proxies or
// CDNs. Written out as literals rather than spread from a shared object: this runs per request.

export function keyResponse(key: Uint8Array): KeyServerResponse {
  return {
    statusCode: 200,
    headers: {
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "content-type": "application/octet-stream",
    },
    body: key,
  };
}

export function jsonResponse(statusCode: number, value: unknown): KeyServerResponse {
  return {
    statusCode,
    headers: {
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "content-type": "application/json; charset=utf-8",
    },
    body: JSON.stringify(value),
  };
}

/** Machine-readable reasons the server itself gives; `authenticate` refusals carry none. */
export type ErrorCode =
  | "bad_request"
  | "not_found"
  | "method_not_allowed"
  | "origin_not_allowed"
  | "unauthenticated"
  | "lease_required"
  | "lease_not_found"
  | "lease_expired"
  | "lease_forbidden"
  | "lease_limit"
  | "leases_disabled"
  | "store_unavailable"
  | "publishing_disabled"
  | "uploads_disabled"
  | "publisher_required"
  | "internal";

/** A refusal: JSON `{ error, code }`, where `error` is a reason fit to show a person. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    readonly code?: ErrorCode,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason);
    this.name = "HttpError";
  }

  toResponse(): KeyServerResponse {
    const response = jsonResponse(
      this.statusCode,
      this.code ? { error: this.reason, code: this.code } : { error: this.reason },
    );
    Object.assign(response.headers, this.headers);
    return response;
  }
}

export function emptyResponse(statusCode: number, headers: Record<string, string> = {}): KeyServerResponse {
  return {
    statusCode,
    headers: { "cache-control": "no-store", "x-content-type-options": "nosniff", ...headers },
    body: "",
  };
}
