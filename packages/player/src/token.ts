import { BlindcastPlayerError } from "./errors.js";

/**
 * Supplies the viewer's bearer token. Called when the player first needs it, and again with
 * `{ refresh: true }` after the key server answered 401; return `null` or `undefined` to send none.
 */
export type TokenProvider = (context: {
  refresh: boolean;
}) => string | null | undefined | Promise<string | null | undefined>;

export interface TokenCache {
  readonly hasProvider: boolean;
  get(): Promise<string | undefined>;
  /** Asks for a fresh token, unless a refresh after `stale` is already under way (then shares it). */
  refresh(stale: Promise<string | undefined>): Promise<string | undefined>;
}

/** Caches the token and shares one in-flight call between concurrent requests. */
export function createTokenCache(provider: TokenProvider | undefined): TokenCache {
  let current: Promise<string | undefined> | undefined;
  const call = async (refresh: boolean) => {
    if (!provider) return undefined;
    let token: string | null | undefined;
    try {
      token = await provider({ refresh });
    } catch (error) {
      current = undefined;
      throw new BlindcastPlayerError("AUTH_FAILED", "getToken failed", { cause: error });
    }
    if (token != null && typeof token !== "string") {
      current = undefined;
      throw new BlindcastPlayerError("AUTH_FAILED", "getToken must return a string or null");
    }
    return token ?? undefined;
  };
  return {
    hasProvider: provider !== undefined,
    get() {
      current ??= call(false);
      return current;
    },
    refresh(stale) {
      if (current === stale || current === undefined) current = call(true);
      return current;
    },
  };
}
