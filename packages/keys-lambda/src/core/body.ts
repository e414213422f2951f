import { MAX_BODY_BYTES, MAX_PUBLISH_BODY_BYTES } from "./options.js";
import { HttpError } from "./response.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a JSON object body, refusing (400, with the reason) anything else: no body, a content
 * type other than JSON, more than `limit` bytes, invalid UTF-8, invalid JSON, or JSON that is not
 * an object.
 */
export function parseJsonObject(
  body: Uint8Array | undefined,
  contentType: string | undefined,
  limit: number = MAX_BODY_BYTES,
): Record<string, unknown> {
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
  if (mediaType !== "application/json") {
    throw new HttpError(400, "Content-Type must be application/json", "bad_request");
  }
  if (!body || body.length === 0) throw new HttpError(400, "Request body is empty", "bad_request");
  if (body.length > limit) throw new HttpError(400, bodyTooLarge(limit), "bad_request");
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new HttpError(400, "Request body is not valid UTF-8", "bad_request");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, "Request body is not valid JSON", "bad_request");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "Request body must be a JSON object", "bad_request");
  }
  return value as Record<string, unknown>;
}

/**
 * The most body bytes a request to `path` may carry, for adapters to stop reading at: publisher
 * routes take file lists, every other route a few hundred bytes at most. A plain text test keeps
 * this off the routing path.
 */
export function bodyLimitFor(path: string): number {
  return path.includes("/publish/") ? MAX_PUBLISH_BODY_BYTES : MAX_BODY_BYTES;
}

export function bodyTooLarge(limit: number): string {
  return `Request body is over ${limit} bytes`;
}
