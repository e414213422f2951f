import type { IncomingMessage, ServerResponse } from "node:http";
import type { KeyServerRuntime } from "../core/key-server.js";
import { MAX_BODY_BYTES } from "../core/options.js";
import type { ApiGatewayV2Event, LambdaHttpResult, LambdaKeyServerOptions } from "../lambda/index.js";
import { createNodeKeyServer } from "../node-runtime/key-server.js";
import { joinHeaders } from "../node-runtime/raw-headers.js";
import { toApiGatewayEvent } from "./to-event.js";
import { toKeyServerRequest } from "./to-request.js";

/** Past this many body bytes the connection is dropped rather than drained. */
const HARD_BODY_LIMIT = 1024 * 1024;

export type NodeRequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The key server as a node:http request listener: the Lambda's core, options and answers,
 * without the round trip through an API Gateway event (built only for `authenticate` and
 * `getViewerId`, which receive exactly the event the Lambda would).
 */
export function createKeyServerListener(
  options: LambdaKeyServerOptions,
  runtime: KeyServerRuntime = {},
): NodeRequestListener {
  const server = createNodeKeyServer(options, runtime);
  return (req, res) => {
    const joined = joinHeaders(req.rawHeaders);
    withBody(req, res, hasBody(joined.headers), (body) => {
      server(toKeyServerRequest(req, joined, body)).then(
        (response) => send(res, response.statusCode, response.headers, response.body),
        () => sendInternalError(res),
      );
    });
  };
}

/**
 * Wraps any Lambda handler (yours around `createLambdaKeyServer`, say) as a node:http request
 * listener, handing it the HTTP API 2.0 event API Gateway would send.
 */
export function toNodeListener(
  handler: (event: ApiGatewayV2Event) => Promise<LambdaHttpResult>,
): NodeRequestListener {
  return (req, res) =>
    withBody(req, res, hasBody(req.headers), (body) => {
      handler(toApiGatewayEvent(req, body)).then(
        (result) => {
          // The result's headers are the handler's own: written as they are, never modified.
          res.writeHead(result.statusCode, result.headers);
          res.end(result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body);
        },
        () => sendInternalError(res),
      );
    });
}

/**
 * Reads the body only up to one byte past the limit, which is enough for the handler to refuse
 * it with its usual reason.
 */
function withBody(
  req: IncomingMessage,
  res: ServerResponse,
  bodyFollows: boolean,
  then: (body: Uint8Array | undefined) => void,
): void {
  // Most requests (every key request) have no body: answer at once rather than a tick later,
  // after the stream's "end". Nothing needs draining; node:http finishes the request itself.
  if (!bodyFollows) {
    then(undefined);
    return;
  }
  const chunks: Buffer[] = [];
  let kept = 0;
  let seen = 0;
  req.on("data", (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > HARD_BODY_LIMIT) {
      req.destroy();
      return;
    }
    if (kept <= MAX_BODY_BYTES) {
      const part = chunk.subarray(0, MAX_BODY_BYTES + 1 - kept);
      chunks.push(part);
      kept += part.length;
    }
  });
  req.on("error", () => res.destroy());
  req.on("end", () => then(chunks.length > 0 ? Buffer.concat(chunks) : undefined));
}

/** Without either header an HTTP/1.1 request has no body. */
function hasBody(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers["content-length"] !== undefined || headers["transfer-encoding"] !== undefined;
}

/** Writes a core response; its headers object is the response's own, so it is added to. */
function send(
  res: ServerResponse,
  statusCode: number,
  headers: Record<string, string>,
  body: Uint8Array | string,
): void {
  // A known length rather than chunked encoding, as API Gateway would send. Passed with the
  // other headers: a separate setHeader sends writeHead down node:http's slower merging path.
  headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
  res.writeHead(statusCode, headers);
  res.end(body);
}

function sendInternalError(res: ServerResponse): void {
  // The handler answers every error itself; reaching here means a bug, never a secret.
  if (!res.headersSent) res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
  res.end('{"error":"Internal server error"}');
}
