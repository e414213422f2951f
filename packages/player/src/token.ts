/**
 * Supplies the viewer's bearer token. Called when the player first needs it, and again with
 * `{ refresh: true }` after the key server answered 401; return `null` or `undefined` to send none.
 */
export type TokenProvider = (context: {
  refresh: boolean;
}) => string | null | undefined | Promise<string | null | undefined>;
