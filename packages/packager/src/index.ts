export { type KeyServerFailure, PackagerError, type PackagerErrorCode } from "./errors.js";
export {
  createKeyServerKeySource,
  type KeyServerKeySourceOptions,
  MAX_KEYS_PER_REQUEST,
} from "./key-server-source.js";
export {
  createMasterKeySource,
  type KeyId,
  type KeySource,
  type MasterKeySourceOptions,
} from "./key-source.js";
export {
  KEY_URI_PREFIX,
  type PackageKeySourceOptions,
  type PackageMasterKeyOptions,
  type PackageOptions,
  type PackageProgress,
  type PackageResult,
  type PackageStreamOptions,
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
export {
  type LiveWatch,
  type WatchEvent,
  type WatchOptions,
  type WatchResult,
  type WatchStreamOptions,
  watchHls,
} from "./watch-hls.js";
