// The upload signer behind POST /keys/publish/{contentId}/uploads, imported by ./routes.ts at the
// first upload request. It imports nothing from the rest of the server but constants and types,
// and answers a malformed request with a string saying why (the route refuses it with 400)
// rather than throwing the server's HttpError: a bundle may then give it a file of its own, even
// one holding its own copies of what it imports, without two copies of a class meeting.
import type { PublishConfig } from "./config.js";
import { MAX_FILES_PER_PRESIGN } from "./options.js";
import { uploadContentType, uploadPathProblem } from "./paths.js";
import { amzDate, presignUrl } from "./presign.js";
import type { PresignedUpload, PresignResponseBody } from "./routes.js";
import type { ResolvedStorage } from "./storage.js";

export interface SignedUploads {
  answer: PresignResponseBody;
  /** For the audit record: files signed, and the bytes they may write in all. */
  files: number;
  bytes: number;
}

/** Presigned uploads for the files `body` names, or why the request is refused. */
export async function signUploads(
  config: PublishConfig & { storage: ResolvedStorage },
  contentId: string,
  body: Record<string, unknown>,
): Promise<SignedUploads | string> {
  const files = checkedFiles(body.files, config.maxFileBytes);
  if (typeof files === "string") return files;
  if (body.head !== undefined && typeof body.head !== "boolean") return "head must be true or false";
  const now = new Date();
  const signedAt = amzDate(now);
  const uploads = await Promise.all(
    files.map(async ({ path, size }) =>
      presignedUpload(config.storage, contentId, path, size, config.ttl, signedAt, body.head === true),
    ),
  );
  return {
    answer: {
      contentId,
      expiresAt: new Date(Math.floor(now.getTime() / 1000) * 1000 + config.ttl * 1000).toISOString(),
      uploads,
    },
    files: files.length,
    bytes: files.reduce((sum, file) => sum + file.size, 0),
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

/** The files asked for, checked, or why they may not be signed. */
function checkedFiles(value: unknown, maxFileBytes: number): { path: string; size: number }[] | string {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_FILES_PER_PRESIGN) {
    return `files must be an array of 1 to ${MAX_FILES_PER_PRESIGN} { path, size } entries`;
  }
  const seen = new Set<string>();
  const files: { path: string; size: number }[] = [];
  for (const entry of value as unknown[]) {
    const { path, size } = (typeof entry === "object" && entry !== null ? entry : {}) as Record<
      string,
      unknown
    >;
    const problem = uploadPathProblem(path);
    if (problem !== undefined) return problem;
    const checkedPath = path as string;
    if (seen.has(checkedPath)) return `path "${checkedPath}" is listed twice`;
    seen.add(checkedPath);
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      return `size of "${checkedPath}" must be a byte count (integer, 0 or more)`;
    }
    if (size > maxFileBytes) {
      return `"${checkedPath}" is ${size} bytes, over this server's limit of ${maxFileBytes}`;
    }
    files.push({ path: checkedPath, size });
  }
  return files;
}
