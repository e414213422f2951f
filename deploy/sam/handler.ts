// The Lambda entry point that deploy/sam/template.yaml deploys. Copy it and change
// `authenticate` to match your identity provider; everything else is configuration.
import { hexToBytes } from "@blindcast/crypto";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { jwtVerify } from "jose";

// Resolved by CloudFormation from Secrets Manager at deploy time (see template.yaml).
const jwtSecret = new TextEncoder().encode(process.env.JWT_SECRET!);

export const handler = createLambdaKeyServer({
  masterKey: hexToBytes(process.env.MASTER_KEY!),
  salt: hexToBytes(process.env.SALT!),
  corsOrigins: process.env.CORS_ORIGINS!,
  authenticate: async (event) => {
    const token = event.headers?.authorization?.split(" ")[1];
    if (!token) return { ok: false, status: 401, reason: "Missing token" };
    try {
      const { payload } = await jwtVerify(token, jwtSecret, { algorithms: ["HS256"] });
      return payload.sub
        ? { ok: true, viewerId: payload.sub }
        : { ok: false, status: 401, reason: "Token has no subject" };
    } catch {
      return { ok: false, status: 401, reason: "Invalid token" };
    }
  },
});
