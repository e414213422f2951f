import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { contentIdProblem } from "@blindcast/crypto";
import { BEARER_TOKEN, resolveKeysUrl } from "../key-server-url.js";
import { UploadError, type UploadErrorCode } from "./errors.js";
import { type IgnoredFile, listFolder, listSome } from "./files.js";
import {
  Aborted,
  answerReason,
  bareUrl,
  exchange,
  type FetchFunction,
  type RetryNotice,
  type RetrySettings,
  redact,
  retryAfterMs,
  retryableStatus,
  withRetries,
} from "./http.js";
import { type PlannedFile, planUpload } from "./plan.js";
import {
  createPresignClient,
  MAX_PRESIGN_BATCH,
  type PresignClient,
  PresignError,
  type Presigned,
} from "./presign.js";

export interface UploadOptions {
  /** The packaged folder (what `packageHls` wrote). Its files keep their relative paths. */
  dir: string;
  /** Objects are stored under this id (the key server adds its prefix): `{prefix}/{contentId}/{path}`. */
  contentId: string;
  /**
   * The key server: the player's `keyServerUrl` (ending in `/keys`), or the server's base URL, to
   * which `/keys` is added. `https:`, or `http:` to this machine only (the token is sent there).
   */
  keyServerUrl: string;
  /** A publisher's bearer token. Never printed. */
  token: string;
  /** Files uploading at once (1 to 64; default 4). Each holds its file in memory. */
  concurrency?: number;
  /** Further attempts of a request after a network error, timeout, 5xx, 429 or 408 (0 to 20; default 5). */
  retries?: number;
  /** The first backoff in ms, doubled per attempt up to 30 s, with jitter (default 500). */
  retryDelayMs?: number;
  /** Longest wait for one request, body included, in ms (default 120000). */
  timeoutMs?: number;
  /** Files per presign request (1 to 1000; default 100): URLs are asked for just before use. */
  batchSize?: number;
  /**
   * Skip files already in storage with the same bytes (default true): asks for HEAD URLs too and
   * compares the object's ETag and size with the local file's MD5 and size.
   */
  resume?: boolean;
  /** Aborts the upload: nothing new starts, requests in flight are cancelled, UploadError ABORTED. */
  signal?: AbortSignal;
  /** After each file is settled (uploaded, skipped or failed). Errors thrown here are ignored. */
  onProgress?: (progress: UploadProgress) => void;
  /** Before each retry's wait. Errors thrown here are ignored. */
  onRetry?: (retry: UploadRetry) => void;
  /** The fetch to use (default: the global one); for proxies, instrumentation and tests. */
  fetch?: typeof globalThis.fetch;
}

export interface UploadProgress {
  /** The file just settled. */
  path: string;
  outcome: "uploaded" | "skipped" | "failed";
  filesUploaded: number;
  filesSkipped: number;
  filesFailed: number;
  filesTotal: number;
  bytesUploaded: number;
  bytesSkipped: number;
  bytesTotal: number;
}

export interface UploadRetry {
  /** The file, or undefined for a request of upload URLs. */
  path: string | undefined;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** Why, without URLs' queries or the token. */
  reason: string;
  delayMs: number;
}

export interface UploadResult {
  contentId: string;
  /** Files written, in the order they finished. */
  uploaded: string[];
  /** Files already in storage with the same bytes. */
  skipped: string[];
  /** Files of the folder not sent: hidden, or not a type the key server accepts. */
  ignored: IgnoredFile[];
  /** Playlists no other playlist names (the multivariant playlist): where a player starts. */
  entryPlaylists: string[];
  bytesUploaded: number;
  bytesSkipped: number;
}

/** Bounds an S3 error answer read for its Code and Message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

class FileFailure extends Error {}

/**
 * Uploads a packaged HLS folder to the key server's storage through presigned URLs: first every
 * file that is not a playlist, then each playlist once every file it names is in storage (media
 * playlists, then the multivariant playlist), so a player never finds a playlist naming a
 * missing file. A playlist naming a file that failed is not uploaded. Resolves only when every
 * file is in storage; otherwise rejects with an {@link UploadError} listing what did and did not
 * upload.
 */
