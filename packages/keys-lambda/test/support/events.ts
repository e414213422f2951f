import type { ApiGatewayV1Event, ApiGatewayV2Event, KeyServerResult } from "@blindcast/keys/lambda";
import { expect } from "vitest";

export interface RequestSpec {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  base64?: boolean;
  stage?: string;
}

export type EventKind = "v2" | "v1" | "url";
export const EVENT_KINDS: EventKind[] = ["v2", "v1", "url"];

/** An HTTP API (payload 2.0) event as API Gateway sends it. */
export function v2Event(spec: RequestSpec): ApiGatewayV2Event {
  const stage = spec.stage ?? "$default";
  const rawPath = stage === "$default" ? spec.path : `/${stage}${spec.path}`;
  const headers = Object.fromEntries(
    Object.entries(spec.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const event: ApiGatewayV2Event = {
    version: "2.0",
    routeKey: "ANY /{proxy+}",
    rawPath,
    rawQueryString: "",
    headers,
    requestContext: {
      accountId: "123456789012",
      apiId: "abc123",
      domainName: "abc123.execute-api.us-east-1.amazonaws.com",
      http: {
        method: spec.method ?? "GET",
        path: rawPath,
        protocol: "HTTP/1.1",
        sourceIp: "203.0.113.9",
        userAgent: "test",
      },
      requestId: "req-v2",
      routeKey: "ANY /{proxy+}",
      stage,
      time: "28/Nov/2026:12:00:00 +0000",
      timeEpoch: 1795867200000,
    },
    isBase64Encoded: spec.base64 ?? false,
  };
  if (spec.body !== undefined)
    event.body = spec.base64 ? Buffer.from(spec.body).toString("base64") : spec.body;
  return event;
}

/** A REST API proxy (payload 1.0) event: header case preserved, stage not in `path`. */
export function v1Event(spec: RequestSpec): ApiGatewayV1Event {
  const headers = spec.headers ?? {};
  return {
    resource: "/{proxy+}",
    path: spec.path,
    httpMethod: spec.method ?? "GET",
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    pathParameters: { proxy: spec.path.slice(1) },
    stageVariables: null,
    requestContext: {
      stage: spec.stage ?? "prod",
      requestId: "req-v1",
      identity: { sourceIp: "203.0.113.9" },
    },
    body:
      spec.body === undefined ? null : spec.base64 ? Buffer.from(spec.body).toString("base64") : spec.body,
    isBase64Encoded: spec.base64 ?? false,
  };
}

/** A Lambda Function URL event: payload 2.0 shape, `$default` stage, its own domain. */
export function functionUrlEvent(spec: RequestSpec): ApiGatewayV2Event {
  const event = v2Event({ ...spec, stage: "$default" });
  event.routeKey = "$default";
  event.requestContext.domainName = "abcdefg.lambda-url.us-east-1.on.aws";
  event.requestContext.stage = "$default";
  return event;
}

export function eventOf(kind: EventKind, spec: RequestSpec): ApiGatewayV1Event | ApiGatewayV2Event {
  if (kind === "v1") return v1Event(spec);
  if (kind === "url") return functionUrlEvent(spec);
  return v2Event(spec);
}

/** A result's headers, whichever form its shape uses (ALB multi-value answers list them). */
export function headersOf(result: KeyServerResult): Record<string, string> {
  if ("multiValueHeaders" in result && result.multiValueHeaders) {
    return Object.fromEntries(Object.entries(result.multiValueHeaders).map(([k, v]) => [k, v.join(",")]));
  }
  return result.headers ?? {};
}

export function jsonBody(result: KeyServerResult): Record<string, unknown> {
  expect(result.isBase64Encoded).toBe(false);
  expect(headersOf(result)["content-type"]).toBe("application/json; charset=utf-8");
  return JSON.parse(result.body) as Record<string, unknown>;
}

export function keyBytes(result: KeyServerResult): Uint8Array {
  expect(result.statusCode).toBe(200);
  expect(result.isBase64Encoded).toBe(true);
  expect(headersOf(result)["content-type"]).toBe("application/octet-stream");
  return new Uint8Array(Buffer.from(result.body, "base64"));
}
