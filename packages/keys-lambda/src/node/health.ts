import type { IncomingMessage, ServerResponse } from "node:http";
import type { KeyServerLogger } from "../core/options.js";
import type { LeaseStore } from "../lease-store.js";
import type { NodeRequestListener } from "./listener.js";

/** Liveness: 200 while the process serves HTTP at all. */
export const LIVENESS_PATH = "/healthz";
/** Readiness: 200 when a key request could be answered now (the lease store answers), else 503. */
export const READINESS_PATH = "/readyz";
/**
 * How long a readiness probe waits for the lease store. A store's own bound (the Postgres store's
 * queryTimeoutMillis, 2000 ms by default) normally ends the wait first; this one covers stores of
 * your own that have none.
 */
export const DEFAULT_READINESS_TIMEOUT_MILLIS = 3000;

export interface HealthCheckOptions {
  /** The store `/readyz` pings; without one, the server is ready as soon as it listens. */
  leaseStore?: LeaseStore | undefined;
  /** Default {@link DEFAULT_READINESS_TIMEOUT_MILLIS}. */
  readinessTimeoutMillis?: number;
  /** Told when readiness changes, naming the error's kind only. Default `console`. */
  logger?: KeyServerLogger | undefined;
}

export interface HealthChecks {
  /** Answers the request and returns true when it is a health check; false for any other. */
  answer(req: IncomingMessage, res: ServerResponse): boolean;
  /** From now on `/readyz` answers 503: the server is stopping, send traffic elsewhere. */
  markStopping(): void;
}

/**
 * `/healthz` and `/readyz`, for orchestrators and load balancers. Answered before anything else
 * (no CORS, no authentication, no audit record): a probe every few seconds would otherwise fill the
 * audit trail, and a probe carries no token. They tell nothing secret: a status word.
 */
export function createHealthChecks(options: HealthCheckOptions = {}): HealthChecks {
  const { leaseStore } = options;
  const timeout = options.readinessTimeoutMillis ?? DEFAULT_READINESS_TIMEOUT_MILLIS;
  const logger = options.logger ?? console;
  let stopping = false;
  let lastReady = true;
  // One ping at a time, shared by probes that arrive meanwhile: a burst of probes (or a store
  // that hangs) never turns into a burst of queries.
  let pinging: Promise<string | undefined> | undefined;

  const ping = (): Promise<string | undefined> => {
    if (!leaseStore?.ping) return Promise.resolve(undefined);
    pinging ??= leaseStore.ping().then(
      () => undefined,
      (error: unknown) => errorKind(error),
    );
    const current = pinging;
    void current.finally(() => {
      if (pinging === current) pinging = undefined;
    });
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(`no answer within ${timeout} ms`), timeout);
      timer.unref();
      void current.then((failure) => {
        clearTimeout(timer);
        resolve(failure);
      });
    });
  };

  const readiness = async (): Promise<{ status: number; body: Record<string, string> }> => {
    if (stopping) return { status: 503, body: { status: "stopping" } };
    const failure = await ping();
    const ready = failure === undefined;
    if (ready !== lastReady) {
      lastReady = ready;
      if (ready) logger.warn("blindcast-keys: the lease store answers again: ready");
      else logger.error(`blindcast-keys: the lease store does not answer (${failure}): not ready`);
    }
    if (!ready)
      return { status: 503, body: { status: "not ready", reason: "the lease store does not answer" } };
    const store = !leaseStore ? "none" : leaseStore.ping ? "answers" : "not checked (the store has no ping)";
    return { status: 200, body: { status: "ready", leaseStore: store } };
  };

  return {
    answer(req, res) {
      const path = pathOf(req.url);
      if (path !== LIVENESS_PATH && path !== READINESS_PATH) return false;
      if (req.method !== "GET" && req.method !== "HEAD") {
        send(req, res, 405, { status: "method not allowed" }, { allow: "GET, HEAD" });
        return true;
      }
      if (path === LIVENESS_PATH) {
        send(req, res, 200, { status: "alive" });
        return true;
      }
      readiness().then(
        ({ status, body }) => send(req, res, status, body),
        () => send(req, res, 503, { status: "not ready" }),
      );
      return true;
    },
    markStopping() {
      stopping = true;
    },
  };
}

/** A request listener that answers health checks itself and hands every other request on. */
export function withHealthChecks(health: HealthChecks, next: NodeRequestListener): NodeRequestListener {
  return (req, res) => {
    if (!health.answer(req, res)) next(req, res);
  };
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return "";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: Record<string, string>,
  extra: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-store",
    ...extra,
  });
  res.end(req.method === "HEAD" ? undefined : text);
}

/** The error's kind (a class name or a system code), never its message: it may name hosts. */
function errorKind(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? `${error.name} ${code}` : error.name;
  }
  return typeof error;
}
