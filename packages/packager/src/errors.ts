export type PackagerErrorCode =
  | "INVALID_OPTIONS"
  | "INPUT_NOT_FOUND"
  | "INPUT_UNREADABLE"
  | "MALFORMED_PLAYLIST"
  | "UNSUPPORTED_INPUT"
  | "MISSING_SEGMENTS"
  | "ALREADY_ENCRYPTED"
  | "OUTPUT_NOT_EMPTY"
  | "OUTPUT_UNUSABLE"
  | "WOULD_OVERWRITE_INPUT"
  /** Another run is writing into the output folder (it holds the live lock). */
  | "OUTPUT_BUSY"
  /** watch: the live input had no new segment (and no EXT-X-ENDLIST) for the stall timeout. */
  | "INPUT_STALLED"
  /** The output's live state file is unreadable or not one the packager wrote. */
  | "LIVE_STATE_INVALID"
  /** The output's live state does not fit the input or the options (another stream, settings, restart). */
  | "LIVE_STATE_MISMATCH"
  /** The key server refused the token: 401 (missing, invalid, expired) or 403 (not a publisher). */
  | "KEY_SERVER_UNAUTHORIZED"
  /** The key server could not be reached or kept failing (network, timeout, 5xx, 429) after retries. */
  | "KEY_SERVER_UNAVAILABLE"
  /** The key server refused the request otherwise (404 publishing disabled, 400, a redirect). */
  | "KEY_SERVER_ERROR"
  /** The key server (or a `KeySource`) answered 2xx with something that is not the keys asked for. */
  | "KEY_SERVER_INVALID_RESPONSE";

/** What a key server said when it refused, for callers that branch on it. */
export interface KeyServerFailure {
  /** The HTTP status, when the server answered. */
  status?: number | undefined;
  /** The server's machine code (`publisher_required`, `publishing_disabled`, …), when it gave one. */
  serverCode?: string | undefined;
  /** The server's reason for a person, when it gave one (also in the message). */
  reason?: string | undefined;
}

/** Every refusal of the packager: a stable `code` and a message naming the file or server at fault. */
export class PackagerError extends Error {
  /** Set on `KEY_SERVER_*` errors with what the server answered. */
  readonly keyServer: KeyServerFailure | undefined;

  constructor(
    readonly code: PackagerErrorCode,
    message: string,
    options: { keyServer?: KeyServerFailure; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PackagerError";
    this.keyServer = options.keyServer;
  }
}

/** A name or URI as messages show it: cut short, so a runaway line cannot flood the terminal. */
export function shown(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
