import { BlindcastPlayerError } from "./errors.js";

/**
 * Supplies the viewer's bearer token. Called when the player first needs it, and again with
 * `{ refresh: true }` after the key server answered 401; return `null` or `undefined` to send none.
 */
export type TokenProvider = (context: {
  refresh: boolean;
}) => string | null | undefined | Promise<string | null | undefined>;

/** Caches the token and shares one in-flight call between concurrent requests. */
export class TokenCache {
  private current: Promise<string | undefined> | undefined;

  constructor(private readonly provider: TokenProvider | undefined) {}

  get hasProvider(): boolean {
    return this.provider !== undefined;
  }

  get(): Promise<string | undefined> {
    this.current ??= this.call(false);
    return this.current;
  }

  /** Asks for a fresh token, unless a refresh is already under way (then shares it). */
  refresh(stale: Promise<string | undefined> | undefined): Promise<string | undefined> {
    if (this.current === stale || this.current === undefined) this.current = this.call(true);
    return this.current;
  }

  get pending(): Promise<string | undefined> | undefined {
    return this.current;
  }

  private async call(refresh: boolean): Promise<string | undefined> {
    if (!this.provider) return undefined;
    let token: string | null | undefined;
    try {
      token = await this.provider({ refresh });
    } catch (error) {
      this.current = undefined;
      throw new BlindcastPlayerError("AUTH_FAILED", "getToken failed", { cause: error });
    }
    if (token !== null && token !== undefined && typeof token !== "string") {
      this.current = undefined;
      throw new BlindcastPlayerError("AUTH_FAILED", "getToken must return a string, null or undefined");
    }
    return token ?? undefined;
  }
}
