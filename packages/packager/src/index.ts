export { PackagerError, type PackagerErrorCode } from "./errors.js";
export {
  KEY_URI_PREFIX,
  type PackageOptions,
  type PackageProgress,
  type PackageResult,
  packageHls,
} from "./package-hls.js";
export {
  type LiveWatch,
  type WatchEvent,
  type WatchOptions,
  type WatchResult,
  watchHls,
} from "./watch-hls.js";
