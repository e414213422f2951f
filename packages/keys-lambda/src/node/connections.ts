import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { KeyServerLogger } from "../core/options.js";

/** How often, at most, the cap being reached is logged. */
const CAP_WARNING_INTERVAL_MS = 60_000;

export interface ConnectionGuard {
  /**
   * Stops accepting, lets requests being answered finish (their connections then close) and
   * closes everything else at once; after `deadlineMs`, closes what is left.
   */
  shutdown(deadlineMs: number): Promise<void>;
}

/**
 * A connection's request being answered; undefined before its first request and once the answer
 * is written.
 */
type Latest = { req: IncomingMessage; res: ServerResponse } | undefined;

/**
 * Caps the open connections of `server` at `maxConnections` without locking new clients out.
 * node:http's own `maxConnections` refuses every new connection once the cap is held, which
 * hands the server to whoever opens connections and keeps them open (a slow client, or many);
 * so at the cap the connection that has gone longest without starting a request, and is not
 * being answered, is closed instead, and a fresh client is served at once. Nothing is added per
 * request but one map update: whether a connection is being answered is read when needed.
 */
export function guardConnections(
  server: Server,
  maxConnections: number,
  logger: KeyServerLogger,
): ConnectionGuard {
  // Insertion-ordered: a connection moves to the end each time a request starts on it.
  const connections = new Map<Socket, Latest>();
  let closing = false;
  let lastWarning = Number.NEGATIVE_INFINITY;

  server.on("connection", (socket: Socket) => {
    if (connections.size >= maxConnections && !evictOne()) {
      // Every connection is being answered: this one cannot be served now.
      socket.destroy();
      return;
    }
    connections.set(socket, undefined);
    socket.once("close", () => connections.delete(socket));
  });

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    // While closing, every answer says "Connection: close" and node:http closes it once written.
    if (closing) res.shouldKeepAlive = false;
    if (connections.delete(req.socket)) {
      connections.set(req.socket, { req, res });
      res.on("finish", answered);
    }
  });

  /**
   * Forgets an exchange once its answer is written. Held until the connection's next request
   * instead, every request and answer outlived a young-generation collection: on Node 24 that
   * promoted about 1 KB per request to the old generation (66 MB over 60,000 requests, against
   * 1.3 MB without the guard), and the old generation's collections cost more than the rest of
   * the key path (BENCHMARKS.md). A shared function, not a closure: nothing more per request.
   */
  function answered(this: ServerResponse): void {
    const socket = this.req.socket;
    // With pipelining the connection may already be on its next request: leave that one.
    if (socket && connections.get(socket)?.res === this) connections.set(socket, undefined);
  }

  /** Closes the first connection in order that is not being answered; false if there is none. */
  function evictOne(): boolean {
    warnCapReached();
    for (const [socket, latest] of connections) {
      if (isAnswering(latest)) continue;
      connections.delete(socket);
      socket.destroy();
      return true;
    }
    return false;
  }

  function warnCapReached(): void {
    const now = Date.now();
    if (now - lastWarning < CAP_WARNING_INTERVAL_MS) return;
    lastWarning = now;
    logger.warn(
      `${maxConnections} connections open (maxConnections): closing those that have waited longest ` +
        "for a complete request to make room; raise maxConnections (MAX_CONNECTIONS) if this is normal traffic",
    );
  }

  return {
    shutdown(deadlineMs) {
      closing = true;
      return new Promise<void>((resolve) => {
        const deadline = setTimeout(() => {
          for (const socket of connections.keys()) socket.destroy();
          server.closeAllConnections();
        }, deadlineMs);
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        for (const [socket, latest] of connections) {
          if (!isInFlight(latest)) socket.destroy();
          // The answer tells the client the connection closes, and node:http closes it once written.
          else if (!latest.res.headersSent) latest.res.shouldKeepAlive = false;
          else latest.res.once("close", () => socket.end());
        }
      });
    },
  };
}

/**
 * At shutdown, a request whose headers have arrived is in flight, its body perhaps still coming
 * (a lease create): it gets until the deadline. Connections with no request started close at once.
 */
function isInFlight(latest: Latest): latest is NonNullable<Latest> {
  return latest !== undefined && !latest.res.writableFinished && !latest.res.destroyed;
}

/** A complete request awaits its answer: closing the connection would lose that answer. */
function isAnswering(latest: Latest): latest is NonNullable<Latest> {
  if (latest === undefined) return false;
  return latest.req.complete && !latest.res.writableFinished && !latest.res.destroyed;
}
