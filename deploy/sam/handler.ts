// The Lambda entry point that deploy/sam/template.yaml deploys. Copy it and change
// `authenticate` to match your identity provider; everything else is configuration.
import { hexToBytes } from "@blindcast/crypto";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";

export const handler = createLambdaKeyServer({
  masterKey: hexToBytes(process.env.MASTER_KEY!),
  salt: hexToBytes(process.env.SALT!),
  corsOrigins: process.env.CORS_ORIGINS!,
  // Bearer JWTs signed HS256 with JWT_SECRET (resolved from Secrets Manager, see template.yaml);
  // the viewer is the token's `sub`.
  authenticate: createJwtAuthenticator({ secret: process.env.JWT_SECRET! }),
});
