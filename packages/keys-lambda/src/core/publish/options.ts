/** AWS-style credentials for signing upload URLs. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Present with temporary credentials (a Lambda role, STS): it travels inside each URL. */
  sessionToken?: string | undefined;
}

/**
 * Where uploads go: an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO…). Objects are named
 * `{prefix}/{contentId}/{path}`.
 */
export interface S3StorageOptions {
  bucket: string;
  /** Folder inside the bucket, without leading or trailing `/`. Default: none. */
  prefix?: string;
  /** The signing region: the bucket's AWS region, `auto` for R2, `us-east-1` for most MinIO. */
  region: string;
  /**
   * The storage endpoint, for anything but AWS S3: `https://<account>.r2.cloudflarestorage.com`,
   * `https://minio.example.com:9000`. Default: `https://s3.{region}.amazonaws.com`.
   */
  endpoint?: string;
  /**
   * Put the bucket in the path (`endpoint/bucket/key`) rather than the host name
   * (`bucket.endpoint/key`). Default: true with an `endpoint` (MinIO needs it), false for AWS.
   */
  forcePathStyle?: boolean;
  /**
   * The credentials that sign the URLs, or a function returning them (called for every presign
   * request, so rotating credentials are picked up; cache inside it if fetching is slow).
   */
  credentials: S3Credentials | (() => S3Credentials | Promise<S3Credentials>);
}

/** Publishing: keys for the packager, and presigned uploads to storage. */
export interface PublishOptions {
  /** Storage for `POST /keys/publish/{contentId}/uploads`. Without it only the keys route is on. */
  storage?: S3StorageOptions;
  /** Lifetime of upload URLs in seconds, 60 to 3600 (S3 allows up to 7 days). Default 900. */
  uploadUrlTtlSeconds?: number;
  /** Largest file a URL is signed for, in bytes (the size is signed: S3 refuses others). Default 5 GiB, S3's single-PUT limit. */
  maxFileBytes?: number;
}

export const DEFAULT_UPLOAD_URL_TTL_SECONDS = 900;
export const MIN_UPLOAD_URL_TTL_SECONDS = 60;
export const MAX_UPLOAD_URL_TTL_SECONDS = 3600;
/** S3's limit for one PUT. */
export const DEFAULT_MAX_FILE_BYTES = 5 * 1024 ** 3;
/** Files one presign request may name; uploaders ask in batches. */
export const MAX_FILES_PER_PRESIGN = 1000;
/** Keys one publisher keys request may ask for; packagers ask in batches. */
export const MAX_KEYS_PER_PUBLISH_REQUEST = 1024;
