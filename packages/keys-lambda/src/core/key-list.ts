import { HttpError } from "./response.js";

/**
 * A list of keys asked for, as the lease and publisher routes take it: epochs (integers 0 to
 * 4294967295) or `"content"` for the content key (`null` in the result), duplicates dropped.
 */
export function checkedKeyList(value: unknown, max: number, required: boolean): (number | null)[] {
  if (value === undefined && !required) return [];
  if (!Array.isArray(value) || value.length > max || (required && value.length === 0)) {
    throw new HttpError(
      400,
      required
        ? `keys must be an array of 1 to ${max} epochs (or "content")`
        : `keys must be an array of at most ${max} epochs (or "content")`,
      "bad_request",
    );
  }
  const keys = value.map((entry): number | null => {
    if (entry === "content") return null;
    if (typeof entry === "number" && Number.isInteger(entry) && entry >= 0 && entry <= 4294967295)
      return entry;
    throw new HttpError(
      400,
      'keys entries must be epochs (integers 0 to 4294967295) or "content"',
      "bad_request",
    );
  });
  return [...new Set(keys)];
}
