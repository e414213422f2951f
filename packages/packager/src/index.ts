export { PackagerError, type PackagerErrorCode } from "./errors.js";
export {
  KEY_URI_PREFIX,
  type PackageOptions,
  type PackageProgress,
  type PackageResult,
  packageHls,
} from "./package-hls.js";
