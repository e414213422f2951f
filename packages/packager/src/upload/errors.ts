export type UploadErrorCode =
  /** An option is missing or malformed (content id, key server URL, token, concurrency, …). */
  | "INVALID_OPTIONS"
  /** The folder does not exist, is not a folder, or holds nothing to upload. */
  | "INVALID_FOLDER"
  /** A file the key server would accept by type has a name it would refuse (spaces, …). */
  | "INVALID_PATH"
  /** A playlist names a file that is not in the folder, or one that cannot be uploaded. */
  | "MISSING_REFERENCE"
  /** Playlists that name each other in a circle: no order uploads them safely. */
  | "PLAYLIST_CYCLE"
  /** A file is over {@link MAX_UPLOAD_FILE_BYTES}. */
  | "FILE_TOO_LARGE"
  /** The key server refused the token (HTTP 401). */
  | "UNAUTHORIZED"
  /** The token is valid but not a publisher's (HTTP 403). */
  | "FORBIDDEN"
  /** The key server has no publishing, or no storage for uploads (HTTP 404). */
  | "PUBLISHING_DISABLED"
  /** The key server refused the request (HTTP 400), e.g. a path; the reason says which. */
  | "REJECTED"
  /** The key server could not be reached or kept failing, after the retries. */
  | "KEY_SERVER_UNAVAILABLE"
  /** Some files did not upload; `failed` says which and why. */
  | "UPLOAD_FAILED"
  /** The caller's `signal` aborted the upload. */
  | "ABORTED";

/** A file that is not in storage after the run, and why. */
export interface UploadFailure {
  /** Relative to the folder, `/`-separated: the object's path under the content id. */
  path: string;
  reason: string;
}

/**
 * What a failed run did, complete: every file it was to upload is in exactly one of the three
 * lists. All three are empty when it was refused before sending anything (options, folder,
 * playlists naming missing files).
 */
export interface UploadOutcome {
  /** Files written by this run. */
  uploaded: string[];
  /** Files already in storage with the same bytes (same MD5 and size), not written again. */
  skipped: string[];
  /** Files not in storage (or left as they were): failed, blocked by a failure, or never tried. */
  failed: UploadFailure[];
}

/**
 * Every refusal or failure of {@link uploadStream}: a stable `code`, a message for a person, and
 * what did and did not upload. Messages and reasons never contain the token or a presigned URL's
 * query (its signature).
 */
export class UploadError extends Error implements UploadOutcome {
  readonly uploaded: string[];
  readonly skipped: string[];
  readonly failed: UploadFailure[];

  constructor(
    readonly code: UploadErrorCode,
    message: string,
    outcome: Partial<UploadOutcome> = {},
  ) {
    super(message);
    this.name = "UploadError";
    this.uploaded = outcome.uploaded ?? [];
    this.skipped = outcome.skipped ?? [];
    this.failed = outcome.failed ?? [];
  }
}
