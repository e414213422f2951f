import type { KeyServerResponse } from "../core/response.js";
import type { AlbResult, KeyServerResult, LambdaHttpResult } from "./events.js";
import type { AnswerShape } from "./normalize.js";
import { statusDescription as describeStatus } from "./status-text.js";

/**
 * Node's base64 (the Lambda runs on Node): the core's portable one builds a string per byte. A
 * copy rather than a view of `bytes.buffer`: V8 keeps a 16-byte array inside the heap, and asking
 * for its buffer moves it out, which costs more than copying it.
 */
function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/** Binary bodies go base64-encoded, as API Gateway, Function URLs and ALBs require. */
export function toLambdaResult(response: KeyServerResponse): LambdaHttpResult {
  const binary = typeof response.body !== "string";
  return {
    statusCode: response.statusCode,
    headers: response.headers,
    body: typeof response.body === "string" ? response.body : base64(response.body),
    isBase64Encoded: binary,
  };
}

/**
 * An ALB answer: `statusDescription` is required, and a target group with multi-value headers on
 * reads only `multiValueHeaders` (headers sent in `headers` would be dropped, CORS with them).
 */
export function toAlbResult(response: KeyServerResponse, multiValue: boolean): AlbResult {
  const { statusCode, headers, body, isBase64Encoded } = toLambdaResult(response);
  const statusDescription = describeStatus(statusCode);
  if (!multiValue) return { statusCode, statusDescription, headers, body, isBase64Encoded };
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) multiValueHeaders[name] = [value];
  return { statusCode, statusDescription, multiValueHeaders, body, isBase64Encoded };
}

export function toResult(response: KeyServerResponse, answer: AnswerShape): KeyServerResult {
  if (answer === "api") return toLambdaResult(response);
  return toAlbResult(response, answer === "alb-multi-value");
}
