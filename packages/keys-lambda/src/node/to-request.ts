import type { IncomingMessage } from "node:http";
import { bodyLimitFor, bodyTooLarge } from "../core/body.js";
import { repeatedHeaderProblem } from "../core/headers.js";
import type { KeyServerRequest } from "../core/key-server.js";
import type { KeyServerEvent } from "../lambda/events.js";
import type { JoinedHeaders } from "../node-runtime/raw-headers.js";
import { buildApiGatewayEvent } from "./to-event.js";

/**
 * A node:http request as the core reads it, straight from the request: no API Gateway event is
 * built unless `authenticate` or `getViewerId` asks for one, and then it is the event the Lambda
 * would have received. Refusals match the Lambda adapter's, word for word.
 */
class NodeKeyServerRequest implements KeyServerRequest<KeyServerEvent> {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array | undefined;
  readonly problem: string | undefined;
  readonly repeatedHeader: string | undefined;
  readonly requestId = crypto.randomUUID();
  readonly #req: IncomingMessage;
  readonly #cookies: string[] | undefined;
  #event: KeyServerEvent | undefined;

  constructor(
    req: IncomingMessage,
    { headers, cookies, repeated }: JoinedHeaders,
    body: Uint8Array | undefined,
  ) {
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    this.#req = req;
    this.method = req.method ?? "GET";
    this.path = queryAt < 0 ? url : url.slice(0, queryAt);
    this.headers = headers;
    this.#cookies = cookies;
    this.body = body && body.length > 0 ? body : undefined;
    this.repeatedHeader = repeated;
    const limit = this.body ? bodyLimitFor(this.path) : 0;
    this.problem = repeated
      ? repeatedHeaderProblem(repeated)
      : this.body && this.body.length > limit
        ? bodyTooLarge(limit)
        : undefined;
  }

  get event(): KeyServerEvent {
    this.#event ??= buildApiGatewayEvent(this.#req, this.headers, this.#cookies, this.body, this.requestId);
    return this.#event;
  }
}

/** `headers`: the request's, read by `joinHeaders`. */
export function toKeyServerRequest(
  req: IncomingMessage,
  headers: JoinedHeaders,
  body: Uint8Array | undefined,
): KeyServerRequest<KeyServerEvent> {
  return new NodeKeyServerRequest(req, headers, body);
}
