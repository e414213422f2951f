import { KeyServerConfigError } from "../options.js";
import type { S3Credentials, S3StorageOptions } from "./options.js";

/** Storage options checked once, at start, with the URL each object key goes under. */
export interface ResolvedStorage {
  region: string;
  /** Everything before the object key, ending in `/`: `https://bucket.s3.eu-west-1.amazonaws.com/`. */
  base: string;
  /** The object key prefix, ending in `/` or empty. */
  prefix: string;
  credentials: () => Promise<S3Credentials>;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;
const REGION = /^[a-z0-9-]{1,64}$/;

export function resolveStorage(options: S3StorageOptions): ResolvedStorage {
  if (typeof options !== "object" || options === null) {
    throw new KeyServerConfigError("publish.storage must be { bucket, region, credentials, ... }");
  }
  const { bucket, region } = options;
  if (typeof bucket !== "string" || !BUCKET.test(bucket) || bucket.includes("..")) {
    throw new KeyServerConfigError("publish.storage.bucket must be an S3 bucket name (3-63 of a-z 0-9 . -)");
  }
  if (typeof region !== "string" || !REGION.test(region)) {
    throw new KeyServerConfigError('publish.storage.region must be a region name (eu-west-1; "auto" for R2)');
  }
  const prefix = options.prefix ?? "";
  if (
    typeof prefix !== "string" ||
    (prefix !== "" && !prefix.split("/").every((s) => PREFIX_SEGMENT.test(s)))
  ) {
    throw new KeyServerConfigError(
      "publish.storage.prefix must be a folder like media/videos (A-Z a-z 0-9 _ . -, no leading or trailing /)",
    );
  }
  return {
    region,
    base: storageBase(options, bucket, region),
    prefix: prefix === "" ? "" : `${prefix}/`,
    credentials: credentialSource(options.credentials),
  };
}

function storageBase(options: S3StorageOptions, bucket: string, region: string): string {
  let endpoint: URL;
  if (options.endpoint === undefined) {
    // us-east-1 answers at the global name, as AWS's SDKs address it.
    endpoint = new URL(
      region === "us-east-1" ? "https://s3.amazonaws.com" : `https://s3.${region}.amazonaws.com`,
    );
  } else {
    try {
      endpoint = new URL(options.endpoint);
    } catch {
      throw new KeyServerConfigError(
        "publish.storage.endpoint must be a URL (https://minio.example.com:9000)",
      );
    }
    if (endpoint.protocol !== "https:" && endpoint.protocol !== "http:") {
      throw new KeyServerConfigError("publish.storage.endpoint must be an http(s) URL");
    }
    if ((endpoint.pathname !== "/" && endpoint.pathname !== "") || endpoint.search || endpoint.hash) {
      throw new KeyServerConfigError("publish.storage.endpoint must have no path, query or fragment");
    }
  }
  const pathStyle = options.forcePathStyle ?? options.endpoint !== undefined;
  // A dotted bucket name breaks the TLS name of a virtual host: AWS's SDKs go path-style for it.
  if (pathStyle || bucket.includes(".")) return `${endpoint.origin}/${bucket}/`;
  return `${endpoint.protocol}//${bucket}.${endpoint.host}/`;
}

function credentialSource(credentials: S3StorageOptions["credentials"]): () => Promise<S3Credentials> {
  if (typeof credentials === "function") {
    return async () => checkedCredentials(await credentials());
  }
  const fixed = checkedCredentials(credentials);
  return async () => fixed;
}

function checkedCredentials(value: unknown): S3Credentials {
  const { accessKeyId, secretAccessKey, sessionToken } = (value ?? {}) as Partial<S3Credentials>;
  if (
    typeof accessKeyId !== "string" ||
    accessKeyId === "" ||
    typeof secretAccessKey !== "string" ||
    secretAccessKey === ""
  ) {
    throw new KeyServerConfigError("publish.storage.credentials needs accessKeyId and secretAccessKey");
  }
  if (sessionToken !== undefined && (typeof sessionToken !== "string" || sessionToken === "")) {
    throw new KeyServerConfigError("publish.storage.credentials.sessionToken must be a non-empty string");
  }
  return sessionToken === undefined
    ? { accessKeyId, secretAccessKey }
    : { accessKeyId, secretAccessKey, sessionToken };
}
