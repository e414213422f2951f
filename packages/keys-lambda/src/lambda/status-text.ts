/**
 * Reason phrases for an ALB's `statusDescription`: the statuses this server answers and those an
 * `authenticate` is likely to choose (any other 4xx or 5xx is described by its class; an ALB only
 * relays the text). A table of its own rather than node:http's STATUS_CODES: on Node 24,
 * importing node:http loads over a hundred internal modules (undici, http2, tls, zlib,
 * worker_threads), most of the Lambda bundle's import time (BENCHMARKS.md).
 */
const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** `"403 Forbidden"`, `"418 Client Error"`. */
export function statusDescription(statusCode: number): string {
  const reason = REASONS[statusCode] ?? (statusCode >= 500 ? "Server Error" : "Client Error");
  return `${statusCode} ${reason}`;
}
