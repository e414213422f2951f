import {
  BODY_TOO_LARGE,
  repeatedHeaderProblem,
  repeatedSingleValueHeader,
  SINGLE_VALUE_HEADERS,
} from "../core/headers.js";
import type { KeyServerRequest } from "../core/key-server.js";
import { MAX_BODY_BYTES } from "../core/options.js";
import type { ApiGatewayV1Event, ApiGatewayV2Event, KeyServerEvent } from "./events.js";

const utf8 = new TextEncoder();
const MAX_BASE64_CHARS = Math.ceil(MAX_BODY_BYTES / 3) * 4;

/**
 * Turns whichever event arrived into the core's request, or `undefined` when it is not an HTTP
 * event at all. Nothing is trusted: every field is checked before it is read.
 */
export function normalizeEvent(event: unknown): KeyServerRequest<KeyServerEvent> | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const candidate = event as Record<string, unknown>;
  if (candidate.version === "2.0") return fromV2(candidate as unknown as ApiGatewayV2Event);
  if (typeof candidate.httpMethod === "string" && typeof candidate.path === "string") {
    return fromV1(candidate as unknown as ApiGatewayV1Event);
  }
  return undefined;
}

function fromV2(event: ApiGatewayV2Event): KeyServerRequest<KeyServerEvent> | undefined {
  const context = event.requestContext;
  const method = isRecord(context) && isRecord(context.http) ? context.http.method : undefined;
  if (typeof method !== "string" || typeof event.rawPath !== "string") return undefined;
  const stage = typeof context.stage === "string" ? context.stage : undefined;
  return finish(event, method, stripStage(event.rawPath, stage), undefined, context.requestId);
}

function fromV1(event: ApiGatewayV1Event): KeyServerRequest<KeyServerEvent> {
  const context = isRecord(event.requestContext) ? event.requestContext : undefined;
  return finish(event, event.httpMethod, event.path, event.multiValueHeaders, context?.requestId);
}

/** What both shapes share: headers, body, and the event handed on with lowercase header names. */
function finish(
  event: KeyServerEvent,
  method: string,
  path: string,
  multiValueHeaders: unknown,
  requestId: unknown,
): KeyServerRequest<KeyServerEvent> {
  const headers = lowercaseHeaders(event.headers);
  const request: KeyServerRequest<KeyServerEvent> = {
    method,
    path,
    headers,
    event: { ...event, headers },
    requestId: stringOrUndefined(requestId),
  };
  const duplicated = duplicatedHeader(headers, multiValueHeaders);
  const rawBody: unknown = event.body;
  const isBase64Encoded: unknown = event.isBase64Encoded;
  if (duplicated) {
    request.problem = repeatedHeaderProblem(duplicated);
    return request;
  }
  if (rawBody === undefined || rawBody === null || rawBody === "") return request;
  if (typeof rawBody !== "string") {
    request.problem = "Request body must be a string";
  } else if (rawBody.length > (isBase64Encoded === true ? MAX_BASE64_CHARS : MAX_BODY_BYTES)) {
    // Refused before decoding: UTF-8 never has fewer bytes than UTF-16 code units.
    request.problem = BODY_TOO_LARGE;
  } else if (isBase64Encoded === true) {
    const bytes = decodeBase64(rawBody);
    if (bytes) request.body = bytes;
    else request.problem = "Request body is flagged base64 but is not valid base64";
  } else {
    request.body = utf8.encode(rawBody);
  }
  return request;
}

/** Repeats joined with commas (HTTP APIs), or listed in multiValueHeaders (REST APIs). */
function duplicatedHeader(headers: Record<string, string>, multi: unknown): string | undefined {
  const joined = repeatedSingleValueHeader(headers);
  if (joined || !isRecord(multi)) return joined;
  for (const [name, values] of Object.entries(multi)) {
    const lower = name.toLowerCase();
    if (SINGLE_VALUE_HEADERS.includes(lower) && Array.isArray(values) && values.length > 1) return lower;
  }
  return undefined;
}

/** HTTP APIs put a named stage at the front of rawPath; REST APIs leave it out of `path`. */
function stripStage(path: string, stage: string | undefined): string {
  if (!stage || stage === "$default") return path;
  const prefix = `/${stage}`;
  return path === prefix || path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path;
}

function lowercaseHeaders(raw: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!isRecord(raw)) return headers;
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value !== "string") continue;
    const lower = name.toLowerCase();
    // Two spellings of one header (Origin and origin) in a v1 map are a duplicate.
    headers[lower] = lower in headers ? `${headers[lower]},${value}` : value;
  }
  return headers;
}

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(text: string): Uint8Array | undefined {
  if (!BASE64_PATTERN.test(text)) return undefined;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
