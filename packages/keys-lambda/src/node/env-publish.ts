import type { PublishOptions, S3Credentials } from "../core/publish/options.js";
import { EnvConfigError, type KeyServerEnv } from "./env.js";

/** The scope a token needs to publish when `JWT_PUBLISHER_SCOPE` does not name another. */
export const DEFAULT_PUBLISHER_SCOPE = "blindcast:publish";

export interface PublishFromEnv {
  publish: PublishOptions | undefined;
  /** One line for the start-up summary. */
  summary: string;
}

/**
 * Publishing from the environment: `PUBLISH=on` turns on the keys route for packagers;
 * `PUBLISH_BUCKET` (which implies it) adds presigned uploads, with `PUBLISH_PREFIX`,
 * `S3_REGION` (or `AWS_REGION`), `S3_ENDPOINT`, `S3_FORCE_PATH_STYLE`, `UPLOAD_URL_TTL_SECONDS`,
 * `MAX_UPLOAD_FILE_BYTES`, and the credentials `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
 * `AWS_SESSION_TOKEN`, read again for every presign request (temporary credentials rotate).
 */
export function publishFromEnv(env: KeyServerEnv): PublishFromEnv {
  const bucket = env.PUBLISH_BUCKET?.trim() || undefined;
  const setting = env.PUBLISH?.trim().toLowerCase() || (bucket ? "on" : "off");
  if (setting !== "on" && setting !== "off") throw new EnvConfigError('PUBLISH must be "on" or "off"');
  if (setting === "off") {
    if (bucket) throw new EnvConfigError("PUBLISH_BUCKET is set but PUBLISH=off: unset one of them");
    return {
      publish: undefined,
      summary: "publishing: off (set PUBLISH=on or PUBLISH_BUCKET to turn it on)",
    };
  }
  const pathStyle = env.S3_FORCE_PATH_STYLE?.trim().toLowerCase();
  if (pathStyle !== undefined && pathStyle !== "" && pathStyle !== "true" && pathStyle !== "false") {
    throw new EnvConfigError('S3_FORCE_PATH_STYLE must be "true" or "false"');
  }
  const publish: PublishOptions = {};
  const ttl = integer(env, "UPLOAD_URL_TTL_SECONDS");
  if (ttl !== undefined) publish.uploadUrlTtlSeconds = ttl;
  const maxFileBytes = integer(env, "MAX_UPLOAD_FILE_BYTES");
  if (maxFileBytes !== undefined) publish.maxFileBytes = maxFileBytes;
  if (!bucket) {
    return { publish, summary: "publishing: keys for packagers (no PUBLISH_BUCKET, so no uploads)" };
  }
  if (!env.AWS_ACCESS_KEY_ID?.trim() || !env.AWS_SECRET_ACCESS_KEY?.trim()) {
    throw new EnvConfigError(
      "PUBLISH_BUCKET needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to sign upload URLs",
    );
  }
  const region = env.S3_REGION?.trim() || env.AWS_REGION?.trim() || "us-east-1";
  const endpoint = env.S3_ENDPOINT?.trim() || undefined;
  const prefix = env.PUBLISH_PREFIX?.trim().replace(/^\/+|\/+$/g, "") || undefined;
  publish.storage = {
    bucket,
    region,
    ...(prefix ? { prefix } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(pathStyle ? { forcePathStyle: pathStyle === "true" } : {}),
    credentials: () => credentialsFrom(env),
  };
  const where = `${endpoint ?? "AWS S3"} bucket ${bucket}${prefix ? `/${prefix}` : ""} (${region})`;
  return { publish, summary: `publishing: keys for packagers, uploads to ${where}` };
}

function credentialsFrom(env: KeyServerEnv): S3Credentials {
  const sessionToken = env.AWS_SESSION_TOKEN?.trim();
  return {
    accessKeyId: env.AWS_ACCESS_KEY_ID?.trim() ?? "",
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY?.trim() ?? "",
    ...(sessionToken ? { sessionToken } : {}),
  };
}

function integer(env: KeyServerEnv, name: string): number | undefined {
  const text = env[name]?.trim();
  if (!text) return undefined;
  if (!/^[0-9]+$/.test(text)) throw new EnvConfigError(`${name} must be a whole number`);
  return Number(text);
}
