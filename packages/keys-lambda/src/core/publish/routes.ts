import { base64 } from "../base64.js";
import type { KeySource } from "../key-cache.js";
import { checkedKeyList } from "../key-list.js";
import { HttpError, jsonResponse, type KeyServerResponse } from "../response.js";
import type { PublishConfig } from "./config.js";
import { MAX_KEYS_PER_PUBLISH_REQUEST } from "./options.js";

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
 * The upload signer (./uploads.ts: the file checks and SigV4 presigning with aws4fetch, about
 * 9 KB minified), imported at the first upload request rather than with this module: a server
 * without publishing, or without storage, never loads it, and a bundle may keep it out of the
 * file every cold start reads (scripts/build-lambda.mjs does). Kept once loaded; a failed import
 * is tried again at the next upload request (that one answers 500).
 */
let uploadSigner: Promise<typeof import("./uploads.js")> | undefined;
function loadUploadSigner(): Promise<typeof import("./uploads.js")> {
  uploadSigner ??= import("./uploads.js").catch((error: unknown) => {
    uploadSigner = undefined;
    throw error;
  });
  return uploadSigner;
}

/** The publisher routes, on options checked at start (`resolvePublishConfig`). */
export function createPublishRoutes(config: PublishConfig, deriver: KeySource): PublishRoutes {
  const { storage } = config;

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
      const { signUploads } = await loadUploadSigner();
      const signed = await signUploads({ ...config, storage }, contentId, body);
      // The signer answers a malformed request with why, for the route to refuse it.
      if (typeof signed === "string") throw new HttpError(400, signed, "bad_request");
      return [jsonResponse(200, signed.answer), { files: signed.files, bytes: signed.bytes }];
    },
  };
}
