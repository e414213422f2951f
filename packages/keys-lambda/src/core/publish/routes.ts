import { base64 } from "../base64.js";
import type { KeySource } from "../key-cache.js";
import { checkedKeyList } from "../key-list.js";
import { HttpError, jsonResponse, type KeyServerResponse } from "../response.js";
import type { PublishConfig } from "./config.js";
import { MAX_FILES_PER_PRESIGN, MAX_KEYS_PER_PUBLISH_REQUEST } from "./options.js";
import { uploadContentType, uploadPathProblem } from "./paths.js";
import { amzDate, presignUrl } from "./presign.js";
import type { ResolvedStorage } from "./storage.js";

/** The body of `POST /keys/publish/{contentId}/keys`. */
export interface PublishKeysResponseBody {
  contentId: string;
  /** `epoch: null` is the content key; keys base64, 16 bytes each. */
  keys: { epoch: number | null; key: string }[];
}

/** One file of `POST /keys/publish/{contentId}/uploads`: PUT its bytes to `url` with `headers`. */
export interface PresignedUpload {
  path: string;
  method: "PUT";
  url: string;
  /** Signed with the URL: send exactly these (and exactly `content-length` bytes). */
  headers: { "content-length": string; "content-type": string };
  /** A presigned HEAD of the same object, when asked for with `head: true` (to skip unchanged files). */
  head?: string;
}

export interface PresignResponseBody {
  contentId: string;
  /** When the URLs stop working (ISO 8601, UTC). */
  expiresAt: string;
  uploads: PresignedUpload[];
}

/** What a publish route adds to the request's audit record. */
export interface PublishAudit {
  keys?: (number | null)[];
  files?: number;
  bytes?: number;
}

export interface PublishRoutes {
  keys(contentId: string, body: Record<string, unknown>): Promise<[KeyServerResponse, PublishAudit]>;
  uploads(contentId: string, body: Record<string, unknown>): Promise<[KeyServerResponse, PublishAudit]>;
}

/**
 * The publisher routes, on options checked at start (`resolvePublishConfig`, so mistakes are
 * config errors, not 500s). The key server imports this module only when a publisher calls.
 */
export function createPublishRoutes(config: PublishConfig, deriver: KeySource): PublishRoutes {
  const { storage, ttl, maxFileBytes } = config;

  return {
    async keys(contentId, body) {
      const wanted = checkedKeyList(body.keys, MAX_KEYS_PER_PUBLISH_REQUEST, true);
      const keys: PublishKeysResponseBody["keys"] = [];
      for (const epoch of wanted) {
        const key = epoch === null ? deriver.contentKey(contentId) : deriver.epochKey(contentId, epoch);
        keys.push({ epoch, key: base64(key instanceof Uint8Array ? key : await key) });
      }
      const answer: PublishKeysResponseBody = { contentId, keys };
      return [jsonResponse(200, answer), { keys: wanted }];
    },

    async uploads(contentId, body) {
      if (!storage) {
        throw new HttpError(
          404,
          "Uploads are not configured on this server (no storage)",
          "uploads_disabled",
        );
      }
      const files = checkedFiles(body.files, maxFileBytes);
      if (body.head !== undefined && typeof body.head !== "boolean") {
        throw new HttpError(400, "head must be true or false", "bad_request");
      }
      const now = new Date();
      const signedAt = amzDate(now);
      const uploads = await Promise.all(
        files.map(async ({ path, size }) =>
          presignedUpload(storage, contentId, path, size, ttl, signedAt, body.head === true),
        ),
      );
      const answer: PresignResponseBody = {
        contentId,
        expiresAt: new Date(Math.floor(now.getTime() / 1000) * 1000 + ttl * 1000).toISOString(),
        uploads,
      };
      return [
        jsonResponse(200, answer),
        { files: files.length, bytes: files.reduce((sum, file) => sum + file.size, 0) },
      ];
    },
  };
}

async function presignedUpload(
  storage: ResolvedStorage,
  contentId: string,
  path: string,
  size: number,
  ttl: number,
  signedAt: string,
  withHead: boolean,
): Promise<PresignedUpload> {
  const key = `${storage.prefix}${contentId}/${path}`;
  const headers = { "content-length": String(size), "content-type": uploadContentType(path) as string };
  const url = await presignUrl(storage, {
    method: "PUT",
    key,
    headers,
    expiresInSeconds: ttl,
    amzDate: signedAt,
  });
  const upload: PresignedUpload = { path, method: "PUT", url, headers };
  if (withHead) {
    upload.head = await presignUrl(storage, {
      method: "HEAD",
      key,
      expiresInSeconds: ttl,
      amzDate: signedAt,
    });
  }
  return upload;
}

function checkedFiles(value: unknown, maxFileBytes: number): { path: string; size: number }[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_FILES_PER_PRESIGN) {
    throw new HttpError(
      400,
      `files must be an array of 1 to ${MAX_FILES_PER_PRESIGN} { path, size } entries`,
      "bad_request",
    );
  }
  const seen = new Set<string>();
  return value.map((entry: unknown) => {
    const { path, size } = (typeof entry === "object" && entry !== null ? entry : {}) as Record<
      string,
      unknown
    >;
    const problem = uploadPathProblem(path);
    if (problem !== undefined) throw new HttpError(400, problem, "bad_request");
    const checkedPath = path as string;
    if (seen.has(checkedPath))
      throw new HttpError(400, `path "${checkedPath}" is listed twice`, "bad_request");
    seen.add(checkedPath);
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      throw new HttpError(
        400,
        `size of "${checkedPath}" must be a byte count (integer, 0 or more)`,
        "bad_request",
      );
    }
    if (size > maxFileBytes) {
      throw new HttpError(
        400,
        `"${checkedPath}" is ${size} bytes, over this server's limit of ${maxFileBytes}`,
        "bad_request",
      );
    }
    return { path: checkedPath, size };
  });
}
