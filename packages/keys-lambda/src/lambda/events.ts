/**
 * The Lambda events the key server accepts, typed only as far as it reads them (no dependency on
 * @types/aws-lambda). Function URL events have the HTTP API v2 shape.
 */

/** API Gateway HTTP API payload 2.0, and Lambda Function URL events. */
export interface ApiGatewayV2Event {
  version: "2.0";
  routeKey?: string;
  rawPath: string;
  rawQueryString?: string;
  cookies?: string[];
  /** Lowercase names when the key server hands the event to your callbacks. */
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined>;
  pathParameters?: Record<string, string | undefined>;
  stageVariables?: Record<string, string | undefined>;
  requestContext: {
    http: { method: string; path?: string; protocol?: string; sourceIp?: string; userAgent?: string };
    requestId?: string;
    stage?: string;
    domainName?: string;
    timeEpoch?: number;
    authorizer?: unknown;
    [key: string]: unknown;
  };
  body?: string;
  isBase64Encoded?: boolean;
}

/** API Gateway REST API proxy integration, payload 1.0. */
export interface ApiGatewayV1Event {
  version?: "1.0";
  resource?: string;
  path: string;
  httpMethod: string;
  /** Lowercase names when the key server hands the event to your callbacks. */
  headers?: Record<string, string | undefined> | null;
  multiValueHeaders?: Record<string, string[] | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
  pathParameters?: Record<string, string | undefined> | null;
  stageVariables?: Record<string, string | undefined> | null;
  requestContext?: {
    stage?: string;
    requestId?: string;
    identity?: { sourceIp?: string; [key: string]: unknown };
    authorizer?: unknown;
    [key: string]: unknown;
  };
  body?: string | null;
  isBase64Encoded?: boolean;
}

/**
 * An Application Load Balancer target event. With multi-value headers on for the target group,
 * headers and query arrive only in the `multiValue…` maps, and the answer must use them too.
 */
export interface AlbEvent {
  requestContext: { elb: { targetGroupArn?: string; [key: string]: unknown }; [key: string]: unknown };
  httpMethod: string;
  path: string;
  /** Lowercase names (the ALB sends them so). */
  headers?: Record<string, string | undefined> | null;
  multiValueHeaders?: Record<string, string[] | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
  multiValueQueryStringParameters?: Record<string, string[] | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
}

/** Any event the Lambda key server accepts; the shape is detected per invocation. */
export type KeyServerEvent = ApiGatewayV2Event | ApiGatewayV1Event | AlbEvent;

/** What the handler returns to API Gateway (HTTP API 1.0 and 2.0, REST API) and Function URLs. */
export interface LambdaHttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}

/**
 * What the handler returns to an Application Load Balancer: a `statusDescription`, and headers in
 * the same form as the event's (`multiValueHeaders` when the target group has them on).
 */
export interface AlbResult {
  statusCode: number;
  statusDescription: string;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  body: string;
  isBase64Encoded: boolean;
}

/** Every answer the handler gives, in the shape of the event it was given. */
export type KeyServerResult = LambdaHttpResult | AlbResult;
