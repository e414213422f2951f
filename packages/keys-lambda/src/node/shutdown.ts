import type { Server, ServerResponse } from "node:http";
import { EnvConfigError, type KeyServerEnv } from "./env.js";
import type { NodeRequestListener } from "./listener.js";

/**
 * How long requests in flight get to finish when the server stops, by default: under Docker's
 * default stop timeout (10 s, then SIGKILL), with time left to flush the audit and close the pool.
 */
export const DEFAULT_SHUTDOWN_GRACE_MILLIS = 8000;
/** The longest grace `SHUTDOWN_GRACE_SECONDS` accepts. */
export const MAX_SHUTDOWN_GRACE_SECONDS = 3600;

export interface CloseOptions {
  /**
   * How long requests in flight may take to finish before their connections are cut. Default
   * {@link DEFAULT_SHUTDOWN_GRACE_MILLIS}; 0 cuts them at once.
   */
  graceMillis?: number;
}

export interface CloseReport {
  /** Requests still unanswered at the deadline, whose connections were cut. */
  cutRequests: number;
}

/**
 * Stops an HTTP server the way an orchestrator expects: no new connections (the listening socket
 * closes, so connecting is refused), idle keep-alive connections closed at once, requests in
 * flight finished and their connections then closed (`Connection: close`), and whatever is still
 * running at the deadline cut.
 */
export interface GracefulStop {
  /** Wraps the server's request listener, to know the requests in flight. */
  track(listener: NodeRequestListener): NodeRequestListener;
  /** Stops the server; resolves once every connection is closed. */
  close(server: Server, options?: CloseOptions): Promise<CloseReport>;
}

export function createGracefulStop(): GracefulStop {
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  let server: Server | undefined;

  const closeIdleSoon = () => {
    // The connection of a finished response is idle once node:http has taken it back.
    setImmediate(() => server?.closeIdleConnections());
  };

  let closing: Promise<CloseReport> | undefined;

  return {
    track(listener) {
      return (req, res) => {
        inFlight.add(res);
        res.once("close", () => {
          inFlight.delete(res);
          if (draining) closeIdleSoon();
        });
        // Arrived on a kept-alive connection while stopping: answered, then that connection closes.
        if (draining) res.setHeader("connection", "close");
        listener(req, res);
      };
    },

    close(target, options = {}) {
      closing ??= new Promise<CloseReport>((resolve, reject) => {
        const grace = options.graceMillis ?? DEFAULT_SHUTDOWN_GRACE_MILLIS;
        if (!Number.isInteger(grace) || grace < 0 || grace > MAX_SHUTDOWN_GRACE_SECONDS * 1000) {
          reject(
            new TypeError(
              `graceMillis must be a whole number from 0 to ${MAX_SHUTDOWN_GRACE_SECONDS * 1000}`,
            ),
          );
          return;
        }
        server = target;
        draining = true;
        for (const res of inFlight) {
          // Without it node:http would keep the connection open after the answer, waiting for a
          // next request until its keep-alive timeout (5 s), and close would wait with it.
          if (!res.headersSent) res.setHeader("connection", "close");
        }
        let cutRequests = 0;
        const deadline = setTimeout(() => {
          cutRequests = inFlight.size;
          target.closeAllConnections();
        }, grace);
        // Stops listening and closes idle connections; calls back once no connection is left.
        target.close((error) => {
          clearTimeout(deadline);
          if (error && (error as NodeJS.ErrnoException).code !== "ERR_SERVER_NOT_RUNNING") reject(error);
          else resolve({ cutRequests });
        });
        // Responses already under way with keep-alive (headers sent): their connections go idle
        // when they end, and are closed then (see track).
      });
      return closing;
    },
  };
}

/** The server as the signal handler sees it (a `RunningKeyServer`). */
export interface StoppableServer {
  close(options?: CloseOptions): Promise<CloseReport>;
  server: Server;
}

export interface SignalStopOptions {
  /** How long requests in flight get (see {@link CloseOptions}). */
  graceMillis: number;
  /** Closes what the configuration opened (the lease store's pool), once the server is closed. */
  closeResources(): Promise<void>;
  /** Default: a line on stderr. */
  log?(message: string): void;
  /** Default `process.exit`. */
  exit?(code: number): void;
}

/** How long closing the lease store may take once the server is closed; its calls are bounded too. */
export const CLOSE_RESOURCES_TIMEOUT_MILLIS = 5000;

/**
 * On SIGTERM or SIGINT: stop the server gracefully, then close the lease store, then exit 0 (1 if
 * closing failed). A second signal cuts the requests still in flight at once. The process stays
 * PID 1-safe: node ignores SIGTERM as PID 1 unless someone handles it, and this does. Returns a
 * function that removes the handlers.
 */
export function stopOnSignals(running: StoppableServer, options: SignalStopOptions): () => void {
  const log = options.log ?? ((message: string) => process.stderr.write(`blindcast-keys: ${message}\n`));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log(`${signal} again: cutting the requests still in flight`);
      running.server.closeAllConnections();
      return;
    }
    stopping = true;
    log(`${signal}: stopping; requests in flight get up to ${options.graceMillis} ms`);
    running
      .close({ graceMillis: options.graceMillis })
      .then((report) => {
        if (report.cutRequests > 0) {
          log(`cut ${report.cutRequests} request(s) still in flight after ${options.graceMillis} ms`);
        }
        return withTimeout(
          options.closeResources(),
          CLOSE_RESOURCES_TIMEOUT_MILLIS,
          "closing the lease store",
        );
      })
      .then(
        () => {
          log("stopped");
          exit(0);
        },
        (error: unknown) => {
          log(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
          exit(1);
        },
      );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
}

function withTimeout<T>(promise: Promise<T>, millis: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took longer than ${millis} ms`)), millis);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** `SHUTDOWN_GRACE_SECONDS` (0 to 3600; default 8) in milliseconds. */
export function shutdownGraceFromEnv(env: KeyServerEnv): number {
  const raw = env.SHUTDOWN_GRACE_SECONDS?.trim();
  if (raw === undefined || raw === "") return DEFAULT_SHUTDOWN_GRACE_MILLIS;
  if (!/^[0-9]+$/.test(raw) || Number(raw) > MAX_SHUTDOWN_GRACE_SECONDS) {
    throw new EnvConfigError(
      `SHUTDOWN_GRACE_SECONDS must be an integer from 0 to ${MAX_SHUTDOWN_GRACE_SECONDS}`,
    );
  }
  return Number(raw) * 1000;
}
