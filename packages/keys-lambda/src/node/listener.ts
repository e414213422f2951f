import type { IncomingMessage, ServerResponse } from "node:http";
import type { KeyServerRuntime } from "../core/key-server.js";
import type { ApiGatewayV2Event, LambdaHttpResult, LambdaKeyServerOptions } from "../lambda/index.js";
import { createNodeKeyServer } from "../node-runtime/key-server.js";
import { joinHeaders } from "../node-runtime/raw-headers.js";
import { declaresBody, readBoundedBody } from "../node-runtime/read-body.js";
import { writeInternalError, writeResponse } from "../node-runtime/write-response.js";
import { toApiGatewayEvent } from "./to-event.js";
import { toKeyServerRequest } from "./to-request.js";

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
    withBody(req, res, declaresBody(joined.headers), (body) => {
      server(toKeyServerRequest(req, joined, body)).then(
        (response) => writeResponse(res, response),
        () => writeInternalError(res),
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
    withBody(req, res, declaresBody(req.headers), (body) => {
      handler(toApiGatewayEvent(req, body)).then(
        (result) => {
          // The result's headers are the handler's own: written as they are, never modified.
          res.writeHead(result.statusCode, result.headers);
          res.end(result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body);
        },
        () => writeInternalError(res),
      );
    });
}

/**
 * Most requests (every key request) have no body: answer at once rather than a tick later,
 * after the stream's "end". Nothing needs draining; node:http finishes the request itself.
 */
function withBody(
  req: IncomingMessage,
  res: ServerResponse,
  bodyFollows: boolean,
  then: (body: Uint8Array | undefined) => void,
): void {
  if (bodyFollows) readBoundedBody(req, res, then);
  else then(undefined);
}
