// A loopback HTTP proxy in front of a storage server (moto) that records every request in the
// order it arrived and finished, counts requests in flight, and can answer for the storage
// instead: an error status, a dropped connection, or no answer at all. Point the key server's
// storage endpoint at it and the presigned URLs it hands out lead here.
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the proxy does with one request. */
export type ProxyAction =
  | "forward"
  /** Destroys the connection without an answer, as a network failure does. */
  | "drop"
  /** Reads the request and never answers: the client's timeout must end it. */
  | "hang"
  /** Forwards, after holding the request this long (a slow upload). */
  | { delayMs: number }
  | { status: number; headers?: Record<string, string>; body?: string };

export interface ProxiedRequest {
  method: string;
  /** The path, without the query (where presigned URLs carry their signature). */
  path: string;
  /** 1 for the first request with this method and path, 2 for the second, … */
  attempt: number;
}

export interface ProxyLogEntry extends ProxiedRequest {
  /** Sequence number when the request arrived. */
  started: number;
  /** Sequence number when its answer was complete (undefined: none was). */
  finished?: number;
  /** The status answered (0 for drop or hang). */
  status: number;
  /** The query string, kept so tests can check that it never leaks. */
  query: string;
  headers: IncomingMessage["headers"];
}

export interface StorageProxy {
  endpoint: string;
  log: ProxyLogEntry[];
  /** The most requests of each method in flight at once. */
  maxInFlight: Map<string, number>;
  /** Decides each request from now on (default: forward everything). */
  setRule(rule: (request: ProxiedRequest) => ProxyAction): void;
  /** Clears the log, the attempt counts and the in-flight maxima; forwards everything again. */
  reset(): void;
  close(): Promise<void>;
}

export async function startStorageProxy(target: string): Promise<StorageProxy> {
  const targetUrl = new URL(target);
  let rule: (request: ProxiedRequest) => ProxyAction = () => "forward";
  let sequence = 0;
  const attempts = new Map<string, number>();
  const inFlight = new Map<string, number>();
  const proxy: StorageProxy = {
    endpoint: "",
    log: [],
    maxInFlight: new Map(),
    setRule(next) {
      rule = next;
    },
    reset() {
      rule = () => "forward";
      proxy.log.length = 0;
      attempts.clear();
      proxy.maxInFlight.clear();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const sockets = new Set<Socket>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://proxy");
    const key = `${method} ${url.pathname}`;
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    const entry: ProxyLogEntry = {
      method,
      path: decodeURIComponent(url.pathname),
      attempt,
      started: ++sequence,
      status: 0,
      query: url.search,
      headers: req.headers,
    };
    proxy.log.push(entry);
    const now = (inFlight.get(method) ?? 0) + 1;
    inFlight.set(method, now);
    proxy.maxInFlight.set(method, Math.max(now, proxy.maxInFlight.get(method) ?? 0));
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      inFlight.set(method, (inFlight.get(method) ?? 1) - 1);
    };
    res.once("close", done);

    const action = rule({ method, path: entry.path, attempt });
    if (action === "drop") {
      req.resume();
      req.socket.destroy();
      done();
      return;
    }
    if (action === "hang") {
      req.resume();
      return;
    }
    if (typeof action === "object" && "delayMs" in action) {
      req.pause();
      setTimeout(() => forward(req, res, entry), action.delayMs);
      return;
    }
    if (action !== "forward") {
      req.resume();
      req.once("end", () => {
        res.writeHead(action.status, action.headers ?? {});
        res.end(action.body ?? "", () => {
          entry.status = action.status;
          entry.finished = ++sequence;
        });
      });
      return;
    }
    forward(req, res, entry);
  });

  function forward(req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry) {
    const upstream = request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: targetUrl.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.once("end", () => {
          entry.status = answer.statusCode ?? 502;
          entry.finished = ++sequence;
        });
      },
    );
    upstream.once("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  }

  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
