export { jsonLinesAudit } from "./core/audit.js";
export { ALLOWED_REQUEST_HEADERS } from "./core/cors.js";
export type { KeySource } from "./core/key-cache.js";
export {
  ANONYMOUS_VIEWER,
  createKeyServer,
  type KeyServerHandler,
  type KeyServerRequest,
  type KeyServerRuntime,
  LEASE_HEADER,
  type LeaseKey,
  type LeaseResponseBody,
  MAX_KEYS_PER_REQUEST,
  MAX_KEYS_WITH_LEASE,
  type TitleKeysResponseBody,
} from "./core/key-server.js";
export {
  type AuditRecord,
  type AuthResult,
  DEFAULT_LEASE_TTL_SECONDS,
  KeyServerConfigError,
  type KeyServerLogger,
  type KeyServerOptions,
  MAX_BODY_BYTES,
  MAX_LEASE_TTL_SECONDS,
  MAX_PUBLISH_BODY_BYTES,
  MIN_LEASE_TTL_SECONDS,
  type PublishIdentity,
  type RouteName,
} from "./core/options.js";
export * from "./core/publish/options.js";
export { UPLOAD_CONTENT_TYPES, uploadContentType, uploadPathProblem } from "./core/publish/paths.js";
export type {
  PresignedUpload,
  PresignResponseBody,
  PublishKeysResponseBody,
} from "./core/publish/routes.js";
export type { ErrorCode, KeyServerResponse } from "./core/response.js";
export {
  type CreateLeaseInput,
  type CreateLeaseResult,
  isLeaseIdFormat,
  type Lease,
  type LeaseLookup,
  type LeaseStore,
  LeaseStoreTimeoutError,
  newLeaseId,
  type ReleaseLeaseInput,
  type ReleaseLeaseResult,
  type RenewLeaseInput,
  type RenewLeaseResult,
} from "./lease-store.js";
