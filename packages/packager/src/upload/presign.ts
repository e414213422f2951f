import type { UploadErrorCode } from "./errors.js";
import {
  answerReason,
  exchange,
  type FetchFunction,
  type RetryNotice,
  type RetrySettings,
  retryAfterMs,
  withRetries,
} from "./http.js";

/** The key server's own limit on files per presign request. */
export const MAX_PRESIGN_BATCH = 1000;
/** Bounds the presign answer read: a full batch of URLs is well under a megabyte. */
const MAX_PRESIGN_ANSWER_BYTES = 8 * 1024 * 1024;

/** One presigned upload, as the key server answered it, with when to stop trusting it. */
export interface Presigned {
  url: string;
  headers: Record<string, string>;
  head?: string;
  /** Local clock (Date.now()) after which the URL is asked for again rather than used. */
  renewAfter: number;
}

/** The key server refused or could not be reached: the whole upload stops. */
export class PresignError extends Error {
  constructor(
    readonly code: UploadErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PresignClient {
  presign(files: readonly { path: string; size: number }[]): Promise<Map<string, Presigned>>;
}

export interface PresignClientOptions {
  /** `{keyServerUrl}/publish/{contentId}/uploads`. */
  endpoint: string;
  token: string;
  head: boolean;
  fetch: FetchFunction;
  retry: RetrySettings;
  signal: AbortSignal | undefined;
  onRetry: (notice: RetryNotice) => void;
}

/** Asks the key server for presigned PUT (and HEAD) URLs; see the publisher API contract. */
export function createPresignClient(options: PresignClientOptions): PresignClient {
  return {
    async presign(files) {
      const body = JSON.stringify({
        files: files.map((f) => ({ path: f.path, size: f.size })),
        ...(options.head ? { head: true } : {}),
      });
      const result = await withRetries(
        options.retry,
        options.signal,
        async () => {
          const sentAt = Date.now();
          const answer = await exchange(
            options.fetch,
            options.endpoint,
            {
              method: "POST",
              headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" },
              body,
            },
            options.retry.timeoutMs,
            MAX_PRESIGN_ANSWER_BYTES,
            options.signal,
          );
          if (answer.status === 200) {
            return { ok: true as const, value: parseAnswer(answer.body, answer.headers, files, sentAt) };
          }
          const reason = answerReason(answer);
          if (answer.status >= 300 && answer.status < 400) {
            throw new PresignError(
              "INVALID_OPTIONS",
              `the key server redirected (HTTP ${answer.status}), not followed: keyServerUrl must be the final URL`,
            );
          }
          const fatal = fatalCode(answer.status);
          if (fatal) throw new PresignError(fatal, `the key server refused: ${reason}`);
          return {
            ok: false as const,
            retry: true,
            reason: `the key server answered ${reason}`,
            status: answer.status,
            retryAfterMs: retryAfterMs(answer.headers),
          };
        },
        options.onRetry,
      );
      if (!result.ok) {
        throw new PresignError("KEY_SERVER_UNAVAILABLE", `could not get upload URLs: ${result.reason}`);
      }
      return result.value;
    },
  };
}

/** Answers that another attempt cannot change. Anything else unexpected is retried (5xx, 429, 408, …). */
function fatalCode(status: number): UploadErrorCode | undefined {
  if (status === 401) return "UNAUTHORIZED";
  if (status === 403) return "FORBIDDEN";
  if (status === 404) return "PUBLISHING_DISABLED";
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return "REJECTED";
  return undefined;
}

interface WireUpload {
  path?: unknown;
  method?: unknown;
  url?: unknown;
  headers?: unknown;
  head?: unknown;
}

function parseAnswer(
  body: Uint8Array,
  headers: Headers,
  files: readonly { path: string; size: number }[],
  sentAt: number,
): Map<string, Presigned> {
  let json: { expiresAt?: unknown; uploads?: unknown };
  try {
    json = JSON.parse(new TextDecoder().decode(body)) as typeof json;
  } catch {
    throw new PresignError(
      "KEY_SERVER_UNAVAILABLE",
      "the key server's answer to the upload request is not JSON",
    );
  }
  const uploads = Array.isArray(json.uploads) ? (json.uploads as WireUpload[]) : [];
  if (uploads.length !== files.length) {
    throw new PresignError(
      "KEY_SERVER_UNAVAILABLE",
      `the key server answered ${uploads.length} upload URLs for ${files.length} files`,
    );
  }
  const renewAfter = renewTime(json.expiresAt, headers.get("date"), sentAt);
  const presigned = new Map<string, Presigned>();
  for (const [i, upload] of uploads.entries()) {
    const file = files[i];
    const headerValues =
      upload.headers && typeof upload.headers === "object" ? Object.entries(upload.headers as object) : [];
    if (
      !file ||
      upload.path !== file.path ||
      (upload.method !== undefined && upload.method !== "PUT") ||
      typeof upload.url !== "string" ||
      !/^https?:\/\//i.test(upload.url) ||
      headerValues.some(([, v]) => typeof v !== "string") ||
      (upload.head !== undefined && (typeof upload.head !== "string" || !/^https?:\/\//i.test(upload.head)))
    ) {
      throw new PresignError(
        "KEY_SERVER_UNAVAILABLE",
        `the key server's upload URL ${i + 1} is not one for ${file?.path ?? "a requested file"}`,
      );
    }
    presigned.set(file.path, {
      url: upload.url,
      headers: Object.fromEntries(headerValues) as Record<string, string>,
      ...(typeof upload.head === "string" ? { head: upload.head } : {}),
      renewAfter,
    });
  }
  return presigned;
}

/**
 * When to ask for a URL again instead of using it: its lifetime as the server counts it
 * (expiresAt minus the answer's Date, so a skewed local clock does not matter), counted from when
 * the request was sent, less a quarter (at most 30 s) so a PUT starts well before expiry.
 */
function renewTime(expiresAt: unknown, date: string | null, sentAt: number): number {
  const expires = typeof expiresAt === "string" ? Date.parse(expiresAt) : Number.NaN;
  const serverNow = date ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(expires)) return sentAt + 60_000; // no expiry given: assume a short one
  const lifetime = Math.max(0, expires - (Number.isNaN(serverNow) ? sentAt : serverNow));
  return sentAt + lifetime - Math.min(30_000, lifetime / 4);
}
