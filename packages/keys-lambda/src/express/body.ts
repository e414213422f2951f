import type { IncomingMessage, ServerResponse } from "node:http";
import { bodyLimitFor, bodyTooLarge } from "../core/body.js";
import { declaresBody, readBoundedBody } from "../node-runtime/read-body.js";

/** A body as the core reads it, or why it cannot be. */
export interface ReadBody {
  body: Uint8Array | undefined;
  problem: string | undefined;
}

const utf8 = new TextEncoder();
const NO_BODY: ReadBody = { body: undefined, problem: undefined };

/**
 * Hands `then` the request's body. Unread, it is read here with the node:http adapter's bounds.
 * Already read by one of the app's body parsers, the stream is spent and only what the parser
 * made of it is left (see `fromParsed`).
 */
export function withBody(
  req: IncomingMessage & { body?: unknown },
  res: ServerResponse,
  then: (read: ReadBody) => void,
): void {
  // Most requests (every key request) have no body: answer at once.
  if (!declaresBody(req.headers)) {
    then(NO_BODY);
    return;
  }
  if (req.readableEnded) {
    then(fromParsed(req.body, req.headers["content-length"], bodyLimitFor(req.url ?? "")));
    return;
  }
  readBoundedBody(req, res, (body) => then(checked(body, bodyLimitFor(req.url ?? ""))));
}

function checked(body: Uint8Array | undefined, limit: number): ReadBody {
  if (!body || body.length === 0) return NO_BODY;
  return { body, problem: body.length > limit ? bodyTooLarge(limit) : undefined };
}

/**
 * What a body parser left in `req.body`, as bytes the core parses as it would the original:
 * `express.raw()`'s bytes as they are, `express.text()`'s string as UTF-8, and anything else
 * (`express.json()`'s value, `express.urlencoded()`'s object) serialised as JSON, which gives
 * back every value the core reads from a JSON body. The size limit also holds for the bytes
 * that arrived (`Content-Length`, which the parser checked against them), so a body over the
 * limit is refused even where serialising shrinks it (whitespace); and `Content-Length: 0` is
 * no body, although `express.json()` makes `{}` of it.
 */
export function fromParsed(value: unknown, contentLength: string | undefined, limit: number): ReadBody {
  if (contentLength !== undefined && Number(contentLength) > limit) {
    return { body: undefined, problem: bodyTooLarge(limit) };
  }
  if (contentLength === "0" || value === undefined) return NO_BODY;
  if (value instanceof Uint8Array) return checked(value, limit);
  if (typeof value === "string") return checked(utf8.encode(value), limit);
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined;
  }
  // A parser of the app's own may leave what JSON cannot hold (a BigInt, a cycle, a function).
  if (json === undefined) return { body: undefined, problem: "Request body is not valid JSON" };
  return checked(utf8.encode(json), limit);
}

/**
 * After one of the app's body parsers refused a request on a key route, hands `then` the body
 * for the core to refuse it itself, as the other adapters would (its route, CORS, reason, order
 * and audit), and answers `true`; `false` when the error is not the key server's to answer.
 * - over the parser's limit: over the core's too;
 * - not parseable: the parser puts the text on the error (`body`), for the core to parse;
 * - a charset or content encoding the parser does not take: it refused before reading, so the
 *   body is read here, as if the parser were not there (the other adapters ignore both).
 */
export function withBodyAfterParserError(
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  then: (read: ReadBody) => void,
): boolean {
  if (typeof error !== "object" || error === null) return false;
  const limit = bodyLimitFor(req.url ?? "");
  const { type, body, limit: parserLimit } = error as { type?: unknown; body?: unknown; limit?: unknown };
  if (type === "entity.too.large") {
    // The parser's own limit may be the lower one: the reason names the limit that refused it.
    const refusedAt = typeof parserLimit === "number" && parserLimit < limit ? parserLimit : limit;
    then({ body: undefined, problem: bodyTooLarge(refusedAt) });
  } else if (type === "entity.parse.failed" && typeof body === "string") {
    then(checked(utf8.encode(body), limit));
  } else if (type === "entity.parse.failed" && body instanceof Uint8Array) {
    then(checked(body, limit));
  } else if ((type === "charset.unsupported" || type === "encoding.unsupported") && !req.readableEnded) {
    readBoundedBody(req, res, (read) => then(checked(read, limit)));
  } else {
    return false;
  }
  return true;
}