export async function uploadStream(options: UploadOptions): Promise<UploadResult> {
  const settings = resolveOptions(options);
  const { signal, token } = settings;
  const listing = await listFolder(options.dir);
  const plan = await planUpload(listing);
  const files = plan.levels.flat();

  const status = new Map<string, "uploaded" | "skipped">();
  const failures = new Map<string, string>();
  const uploaded: string[] = [];
  const skipped: string[] = [];
  const counts = { bytesUploaded: 0, bytesSkipped: 0 };
  const bytesTotal = files.reduce((sum, f) => sum + f.size, 0);
  let blocked = 0;
  let fatal: { code: UploadErrorCode; message: string } | undefined;

  const report = (file: PlannedFile, outcome: UploadProgress["outcome"]) => {
    try {
      settings.onProgress?.({
        path: file.path,
        outcome,
        filesUploaded: uploaded.length,
        filesSkipped: skipped.length,
        filesFailed: failures.size,
        filesTotal: files.length,
        ...counts,
        bytesTotal,
      });
    } catch {
      // A caller's progress callback does not decide the upload's outcome.
    }
  };
  const fail = (file: PlannedFile, reason: string) => {
    failures.set(file.path, redact(reason, token));
    report(file, "failed");
  };
  const onRetry = (path: string | undefined) => (notice: RetryNotice) =>
    settings.onRetry?.({ path, ...notice, reason: redact(notice.reason, token) });

  const client = createPresignClient({
    endpoint: `${settings.keysUrl}/publish/${encodeURIComponent(options.contentId)}/uploads`,
    token,
    head: settings.resume,
    fetch: settings.fetch,
    retry: settings.retry,
    signal,
    onRetry: onRetry(undefined),
  });
  const urls = new UrlPool(client, settings.batchSize);

  for (const level of plan.levels) {
    const queue: PlannedFile[] = [];
    for (const file of level) {
      const missing = file.dependsOn.find((dep) => !status.has(dep));
      if (missing === undefined) queue.push(file);
      else {
        blocked++;
        fail(file, `not uploaded: it names ${missing}, which did not upload`);
      }
    }
    let next = 0;
    const worker = async () => {
      while (!fatal && !signal?.aborted && next < queue.length) {
        const file = queue[next++] as PlannedFile;
        try {
          const outcome = await sendFile(
            file,
            settings,
            urls,
            () => queue.slice(next, next + settings.batchSize),
            onRetry(file.path),
          );
          status.set(file.path, outcome);
          if (outcome === "uploaded") {
            uploaded.push(file.path);
            counts.bytesUploaded += file.size;
          } else {
            skipped.push(file.path);
            counts.bytesSkipped += file.size;
          }
          report(file, outcome);
        } catch (error) {
          if (error instanceof FileFailure) fail(file, error.message);
          else if (error instanceof Aborted) fail(file, "aborted while uploading");
          else if (error instanceof PresignError) {
            fatal ??= { code: error.code, message: redact(error.message, token) };
            fail(file, error.message);
          } else {
            // Not expected; still reported as this file's failure so the outcome stays complete.
            const message = `unexpected error: ${(error as Error)?.message ?? String(error)}`;
            fatal ??= { code: "UPLOAD_FAILED", message: redact(message, token) };
            fail(file, message);
          }
        } finally {
          urls.forget(file.path);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(settings.concurrency, queue.length) }, worker));
    if (fatal || signal?.aborted) break;
  }

  const stopped = signal?.aborted ? "the upload was aborted" : fatal?.message;
  for (const file of files) {
    if (!status.has(file.path) && !failures.has(file.path)) {
      failures.set(file.path, `not attempted: ${stopped ?? "stopped"}`);
    }
  }
  if (failures.size === 0) {
    return {
      contentId: options.contentId,
      uploaded,
      skipped,
      ignored: listing.ignored,
      entryPlaylists: plan.entryPlaylists,
      ...counts,
    };
  }
  const outcome = {
    uploaded,
    skipped,
    failed: files
      .filter((f) => failures.has(f.path))
      .map((f) => ({ path: f.path, reason: failures.get(f.path) ?? "" })),
  };
  if (signal?.aborted) {
    throw new UploadError(
      "ABORTED",
      `the upload was aborted: ${summary(outcome.failed.length, files.length, uploaded, skipped)}`,
      outcome,
    );
  }
  if (fatal) {
    throw new UploadError(
      fatal.code,
      `${fatal.message}; ${summary(outcome.failed.length, files.length, uploaded, skipped)}`,
      outcome,
    );
  }
  const direct = outcome.failed.filter((f) => !f.reason.startsWith("not uploaded: it names"));
  throw new UploadError(
    "UPLOAD_FAILED",
    `${summary(outcome.failed.length, files.length, uploaded, skipped)}: ${listSome(
      direct.map((f) => `${f.path}: ${f.reason}`),
      3,
    )}${blocked > 0 ? `; ${blocked} playlist(s) naming them held back` : ""}`,
    outcome,
  );
}

