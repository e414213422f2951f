export { UploadError, type UploadErrorCode, type UploadFailure, type UploadOutcome } from "./errors.js";
export { type IgnoredFile, MAX_UPLOAD_FILE_BYTES, UPLOADABLE_EXTENSIONS } from "./files.js";
export {
  type UploadOptions,
  type UploadProgress,
  type UploadResult,
  type UploadRetry,
  uploadStream,
} from "./upload-stream.js";
