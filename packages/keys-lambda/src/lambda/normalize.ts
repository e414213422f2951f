import { bodyLimitFor, bodyTooLarge } from "../core/body.js";
import { repeatedHeaderProblem } from "../core/headers.js";
import type { KeyServerRequest } from "../core/key-server.js";
import { commaJoinedHeaders, type EventHeaders, isRecord, multiValueHeaders } from "./event-headers.js";
import type { AlbEvent, ApiGatewayV1Event, ApiGatewayV2Event, KeyServerEvent } from "./events.js";
import { routeKeyTemplate, routeRelativePath, stripStage } from "./route-path.js";

const utf8 = new TextEncoder();

/**
 * How the answer must be shaped: API Gateway and Function URLs take one form; an ALB wants a
 * `statusDescription`, and `multiValueHeaders` when its target group sends them.
 */
export type AnswerShape = "api" | "alb" | "alb-multi-value";

export interface NormalizedEvent {
  request: KeyServerRequest<KeyServerEvent>;
  answer: AnswerShape;
}

/**
 * Turns whichever event arrived into the core's request, or `undefined` when it is not an HTTP
 * event at all. Nothing is trusted: every field is checked before it is read.
 */
export function normalizeEvent(event: unknown): NormalizedEvent | undefined {
  if (!isRecord(event)) return undefined;
  if (event.version === "2.0") return fromV2(event as unknown as ApiGatewayV2Event);
  if (typeof event.httpMethod !== "string" || typeof event.path !== "string") return undefined;
  if (isRecord(event.requestContext) && isRecord(event.requestContext.elb)) {
    return fromAlb(event as unknown as AlbEvent);
  }
  return fromV1(event as unknown as ApiGatewayV1Event);
}

function fromV2(event: ApiGatewayV2Event): NormalizedEvent | undefined {
  const context: unknown = event.requestContext;
  const method = isRecord(context) && isRecord(context.http) ? context.http.method : undefined;
  if (!isRecord(context) || typeof method !== "string" || typeof event.rawPath !== "string") return undefined;
  const stage = typeof context.stage === "string" ? context.stage : undefined;
  const path =
    routeRelativePath(event.rawPath, routeKeyTemplate(event.routeKey), event.pathParameters) ??
    stripStage(event.rawPath, stage);
  const headers = commaJoinedHeaders(event.headers);
  return { request: finish(event, method, path, headers, context.requestId), answer: "api" };
}

function fromV1(event: ApiGatewayV1Event): NormalizedEvent {
  const context = isRecord(event.requestContext) ? event.requestContext : undefined;
  const path = routeRelativePath(event.path, event.resource, event.pathParameters) ?? event.path;
  const headers = multiValueHeaders(event.headers, event.multiValueHeaders);
  return { request: finish(event, event.httpMethod, path, headers, context?.requestId), answer: "api" };
}

function fromAlb(event: AlbEvent): NormalizedEvent {
  const multiValue = isRecord(event.multiValueHeaders);
  const headers = multiValueHeaders(event.headers, event.multiValueHeaders);
  // An ALB names no request id in the event; its trace id is the closest thing.
  const traceId = headers.headers["x-amzn-trace-id"];
  return {
    request: finish(event, event.httpMethod, event.path, headers, traceId),
    answer: multiValue ? "alb-multi-value" : "alb",
  };
}

/** What every shape shares: headers, body, and the event handed on with lowercase header names. */
function finish(
  event: KeyServerEvent,
  method: string,
  path: string,
  { headers, repeated }: EventHeaders,
  requestId: unknown,
): KeyServerRequest<KeyServerEvent> {
  const request: KeyServerRequest<KeyServerEvent> = {
    method,
    path,
    headers,
    event: { ...event, headers } as KeyServerEvent,
    requestId: typeof requestId === "string" ? requestId : undefined,
  };
  if (repeated) {
    request.problem = repeatedHeaderProblem(repeated);
    request.repeatedHeader = repeated;
    return request;
  }
  const rawBody: unknown = event.body;
  const isBase64Encoded: unknown = event.isBase64Encoded;
  if (rawBody === undefined || rawBody === null || rawBody === "") return request;
  if (typeof rawBody !== "string") {
    request.problem = "Request body must be a string";
  } else if (
    rawBody.length > (isBase64Encoded === true ? Math.ceil(bodyLimitFor(path) / 3) * 4 : bodyLimitFor(path))
  ) {
    // Refused before decoding: UTF-8 never has fewer bytes than UTF-16 code units.
    request.problem = bodyTooLarge(bodyLimitFor(path));
  } else if (isBase64Encoded === true) {
    const bytes = decodeBase64(rawBody);
    if (bytes) request.body = bytes;
    else request.problem = "Request body is flagged base64 but is not valid base64";
  } else {
    request.body = utf8.encode(rawBody);
  }
  return request;
}

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(text: string): Uint8Array | undefined {
  if (!BASE64_PATTERN.test(text)) return undefined;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
