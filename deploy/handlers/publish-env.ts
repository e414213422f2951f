// Publishing for the Lambda handlers: on when PUBLISH_BUCKET is set (the templates' PublishBucket
// parameter). Upload URLs are signed with the function's own role, whose temporary credentials
// Lambda puts in the environment; they are read for every presign request.
import type { PublishOptions } from "@blindcast/keys";
import { requiredEnv } from "./env.js";

export function publishFromLambdaEnv(): PublishOptions | undefined {
  const bucket = process.env.PUBLISH_BUCKET?.trim();
  if (!bucket) return undefined;
  const prefix = process.env.PUBLISH_PREFIX?.trim();
  return {
    storage: {
      bucket,
      ...(prefix ? { prefix } : {}),
      region: process.env.S3_REGION?.trim() || requiredEnv("AWS_REGION"),
      credentials: () => {
        const sessionToken = process.env.AWS_SESSION_TOKEN;
        return {
          accessKeyId: requiredEnv("AWS_ACCESS_KEY_ID"),
          secretAccessKey: requiredEnv("AWS_SECRET_ACCESS_KEY"),
          ...(sessionToken ? { sessionToken } : {}),
        };
      },
    },
  };
}
