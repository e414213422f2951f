import type { IncomingMessage } from "node:http";
import type { ApiGatewayV2Event } from "../lambda/events.js";

/**
 * Translates a node:http request into the HTTP API (payload 2.0) event API Gateway would send
 * for it, so that the local server runs exactly the code path Lambda runs.
 */
export function toApiGatewayEvent(req: IncomingMessage, body: Uint8Array | undefined): ApiGatewayV2Event {
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  const rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
  const rawQueryString = queryAt < 0 ? "" : url.slice(queryAt + 1);
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  // headersDistinct keeps every repeat (plain req.headers silently drops repeated Authorization);
  // API Gateway joins them with commas, so do we.
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (!values) continue;
    if (name === "cookie") cookies = values.flatMap((v) => v.split(/;\s*/));
    else headers[name] = values.join(",");
  }
  const now = Date.now();
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
      requestId: crypto.randomUUID(),
      stage: "$default",
      domainName: headers.host ?? "localhost",
      timeEpoch: now,
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
