import type { KeyServerRuntime } from "../core/key-server.js";
import type { KeyServerOptions } from "../core/options.js";
import { HttpError } from "../core/response.js";
import { createNodeKeyServer } from "../node-runtime/key-server.js";
import type {
  AlbEvent,
  AlbResult,
  ApiGatewayV1Event,
  ApiGatewayV2Event,
  KeyServerEvent,
  KeyServerResult,
  LambdaHttpResult,
} from "./events.js";
import { normalizeEvent } from "./normalize.js";
import { toResult } from "./result.js";

export { type ApiGatewayAuthorizerOptions, createApiGatewayAuthenticator } from "./authorizer.js";
export type {
  AlbEvent,
  AlbResult,
  ApiGatewayV1Event,
  ApiGatewayV2Event,
  KeyServerEvent,
  KeyServerResult,
  LambdaHttpResult,
} from "./events.js";
export { toAlbResult, toLambdaResult } from "./result.js";

/** Options of the Lambda key server; callbacks receive the event with lowercase header names. */
export type LambdaKeyServerOptions = KeyServerOptions<KeyServerEvent>;

/**
 * A Lambda handler for API Gateway (HTTP API 2.0, REST API 1.0), Function URL and Application
 * Load Balancer events; each answer has the shape its event's source expects.
 */
export interface LambdaKeyServerHandler {
  (event: AlbEvent, context?: unknown): Promise<AlbResult>;
  (event: ApiGatewayV2Event | ApiGatewayV1Event, context?: unknown): Promise<LambdaHttpResult>;
  (event: KeyServerEvent, context?: unknown): Promise<KeyServerResult>;
}

const UNSUPPORTED_EVENT = "Unsupported event: expected an API Gateway, Function URL or ALB HTTP event";

/**
 * Creates the Lambda handler. The configuration is checked here, at cold start: a bad master
 * key or empty `corsOrigins` fails the deployment's first invocation loudly instead of serving.
 */
export function createLambdaKeyServer(
  options: LambdaKeyServerOptions,
  runtime: KeyServerRuntime = {},
): LambdaKeyServerHandler {
  const server = createNodeKeyServer(options, runtime);
  const handler = async (event: unknown): Promise<KeyServerResult> => {
    const normalized = normalizeEvent(event);
    if (!normalized)
      return toResult(new HttpError(400, UNSUPPORTED_EVENT, "bad_request").toResponse(), "api");
    return toResult(await server(normalized.request), normalized.answer);
  };
  // One implementation; the overloads only tell callers which answer shape their event gets.
  return handler as LambdaKeyServerHandler;
}
