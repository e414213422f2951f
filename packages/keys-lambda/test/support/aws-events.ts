/**
 * Lambda events as AWS sends them, each built from a sample AWS publishes: the JSON test data of
 * aws-lambda-go (github.com/aws/aws-lambda-go, events/testdata/<file>, named on each builder).
 * Only the request line, headers, body and what AWS derives from them (stage, route, path
 * parameters, base path) are adapted; every other field is the sample's, so the handler sees
 * the same shape, types and extras a deployed function would.
 */
import type { AlbEvent, ApiGatewayV1Event, ApiGatewayV2Event } from "@blindcast/keys/lambda";

export interface Request {
  method?: string;
  /** The path the API routes, e.g. `/keys/movie-42/7` (no stage, no base path). */
  path: string;
  headers?: Record<string, string>;
  /** Repeated headers, as a client sent them (a REST or ALB event lists each value). */
  repeated?: Record<string, string[]>;
  body?: string;
}

/** How an API Gateway API is reached and routed. */
export interface Mount {
  /** A named stage; `$default` or none leaves it out of the path. */
  stage?: string;
  /** A custom domain's base path mapping (`media`, `keys`); the stage is then not in the path. */
  basePath?: string;
  /** The route that matched: `ANY /keys/{proxy+}`, `ANY /{proxy+}` or `$default`. */
  route?: string;
}

const SAMPLE_CERT = {
  clientCertPem: "-----BEGIN CERTIFICATE-----\nMIIEZTCCAk0CAQEwDQ...",
  issuerDN: "C=US,ST=Washington,L=Seattle,O=Amazon Web Services,OU=Security,CN=My Private CA",
  serialNumber: "1",
  subjectDN: "C=US,ST=Washington,L=Seattle,O=Amazon Web Services,OU=Security,CN=My Client",
  validity: { notAfter: "Aug  5 00:28:21 2120 GMT", notBefore: "Aug 29 00:28:21 2020 GMT" },
};

function joined(request: Request): Record<string, string> {
  const headers: Record<string, string> = { ...(request.headers ?? {}) };
  for (const [name, values] of Object.entries(request.repeated ?? {})) headers[name] = values.join(",");
  return headers;
}

function multi(request: Request): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name] = [value];
  for (const [name, values] of Object.entries(request.repeated ?? {})) headers[name] = values;
  return headers;
}

function routeParameters(route: string, path: string): Record<string, string> | undefined {
  if (route === "$default") return undefined;
  const template = route.slice(route.indexOf(" ") + 1);
  const literal = template.slice(0, template.indexOf("{"));
  return { proxy: path.slice(literal.length) };
}

/**
 * HTTP API payload 2.0. Samples: apigw-v2-request-no-authorizer.json, and with `authorizer`
 * apigw-v2-request-iam.json, apigw-v2-request-jwt-authorizer.json,
 * apigw-v2-request-lambda-authorizer.json (the authorizer objects below are theirs).
 */
export function httpApiEvent(request: Request, mount: Mount = {}, authorizer?: unknown): ApiGatewayV2Event {
  const stage = mount.stage ?? "$default";
  const route = mount.route ?? "ANY /keys/{proxy+}";
  const prefix = mount.basePath ? `/${mount.basePath}` : stage === "$default" ? "" : `/${stage}`;
  const rawPath = `${prefix}${request.path}`;
  const event: ApiGatewayV2Event = {
    version: "2.0",
    routeKey: route,
    rawPath,
    rawQueryString: "parameter1=value1&parameter1=value2&parameter2=value",
    cookies: ["cookie1", "cookie2"],
    headers: { Header1: "value1", Header2: "value2", ...joined(request) },
    queryStringParameters: { parameter1: "value1,value2", parameter2: "value" },
    requestContext: {
      routeKey: route,
      accountId: "123456789012",
      stage,
      requestId: "id",
      apiId: "api-id",
      authentication: { clientCert: SAMPLE_CERT },
      domainName: mount.basePath ? "media.example.com" : "id.execute-api.us-east-1.amazonaws.com",
      domainPrefix: mount.basePath ? "media" : "id",
      time: "12/Mar/2020:19:03:58+0000",
      timeEpoch: 1583348638390,
      http: {
        method: request.method ?? "GET",
        path: rawPath,
        protocol: "HTTP/1.1",
        sourceIp: "IP",
        userAgent: "agent",
      },
      ...(authorizer === undefined ? {} : { authorizer }),
    },
    stageVariables: { stageVariable1: "value1", stageVariable2: "value2" },
    isBase64Encoded: false,
  };
  const parameters = routeParameters(route, request.path);
  if (parameters) event.pathParameters = parameters;
  if (request.body !== undefined) event.body = request.body;
  return event;
}