function summary(failed: number, total: number, uploaded: string[], skipped: string[]): string {
  return `${failed} of ${total} files not uploaded (${uploaded.length} uploaded, ${skipped.length} already there)`;
}

/**
 * One file: read, skipped if storage already has the same bytes, else PUT with retries. A 403 on
 * the PUT is answered once by asking for a fresh URL (the usual cause is an expired one: a long
 * upload, a paused machine, a skewed clock); a second 403 fails the file.
 */
async function sendFile(
  file: PlannedFile,
  settings: Settings,
  urls: UrlPool,
  upcoming: () => PlannedFile[],
  onRetry: (notice: RetryNotice) => void,
): Promise<"uploaded" | "skipped"> {
  // URLs first: the first worker of a level asks for a whole batch before any other worker
  // runs, and the others find their files in it.
  let presigned = await urls.get(file, upcoming);
  let data: Buffer;
  try {
    data = await readFile(file.absolute);
  } catch {
    throw new FileFailure("cannot read the file");
  }
  if (data.length !== file.size) {
    throw new FileFailure(`changed while uploading (${file.size} bytes when listed, ${data.length} now)`);
  }
  if (settings.resume && presigned.head && (await sameInStorage(presigned.head, data, settings)))
    return "skipped";

  let renewed = false;
  for (;;) {
    const signedLength = Object.entries(presigned.headers).find(
      ([name]) => name.toLowerCase() === "content-length",
    )?.[1];
    if (signedLength !== undefined && signedLength !== String(data.length)) {
      throw new FileFailure(`the key server signed ${signedLength} bytes for this ${data.length}-byte file`);
    }
    let expired = false;
    const result = await withRetries(
      settings.retry,
      settings.signal,
      async () => {
        // A retry after a long backoff may outlive the URL: ask for a fresh one first.
        if (Date.now() >= presigned.renewAfter) presigned = await urls.renew(file);
        const answer = await exchange(
          settings.fetch,
          presigned.url,
          { method: "PUT", headers: presigned.headers, body: data },
          settings.retry.timeoutMs,
          MAX_ERROR_BODY_BYTES,
          settings.signal,
        );
        if (answer.status >= 200 && answer.status < 300) return { ok: true as const, value: undefined };
        const reason = `storage answered ${answerReason(answer)}`;
        if (answer.status >= 300 && answer.status < 400) {
          return { ok: false as const, retry: false, reason: `${reason} (a redirect, not followed)` };
        }
        if (answer.status === 403 && !renewed) expired = true;
        return {
          ok: false as const,
          retry: retryableStatus(answer.status),
          reason,
          status: answer.status,
          retryAfterMs: retryAfterMs(answer.headers),
        };
      },
      onRetry,
    );
    if (result.ok) return "uploaded";
    if (expired) {
      renewed = true;
      presigned = await urls.renew(file);
      continue;
    }
    throw new FileFailure(`${result.reason} (PUT ${bareUrl(presigned.url)})`);
  }
}

/**
 * Whether storage holds these bytes already: the object's ETag (the MD5 of a single PUT on S3,
 * R2, MinIO and moto) and size match. Any doubt (no object, no answer, a multipart ETag) is a no:
 * the file is uploaded.
 */
