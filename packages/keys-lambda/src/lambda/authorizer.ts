import type { AuthResult } from "../core/options.js";
import { isRecord } from "./event-headers.js";
import type { KeyServerEvent } from "./events.js";

export interface ApiGatewayAuthorizerOptions {
  /** The JWT claim that names the viewer (HTTP API JWT authorizers, REST Cognito authorizers). Default `sub`. */
  claim?: string;
  /**
   * The context key a Lambda authorizer sets to name the viewer. Default `viewerId`; a REST API
   * Lambda authorizer's `principalId` is used when the context has no such key.
   */
  contextKey?: string;
}

const NO_IDENTITY: AuthResult = {
  ok: false,
  status: 401,
  reason: "No identity from an API Gateway authorizer",
};

/**
 * An `authenticate` callback for a key server behind an API Gateway authorizer (JWT, Cognito,
 * Lambda or IAM/SigV4): API Gateway has already verified the caller, and this names the viewer
 * from what the authorizer put in `requestContext`, which a client cannot set. A request that
 * reached the handler without an authorizer's identity (a route left open, an ALB) is refused.
 */
export function createApiGatewayAuthenticator(
  options: ApiGatewayAuthorizerOptions = {},
): (event: KeyServerEvent) => AuthResult {
  const claim = options.claim ?? "sub";
  const contextKey = options.contextKey ?? "viewerId";
  return (event) => {
    const context: unknown = event.requestContext;
    if (!isRecord(context)) return NO_IDENTITY;
    const viewerId =
      fromAuthorizer(context.authorizer, claim, contextKey) ?? fromIamIdentity(context.identity);
    return viewerId === undefined ? NO_IDENTITY : { ok: true, viewerId };
  };
}

function fromAuthorizer(authorizer: unknown, claim: string, contextKey: string): string | undefined {
  if (!isRecord(authorizer)) return undefined;
  // HTTP API JWT authorizer: { jwt: { claims, scopes } }.
  if (isRecord(authorizer.jwt))
    return named(isRecord(authorizer.jwt.claims) ? authorizer.jwt.claims[claim] : undefined);
  // HTTP API Lambda authorizer: { lambda: context }.
  if (isRecord(authorizer.lambda)) return named(authorizer.lambda[contextKey]);
  // HTTP API and Function URL IAM (SigV4): { iam: { userArn, cognitoIdentity, … } }. Callers with
  // Cognito identity-pool credentials share one role; their identity id tells them apart.
  if (isRecord(authorizer.iam)) {
    const cognito = authorizer.iam.cognitoIdentity;
    return named(isRecord(cognito) ? cognito.identityId : undefined) ?? named(authorizer.iam.userArn);
  }
  // REST Cognito user pool authorizer: { claims }.
  if (isRecord(authorizer.claims)) return named(authorizer.claims[claim]);
  // REST Lambda authorizer: the context's keys, beside principalId.
  return named(authorizer[contextKey]) ?? named(authorizer.principalId);
}

/** REST API with IAM authorization: the verified caller is in `requestContext.identity`. */
function fromIamIdentity(identity: unknown): string | undefined {
  if (!isRecord(identity)) return undefined;
  return named(identity.cognitoIdentityId) ?? named(identity.userArn);
}

function named(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}