/** The authorizer objects of the aws-lambda-go samples named on httpApiEvent. */
export const HTTP_API_AUTHORIZERS = {
  /** apigw-v2-request-iam.json: a SigV4-signed request, credentials from a Cognito identity pool. */
  iam: {
    iam: {
      accessKey: "ARIA2ZJZYVUEREEIHAKY",
      accountId: "1234567890",
      callerId: "AROA7ZJZYVRE7C3DUXHH6:CognitoIdentityCredentials",
      cognitoIdentity: {
        amr: ["foo"],
        identityId: "us-east-1:3f291106-8703-466b-8f2b-3ecee1ca56ce",
        identityPoolId: "us-east-1:4f291106-8703-466b-8f2b-3ecee1ca56ce",
      },
      principalOrgId: "AwsOrgId",
      userArn: "arn:aws:iam::1234567890:user/Admin",
      userId: "AROA2ZJZYVRE7Y3TUXHH6",
    },
  },
  /** apigw-v2-request-jwt-authorizer.json, with a `sub` claim added. */
  jwt: {
    jwt: { claims: { claim1: "value1", claim2: "value2", sub: "viewer-jwt" }, scopes: ["scope1", "scope2"] },
  },
  /** apigw-v2-request-lambda-authorizer.json, with the context naming the viewer. */
  lambda: { lambda: { key: "value", viewerId: "viewer-lambda" } },
};

/** A SigV4 Authorization value (the form AWS documents; commas and all). */
export const SIGV4_AUTHORIZATION =
  "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261129/us-east-1/execute-api/aws4_request, " +
  "SignedHeaders=host;x-amz-date;x-amz-security-token, " +
  "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

/** Function URL: payload 2.0 with its own domain. Sample: lambda-urls-request.json (IAM auth). */
export function functionUrlEvent(request: Request, withIam = false): ApiGatewayV2Event {
  const event: ApiGatewayV2Event = {
    version: "2.0",
    routeKey: "$default",
    rawPath: request.path,
    rawQueryString: "parameter1=value1&parameter1=value2&parameter2=value",
    cookies: ["cookie1", "cookie2"],
    headers: { header1: "value1", header2: "value1,value2", ...joined(request) },
    queryStringParameters: { parameter1: "value1,value2", parameter2: "value" },
    requestContext: {
      accountId: "123456789012",
      apiId: "<urlid>",
      domainName: "<url-id>.lambda-url.us-west-2.on.aws",
      domainPrefix: "<url-id>",
      http: {
        method: request.method ?? "GET",
        path: request.path,
        protocol: "HTTP/1.1",
        sourceIp: "123.123.123.123",
        userAgent: "agent",
      },
      requestId: "id",
      time: "12/Mar/2020:19:03:58 +0000",
      timeEpoch: 1583348638390,
      ...(withIam
        ? {
            authorizer: {
              iam: {
                accessKey: "AKIA...",
                accountId: "111122223333",
                callerId: "AIDA...",
                userArn: "arn:aws:iam::111122223333:user/example-user",
                userId: "AIDA...",
              },
            },
          }
        : {}),
    },
    isBase64Encoded: false,
  };
  if (request.body !== undefined) event.body = request.body;
  return event;
}

/**
 * REST API proxy integration, payload 1.0. Sample: apigw-request.json. `path` leaves the stage
 * out on the execute-api domain but keeps a custom domain's base path; `binary` is what API
 * Gateway does with a body when the API's binary media types match it (`*∕*`): base64.
 */
