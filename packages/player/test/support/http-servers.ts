import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { startKeyServer } from "@blindcast/keys/node";
import { MASTER_KEY, SALT } from "./key-server.js";

/** What one HTTP server on loopback saw: method, path and headers of every request. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
}

/**
 * Answers a request itself (returns true), or leaves it to the real key server: at once
 * (false), once `request` settles, or at once but with the answer held back until `answer`
 * settles. A fault the tests inject: a stalled body, an endless one, a redirect, a request or
 * answer delayed past another.
 */
export type Fault = (
  req: IncomingMessage,
  res: ServerResponse,
) => boolean | { request?: Promise<void>; answer?: Promise<void> };

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closer(server: Server) {
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

/**
 * The real key server (node:http adapter, memory lease store, viewer "viewer-1" for
 * "token-1") behind a front server on another port that lets `fault` answer first. The player
 * talks to the front: its `keysUrl`.
 */
export async function startFaultyKeyServer(fault: Fault, options: { maxConcurrentLeases?: number } = {}) {
  const keys = await startKeyServer({
    masterKey: MASTER_KEY,
    salt: SALT,
    corsOrigins: "*",
    authenticate: (event) =>
      event.headers?.authorization === "Bearer token-1"
        ? { ok: true, viewerId: "viewer-1" }
        : { ok: false, status: 401, reason: "Invalid token" },
    leaseStore: createMemoryLeaseStore(),
    ...(options.maxConcurrentLeases ? { maxConcurrentLeases: options.maxConcurrentLeases } : {}),
    leaseTtlSeconds: 30,
    port: 0,
    audit: false,
    logger: { warn() {}, error() {} },
  });
  const seen: SeenRequest[] = [];
  const front = createServer((req, res) => {
    seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    const verdict = fault(req, res);
    if (verdict === true) return;
    const hold = verdict === false ? {} : verdict;
    const forward = () => {
      const upstream = request(
        { host: "127.0.0.1", port: keys.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          void (hold.answer ?? Promise.resolve()).then(() => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          });
        },
      );
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    };
    if (hold.request) void hold.request.then(forward);
    else forward();
  });
  const origin = await listen(front);
  const closeFront = closer(front);
  return {
    keysUrl: `${origin}/keys`,
    origin,
    seen,
    close: async () => {
      await closeFront();
      await keys.close();
    },
  };
}

/** A server on another origin that records whatever reaches it and answers 200 to all. */
export async function startForeignServer() {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    req.resume();
    res.writeHead(200, {
      "access-control-allow-origin": "*",
      "access-control-allow-headers": "*",
      "access-control-allow-methods": "*",
      "content-type": "application/octet-stream",
    });
    res.end(new Uint8Array(16).fill(7));
  });
  return { origin: await listen(server), seen, close: closer(server) };
}

/**
 * Answers with headers and the start of a body, then sends nothing more, holding the socket
 * open: a server that stalls mid-body. Resolves `closed` when the client gives up.
 */
export function stallMidBody(res: ServerResponse, status: number, contentType: string, declared: number) {
  res.writeHead(status, { "content-type": contentType, "content-length": String(declared) });
  res.write(new Uint8Array(Math.floor(declared / 2)));
}

/**
 * Answers with a body that never ends, written as fast as the client reads it, and counts what
 * was written until the client closed the connection.
 */
export function endlessBody(res: ServerResponse, status: number, contentType: string) {
  const sent = { bytes: 0, closed: false };
  res.writeHead(status, { "content-type": contentType });
  const chunk = new Uint8Array(65_536).fill(0x41);
  const pump = () => {
    while (!sent.closed) {
      sent.bytes += chunk.length;
      if (!res.write(chunk)) return;
    }
  };
  res.on("drain", pump);
  res.on("close", () => {
    sent.closed = true;
  });
  pump();
  return sent;
}
