export { PackagerError, type PackagerErrorCode } from "./errors.js";
export {
  KEY_URI_PREFIX,
  type PackageOptions,
  type PackageProgress,
  type PackageResult,
  packageHls,
} from "./package-hls.js";
export {
  type IgnoredFile,
  MAX_UPLOAD_FILE_BYTES,
  UPLOADABLE_EXTENSIONS,
  UploadError,
  type UploadErrorCode,
  type UploadFailure,
  type UploadOptions,
  type UploadOutcome,
  type UploadProgress,
  type UploadResult,
  type UploadRetry,
  uploadStream,
} from "./upload/index.js";
