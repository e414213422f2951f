import type { IncomingMessage } from "node:http";
import type { ApiGatewayV2Event } from "../lambda/events.js";
import { joinHeaders } from "../node-runtime/raw-headers.js";

/**
 * Translates a node:http request into the HTTP API (payload 2.0) event API Gateway would send
 * for it, so that code written for the Lambda sees the same event locally.
 */
export function toApiGatewayEvent(req: IncomingMessage, body: Uint8Array | undefined): ApiGatewayV2Event {
  const { headers, cookies } = joinHeaders(req.rawHeaders);
  return buildApiGatewayEvent(req, headers, cookies, body, crypto.randomUUID());
}

/** The event from headers already read, so a caller that has them does not read them twice. */
export function buildApiGatewayEvent(
  req: IncomingMessage,
  headers: Record<string, string>,
  cookies: string[] | undefined,
  body: Uint8Array | undefined,
  requestId: string,
): ApiGatewayV2Event {
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  const rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
  const rawQueryString = queryAt < 0 ? "" : url.slice(queryAt + 1);
  const event: ApiGatewayV2Event = {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      http: {
        method: req.method ?? "GET",
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? "",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId,
      stage: "$default",
      domainName: headers.host ?? "localhost",
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
  if (cookies) event.cookies = cookies;
  if (rawQueryString) event.queryStringParameters = Object.fromEntries(new URLSearchParams(rawQueryString));
  if (body && body.length > 0) {
    event.body = Buffer.from(body).toString("base64");
    event.isBase64Encoded = true;
  }
  return event;
}