async function sameInStorage(headUrl: string, data: Buffer, settings: Settings): Promise<boolean> {
  const md5 = createHash("md5").update(data).digest("hex");
  const result = await withRetries(settings.retry, settings.signal, async () => {
    const answer = await exchange(
      settings.fetch,
      headUrl,
      { method: "HEAD" },
      settings.retry.timeoutMs,
      0,
      settings.signal,
    );
    if (retryableStatus(answer.status)) {
      return {
        ok: false as const,
        retry: true,
        reason: `HTTP ${answer.status}`,
        retryAfterMs: retryAfterMs(answer.headers),
      };
    }
    const etag = answer.headers.get("etag")?.replace(/^W\//, "").replace(/"/g, "").toLowerCase();
    const length = answer.headers.get("content-length");
    return {
      ok: true as const,
      value: answer.status === 200 && etag === md5 && length === String(data.length),
    };
  });
  return result.ok && result.value;
}

/**
 * Presigned URLs, asked for just in time: when a file needs one, the file and the next ones of
 * its level's queue that have none (up to the batch size) are presigned in one request. A file
 * whose URL is already being asked for waits for that request.
 */
class UrlPool {
  private readonly cache = new Map<string, Presigned>();
  private readonly pending = new Map<string, Promise<Map<string, Presigned>>>();

  constructor(
    private readonly client: PresignClient,
    private readonly batchSize: number,
  ) {}

  async get(file: PlannedFile, upcoming: () => PlannedFile[]): Promise<Presigned> {
    const cached = this.cache.get(file.path);
    if (cached && Date.now() < cached.renewAfter) return cached;
    const pending = this.pending.get(file.path);
    if (pending) {
      const found = (await pending).get(file.path);
      if (found && Date.now() < found.renewAfter) return found;
    }
    const batch = [file];
    for (const other of upcoming()) {
      if (batch.length >= this.batchSize) break;
      const known = this.cache.get(other.path);
      if (this.pending.has(other.path) || (known && Date.now() < known.renewAfter)) continue;
      batch.push(other);
    }
    return this.request(file, batch);
  }

  renew(file: PlannedFile): Promise<Presigned> {
    this.cache.delete(file.path);
    return this.request(file, [file]);
  }

  forget(path: string): void {
    this.cache.delete(path);
  }

  private async request(file: PlannedFile, batch: PlannedFile[]): Promise<Presigned> {
    const promise = this.client.presign(batch);
    for (const f of batch) this.pending.set(f.path, promise);
    try {
      const answered = await promise;
      for (const [path, presigned] of answered) this.cache.set(path, presigned);
      const mine = answered.get(file.path);
      if (!mine)
        throw new PresignError(
          "KEY_SERVER_UNAVAILABLE",
          `the key server gave no upload URL for ${file.path}`,
        );
      return mine;
    } finally {
      for (const f of batch) if (this.pending.get(f.path) === promise) this.pending.delete(f.path);
    }
  }
}

interface Settings {
  keysUrl: string;
  token: string;
  concurrency: number;
  batchSize: number;
  resume: boolean;
  retry: RetrySettings;
  signal: AbortSignal | undefined;
  fetch: FetchFunction;
  onProgress: UploadOptions["onProgress"];
  onRetry: UploadOptions["onRetry"];
}

function resolveOptions(options: UploadOptions): Settings {
  const invalid = (message: string) => new UploadError("INVALID_OPTIONS", message);
  if (!options || typeof options !== "object")
    throw invalid("options are required: { dir, contentId, keyServerUrl, token }");
  if (typeof options.dir !== "string" || options.dir === "")
    throw invalid("dir must be the packaged folder's path");
  const idProblem = contentIdProblem(options.contentId);
  if (idProblem) throw invalid(idProblem);
  if (typeof options.token !== "string" || !BEARER_TOKEN.test(options.token)) {
    throw invalid(
      "token must be a publisher's bearer token (RFC 6750 characters: A-Z a-z 0-9 - . _ ~ + /, then =)",
    );
  }
  const integer = (
    name: string,
    value: number | undefined,
    fallback: number,
    min: number,
    max: number,
  ): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max)
      throw invalid(`${name} must be an integer from ${min} to ${max}`);
    return value;
  };
  if (options.resume !== undefined && typeof options.resume !== "boolean")
    throw invalid("resume must be a boolean");
  if (options.fetch !== undefined && typeof options.fetch !== "function")
    throw invalid("fetch must be a function");
  return {
    keysUrl: keysUrl(options.keyServerUrl),
    token: options.token,
    concurrency: integer("concurrency", options.concurrency, 4, 1, 64),
    batchSize: integer("batchSize", options.batchSize, 100, 1, MAX_PRESIGN_BATCH),
    resume: options.resume !== false,
    retry: {
      retries: integer("retries", options.retries, 5, 0, 20),
      retryDelayMs: integer("retryDelayMs", options.retryDelayMs, 500, 0, 60_000),
      timeoutMs: integer("timeoutMs", options.timeoutMs, 120_000, 1, 3_600_000),
    },
    signal: options.signal,
    fetch: options.fetch ?? globalThis.fetch,
    onProgress: options.onProgress,
    onRetry: options.onRetry,
  };
}

/** The key routes' URL: https, or http to this machine (see resolveKeysUrl). */
function keysUrl(value: unknown): string {
  const resolved = resolveKeysUrl(value);
  if ("problem" in resolved) throw new UploadError("INVALID_OPTIONS", resolved.problem);
  return resolved.url;
}
