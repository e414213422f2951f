// The Lambda entry point that deploy/sam/template.yaml and template-rest.yaml deploy, bundled by
// scripts/build-lambda.mjs into deploy/dist/keys/index.mjs (handler `index.handler`). Copy it and
// change `authenticate` to match your identity provider; everything else is configuration.
import { hexToBytes } from "@blindcast/crypto";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { requiredEnv } from "./env.js";

export const handler = createLambdaKeyServer({
  masterKey: hexToBytes(requiredEnv("MASTER_KEY")),
  salt: hexToBytes(requiredEnv("SALT")),
  corsOrigins: requiredEnv("CORS_ORIGINS"),
  // Bearer JWTs signed HS256 with JWT_SECRET (resolved from Secrets Manager, see the templates);
  // the viewer is the token's `sub`.
  authenticate: createJwtAuthenticator({ secret: requiredEnv("JWT_SECRET") }),
});
