// The Lambda entry point that deploy/sam/template.yaml and template-rest.yaml deploy, bundled by
// scripts/build-lambda.mjs into deploy/dist/keys/index.mjs (handler `index.handler`). Copy it and
// change `authenticate` to match your identity provider; everything else is configuration.
import { hexToBytes } from "@blindcast/crypto";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { requiredEnv } from "./env.js";
import { publishFromLambdaEnv } from "./publish-env.js";

export const handler = createLambdaKeyServer({
  masterKey: hexToBytes(requiredEnv("MASTER_KEY")),
  salt: hexToBytes(requiredEnv("SALT")),
  corsOrigins: requiredEnv("CORS_ORIGINS"),
  // Bearer JWTs signed HS256 with JWT_SECRET (resolved from Secrets Manager, see the templates);
  // the viewer is the token's `sub`. Tokens whose `scope` holds blindcast:publish are publishers.
  authenticate: createJwtAuthenticator({
    secret: requiredEnv("JWT_SECRET"),
    publisherScope: process.env.JWT_PUBLISHER_SCOPE?.trim() || "blindcast:publish",
  }),
  // Publisher routes (packaging keys, presigned uploads) only when PUBLISH_BUCKET is set.
  publish: publishFromLambdaEnv(),
});
