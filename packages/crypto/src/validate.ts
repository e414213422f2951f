import { BlindcastCryptoError } from "./errors.js";

/** Longest contentId the contract allows. */
export const MAX_CONTENT_ID_LENGTH = 128;
/** Largest epoch the contract allows (2^32 - 1). */
export const MAX_EPOCH = 4294967295;

const CONTENT_ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;
const CANONICAL_EPOCH_PATTERN = /^(0|[1-9][0-9]{0,9})$/;

/**
 * Why a contentId is refused, or `undefined` when it is valid. Only URL-unreserved characters are
 * allowed so that a contentId is a single, unambiguous path segment; `.` and `..` are path
 * navigation and therefore refused.
 */
export function contentIdProblem(contentId: unknown): string | undefined {
  if (typeof contentId !== "string") return "contentId must be a string";
  if (contentId.length === 0) return "contentId must not be empty";
  if (contentId.length > MAX_CONTENT_ID_LENGTH) {
    return `contentId must be at most ${MAX_CONTENT_ID_LENGTH} characters`;
  }
  if (!CONTENT_ID_PATTERN.test(contentId)) {
    return "contentId may contain only A-Z a-z 0-9 . _ ~ -";
  }
  if (contentId === "." || contentId === "..") return "contentId must not be '.' or '..'";
  return undefined;
}

export function isValidContentId(contentId: unknown): contentId is string {
  return contentIdProblem(contentId) === undefined;
}

/** Throws a `BlindcastCryptoError` (code `INVALID_CONTENT_ID`) unless the contentId is valid. */
export function assertContentId(contentId: unknown): asserts contentId is string {
  const problem = contentIdProblem(contentId);
  if (problem !== undefined) throw new BlindcastCryptoError("INVALID_CONTENT_ID", problem);
}

export function isValidEpoch(epoch: unknown): epoch is number {
  return typeof epoch === "number" && Number.isInteger(epoch) && epoch >= 0 && epoch <= MAX_EPOCH;
}

/** Throws a `BlindcastCryptoError` (code `INVALID_EPOCH`) unless epoch is an integer in 0..2^32-1. */
export function assertEpoch(epoch: unknown): asserts epoch is number {
  if (!isValidEpoch(epoch)) {
    throw new BlindcastCryptoError("INVALID_EPOCH", `epoch must be an integer from 0 to ${MAX_EPOCH}`);
  }
}

/**
 * Parses an epoch written in canonical decimal (as it appears in URLs and playlists). Signs,
 * leading zeros, fractions, exponents and whitespace are refused, never normalised, so that one
 * epoch has exactly one spelling.
 */
export function parseEpoch(text: string): number {
  if (typeof text !== "string" || !CANONICAL_EPOCH_PATTERN.test(text) || Number(text) > MAX_EPOCH) {
    throw new BlindcastCryptoError(
      "INVALID_EPOCH",
      `epoch must be written in canonical decimal from 0 to ${MAX_EPOCH} (no sign, no leading zeros)`,
    );
  }
  return Number(text);
}
