import { BlindcastPlayerError } from "./errors.js";

/** A lease as the player holds it. */
export interface LeaseInfo {
  leaseId: string;
  contentId: string;
  /** As the server stated it. */
  expiresAt: Date;
  ttlSeconds: number;
}

export interface ResolvedLeaseSettings {
  required: boolean;
  renewAt: number;
}

export function parseLease(body: Record<string, unknown>): LeaseInfo {
  const { leaseId, contentId, ttlSeconds, expiresAt } = body as Partial<Record<keyof LeaseInfo, unknown>>;
  const expires = new Date(expiresAt as string);
  if (
    typeof leaseId !== "string" ||
    typeof contentId !== "string" ||
    !((ttlSeconds as number) > 0) ||
    !(+expires > 0)
  ) {
    throw new BlindcastPlayerError("INVALID_RESPONSE", "Key server answered a malformed lease");
  }
  return { leaseId, contentId, expiresAt: expires, ttlSeconds: ttlSeconds as number };
}

export function asPlayerError(error: unknown): BlindcastPlayerError {
  if (error instanceof BlindcastPlayerError) return error;
  return new BlindcastPlayerError("KEY_SERVER_UNAVAILABLE", "Key server request failed", { cause: error });
}
