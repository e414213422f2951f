import { base64 } from "../core/base64.js";
import type { KeyServerRuntime } from "../core/key-server.js";
import type { KeyServerOptions } from "../core/options.js";
import { HttpError, type KeyServerResponse } from "../core/response.js";
import type { KeyServerEvent, LambdaHttpResult } from "./events.js";
import { createNodeKeyServer } from "./node-runtime.js";
import { normalizeEvent } from "./normalize.js";

export type {
  ApiGatewayV1Event,
  ApiGatewayV2Event,
  KeyServerEvent,
  LambdaHttpResult,
} from "./events.js";

/** Options of the Lambda key server; callbacks receive the event with lowercase header names. */
export type LambdaKeyServerOptions = KeyServerOptions<KeyServerEvent>;

/** A Lambda handler for API Gateway (HTTP API 2.0, REST API 1.0) and Function URL events. */
export type LambdaKeyServerHandler = (event: KeyServerEvent, context?: unknown) => Promise<LambdaHttpResult>;

/**
 * Creates the Lambda handler. The configuration is checked here, at cold start: a bad master
 * key or empty `corsOrigins` fails the deployment's first invocation loudly instead of serving.
 */
export function createLambdaKeyServer(
  options: LambdaKeyServerOptions,
  runtime: KeyServerRuntime = {},
): LambdaKeyServerHandler {
  const server = createNodeKeyServer(options, runtime);
  return async (event) => {
    const request = normalizeEvent(event);
    if (!request) {
      return toLambdaResult(
        new HttpError(
          400,
          "Unsupported event: expected an API Gateway or Function URL HTTP event",
          "bad_request",
        ).toResponse(),
      );
    }
    return toLambdaResult(await server(request));
  };
}

/** Binary bodies go base64-encoded, as API Gateway requires to pass them through unchanged. */
export function toLambdaResult(response: KeyServerResponse): LambdaHttpResult {
  if (typeof response.body === "string") {
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body: response.body,
      isBase64Encoded: false,
    };
  }
  return {
    statusCode: response.statusCode,
    headers: response.headers,
    body: base64(response.body),
    isBase64Encoded: true,
  };
}