export function restApiEvent(
  request: Request,
  mount: Mount = {},
  options: { authorizer?: unknown; binary?: boolean; identity?: Record<string, unknown> } = {},
): ApiGatewayV1Event {
  const stage = mount.stage ?? "testStage";
  const resource = (mount.route ?? "ANY /{proxy+}").slice((mount.route ?? "ANY /{proxy+}").indexOf(" ") + 1);
  const path = `${mount.basePath ? `/${mount.basePath}` : ""}${request.path}`;
  const headers = {
    Accept: "*/*",
    "Accept-Encoding": "gzip, deflate",
    "cache-control": "no-cache",
    "CloudFront-Forwarded-Proto": "https",
    "CloudFront-Viewer-Country": "US",
    Host: "gy415nuibc.execute-api.us-east-1.amazonaws.com",
    "User-Agent": "PostmanRuntime/2.4.5",
    Via: "1.1 d98420743a69852491bbdea73f7680bd.cloudfront.net (CloudFront)",
    "X-Forwarded-For": "54.240.196.186, 54.182.214.83",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Proto": "https",
  };
  const all = { ...request, headers: { ...headers, ...(request.headers ?? {}) } };
  const single: Record<string, string> = { ...all.headers };
  // API Gateway's single-value map keeps the last of repeated values.
  for (const [name, values] of Object.entries(request.repeated ?? {})) single[name] = values.at(-1) as string;
  const body =
    request.body === undefined
      ? null
      : options.binary
        ? Buffer.from(request.body).toString("base64")
        : request.body;
  return {
    resource,
    path,
    httpMethod: request.method ?? "GET",
    headers: single,
    multiValueHeaders: multi(all),
    queryStringParameters: { name: "me" },
    pathParameters: routeParameters(`ANY ${resource}`, request.path) ?? null,
    stageVariables: { stageVariableName: "stageVariableValue" },
    requestContext: {
      accountId: "12345678912",
      resourceId: "roq9wj",
      stage,
      domainName: mount.basePath ? "media.example.com" : "gy415nuibc.execute-api.us-east-2.amazonaws.com",
      domainPrefix: "y0ne18dixk",
      requestId: "deef4878-7910-11e6-8f14-25afc3e9ae33",
      identity: {
        cognitoIdentityPoolId: null,
        accountId: null,
        cognitoIdentityId: null,
        caller: null,
        sourceIp: "192.168.196.186",
        userArn: null,
        userAgent: "PostmanRuntime/2.4.5",
        user: null,
        ...(options.identity ?? {}),
      },
      ...(options.authorizer === undefined ? {} : { authorizer: options.authorizer }),
      resourcePath: resource,
      path: mount.basePath ? path : `/${stage}${request.path}`,
      httpMethod: request.method ?? "GET",
      requestTime: "15/May/2020:06:01:09 +0000",
      requestTimeEpoch: 1589522469693,
      apiId: "gy415nuibc",
    },
    body,
    isBase64Encoded: options.binary === true && body !== null,
  };
}

/**
 * ALB target. Samples: alb-lambda-target-request-headers-only.json (single-value) and
 * alb-lambda-target-request-multivalue-headers.json (target group with multi-value headers on:
 * no `headers`, no `queryStringParameters`).
 */
export function albEvent(request: Request, multiValue: boolean): AlbEvent {
  const base = {
    accept: "*/*",
    connection: "keep-alive",
    host: "lambda-test-alb-1234567.us-east-1.elb.amazonaws.com",
    "user-agent": "curl/7.54.0",
    "x-amzn-trace-id": "Root=1-5c34e7d4-00ca239424b68028d4c56d68",
    "x-forwarded-for": "72.21.198.67",
    "x-forwarded-port": "80",
    "x-forwarded-proto": "http",
    "x-imforwards": "20",
    "x-myheader": "123",
  };
  const lower = (record: Record<string, string> = {}) =>
    Object.fromEntries(Object.entries(record).map(([k, v]) => [k.toLowerCase(), v]));
  const all: Request = { ...request, headers: { ...base, ...lower(request.headers) } };
  const event: AlbEvent = {
    requestContext: {
      elb: {
        targetGroupArn:
          "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda-target/abcdefgh",
      },
    },
    httpMethod: request.method ?? "GET",
    path: request.path,
    body: request.body ?? "",
    isBase64Encoded: false,
  };
  if (multiValue) {
    event.multiValueQueryStringParameters = { key: ["hello"] };
    event.multiValueHeaders = multi(all);
  } else {
    event.queryStringParameters = { key: "hello" };
    // Without multi-value headers, an ALB passes the last of repeated values.
    const single = { ...all.headers };
    for (const [name, values] of Object.entries(request.repeated ?? {}))
      single[name] = values.at(-1) as string;
    event.headers = single;
  }
  return event;
}
