import type { ServerResponse } from "node:http";
import type { KeyServerResponse } from "../core/response.js";

/** Writes a core response; its headers object is the response's own, so it is added to. */
export function writeResponse(res: ServerResponse, { statusCode, headers, body }: KeyServerResponse): void {
  // A known length rather than chunked encoding, as API Gateway would send. Passed with the
  // other headers: a separate setHeader sends writeHead down node:http's slower merging path.
  headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
  res.writeHead(statusCode, headers);
  // Key bytes copied into a Buffer: node's streams would otherwise take the Uint8Array's buffer,
  // and V8 keeps a 16-byte array inside the heap, so asking for it moves it out (slower than a copy).
  res.end(typeof body === "string" ? body : Buffer.from(body));
}

export function writeInternalError(res: ServerResponse): void {
  // The core answers every error itself; reaching here means a bug, never a secret.
  if (!res.headersSent) res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
  res.end('{"error":"Internal server error"}');
}
