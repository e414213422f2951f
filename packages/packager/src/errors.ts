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

/** A name or URI as messages show it: cut short, so a runaway line cannot flood the terminal. */
export function shown(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
