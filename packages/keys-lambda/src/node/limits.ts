import { readFileSync } from "node:fs";
import { KeyServerConfigError } from "../core/options.js";

/**
 * How long node:http waits for each part of a request, how many connections it keeps open, and
 * how long `close()` waits. A key server's requests are tiny (no body, or a JSON body of at most
 * 4 KiB), so the defaults are seconds, not node:http's five minutes: a client that trickles its
 * request a byte at a time holds a socket for at most `requestTimeoutMs`.
 */
export interface NodeServerLimits {
  /** The request's headers must have arrived within this many ms of its start. Default 5000. */
  headersTimeoutMs?: number;
  /**
   * The whole request, headers and body, must have arrived within this many ms of its start
   * (node:http's `headersTimeout` alone does not cover the body). Default 10000.
   */
  requestTimeoutMs?: number;
  /** A kept-alive connection with no request is closed after about this many ms. Default 5000. */
  keepAliveTimeoutMs?: number;
  /**
   * At most this many open connections. When a new one arrives at the cap, the connection that
   * has waited longest without completing a request (a slow client, or an idle keep-alive one)
   * is closed to make room; a connection whose request is being answered is never closed for
   * it. Only when every connection is being answered is the new one closed. Default: 1024, or
   * three quarters of the process's open-file limit where that is lower (read on Linux).
   */
  maxConnections?: number;
  /**
   * `close()` lets requests already being answered finish for up to this many ms, then closes
   * every connection that is left. Default 5000.
   */
  shutdownTimeoutMs?: number;
}

export type ResolvedServerLimits = Required<NodeServerLimits>;

export const DEFAULT_HEADERS_TIMEOUT_MS = 5_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;
/** The connection cap where the open-file limit allows it. */
export const MAX_DEFAULT_CONNECTIONS = 1024;

/** Bounds on each limit: below them a normal client could not finish, above them nothing is bounded. */
export const SERVER_LIMIT_RANGES = {
  headersTimeoutMs: [100, 600_000],
  requestTimeoutMs: [100, 600_000],
  keepAliveTimeoutMs: [100, 600_000],
  maxConnections: [1, 1_000_000],
  shutdownTimeoutMs: [0, 600_000],
} as const satisfies Record<keyof NodeServerLimits, readonly [number, number]>;

/** The limits with defaults filled in; a value out of range is a `KeyServerConfigError`. */
export function resolveServerLimits(options: NodeServerLimits): ResolvedServerLimits {
  const limits: ResolvedServerLimits = {
    headersTimeoutMs: options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    maxConnections: options.maxConnections ?? defaultMaxConnections(),
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
  };
  for (const [name, [min, max]] of Object.entries(SERVER_LIMIT_RANGES)) {
    const value = limits[name as keyof NodeServerLimits];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new KeyServerConfigError(`${name} must be an integer from ${min} to ${max}`);
    }
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new KeyServerConfigError("headersTimeoutMs must not be more than requestTimeoutMs");
  }
  return limits;
}

/**
 * node:http checks its header and request timeouts on a timer (every 30 s unless told), so a
 * timeout would fire up to that much late: check about four times per header timeout instead.
 * The check walks the open connections, a few microseconds each.
 */
export function connectionsCheckingInterval(limits: ResolvedServerLimits): number {
  return Math.min(1000, Math.max(25, Math.floor(limits.headersTimeoutMs / 4)));
}

/**
 * A cap above the open-file limit caps nothing: accepting fails first (EMFILE) and nobody is
 * served. Node raises its soft limit to the hard one at start-up; what is left after that is
 * read here, and a quarter of it left for everything else (database, files, stdio).
 */
function defaultMaxConnections(): number {
  const limit = openFileLimit();
  if (limit === undefined) return MAX_DEFAULT_CONNECTIONS;
  return Math.max(1, Math.min(MAX_DEFAULT_CONNECTIONS, Math.floor(limit * 0.75)));
}

function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return line?.[1] === undefined ? undefined : Number(line[1]);
  } catch {
    // Not Linux (or no /proc): the fixed default.
    return undefined;
  }
}
