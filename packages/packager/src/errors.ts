export type PackagerErrorCode =
  | "INVALID_OPTIONS"
  | "INPUT_NOT_FOUND"
  | "MALFORMED_PLAYLIST"
  | "UNSUPPORTED_INPUT"
  | "MISSING_SEGMENTS"
  | "ALREADY_ENCRYPTED"
  | "OUTPUT_NOT_EMPTY"
  | "WOULD_OVERWRITE_INPUT";

/** Every refusal of the packager: a stable `code` and a message naming the file at fault. */
export class PackagerError extends Error {
  constructor(
    readonly code: PackagerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "PackagerError";
  }
}
