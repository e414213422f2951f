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
  MAX_KEYS_WITH_LEASE,
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
  MIN_LEASE_TTL_SECONDS,
  type RouteName,
} from "./core/options.js";
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
