import { type ChildProcessByStdio, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import type { Readable } from "node:stream";
import type { AuditRecord } from "@blindcast/keys";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, startCluster } from "../../../scripts/pg-cluster.mjs";
import { MASTER_KEY_HEX, SALT_HEX } from "./support/fixtures.js";

// The blindcast-keys CLI as a real process, stopped by a real SIGTERM, with requests in flight on
// real sockets. A request is held in flight by the client: it sends its headers with
// `Expect: 100-continue`, and node:http answers "100 Continue" only once the request has reached
// the server's handler, which then waits for the body the client has not sent yet.

const cli = new URL("../dist/node/cli.js", import.meta.url).pathname;
const env = { MASTER_KEY: MASTER_KEY_HEX, SALT: SALT_HEX, CORS_ORIGINS: "*", PORT: "0" };
const BODY = '{"contentId":"movie-42"}';

interface Cli {
  child: ChildProcessByStdio<null, Readable, Readable>;
  port: number;
  stderr(): string;
  stdout(): string;
  /** Resolves when stderr has printed a line matching `pattern`. */
  waitForStderr(pattern: RegExp): Promise<void>;
  exited: Promise<number | null>;
}

async function startCli(vars: Record<string, string>): Promise<Cli> {
  const child = spawn(process.execPath, [cli], {
    env: { PATH: process.env.PATH ?? "", ...env, ...vars },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    for (const waiter of waiters.splice(0)) {
      if (waiter.pattern.test(stderr)) waiter.resolve();
      else waiters.push(waiter);
    }
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const waitForStderr = (pattern: RegExp) =>
    pattern.test(stderr)
      ? Promise.resolve()
      : Promise.race([
          new Promise<void>((resolve) => waiters.push({ pattern, resolve })),
          exited.then((code) => {
            throw new Error(`exited ${code} before printing ${pattern}: ${stderr}`);
          }),
        ]);
  await waitForStderr(/listening on http:\/\/\S+:(\d+)\/keys/);
  const port = Number(/listening on http:\/\/\S+:(\d+)\/keys/.exec(stderr)?.[1]);
  return { child, port, stderr: () => stderr, stdout: () => stdout, waitForStderr, exited };
}

/** A raw HTTP/1.1 connection, to hold a request half sent and read the answer as it comes. */
async function rawConnection(port: number) {
  const socket: Socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  let received = "";
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const closed = once(socket, "close").then(() => received);
  socket.setEncoding("utf8").on("data", (chunk: string) => {
    received += chunk;
    for (const waiter of waiters.splice(0)) {
      if (waiter.pattern.test(received)) waiter.resolve();
      else waiters.push(waiter);
    }
  });
  socket.on("error", () => {});
  return {
    socket,
    received: () => received,
    /** Resolves when the bytes received so far match; rejects if the connection closes first. */
    waitFor: (pattern: RegExp) =>
      pattern.test(received)
        ? Promise.resolve()
        : Promise.race([
            new Promise<void>((resolve) => waiters.push({ pattern, resolve })),
            closed.then(() => {
              throw new Error(`connection closed before ${pattern}: ${JSON.stringify(received)}`);
            }),
          ]),
    /** Resolves with everything received once the server closes the connection. */
    closed,
  };
}

/** Sends a lease request's headers and waits until the server's handler holds it. */
async function holdLeaseRequest(port: number) {
  const connection = await rawConnection(port);
  connection.socket.write(
    "POST /keys/leases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
      `Content-Length: ${BODY.length}\r\nExpect: 100-continue\r\n\r\n`,
  );
  await connection.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
  return connection;
}

function connectionRefused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function auditLines(stdout: string): AuditRecord[] {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as AuditRecord);
}

describe("blindcast-keys on SIGTERM", () => {
  it("refuses new connections, finishes the request in flight, flushes its audit line, exits 0", async () => {
    const server = await startCli({ SHUTDOWN_TIMEOUT_MS: "60000" });
    // An idle kept-alive connection must not hold the stop up.
    const idle = await rawConnection(server.port);
    idle.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await idle.waitFor(/"status":"alive"/);

    const held = await holdLeaseRequest(server.port);
    server.child.kill("SIGTERM");
    expect(await idle.closed).toContain('"status":"alive"');
    await expect.poll(() => connectionRefused(server.port), { timeout: 5000 }).toBe("ECONNREFUSED");
    // Still running: the held request is not answered yet.
    expect(server.child.exitCode).toBeNull();

    held.socket.write(BODY);
    const answer = await held.closed;
    expect(answer).toMatch(/HTTP\/1\.1 201 Created\r\n/);
    // Answered with Connection: close, so the client does not send another request on it.
    expect(answer.toLowerCase()).toContain("connection: close");
    expect(answer).toContain('"contentId":"movie-42"');

    expect(await server.exited).toBe(0);
    const records = auditLines(server.stdout());
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ route: "lease_create", status: 201, contentId: "movie-42" });
  });

  it("cuts a request still in flight at SHUTDOWN_TIMEOUT_MS, and still exits 0", async () => {
    const server = await startCli({ SHUTDOWN_TIMEOUT_MS: "1000" });
    const held = await holdLeaseRequest(server.port);
    server.child.kill("SIGTERM");
    // The body never comes: the server closes the connection without an answer.
    expect(await held.closed).toBe("HTTP/1.1 100 Continue\r\n\r\n");
    expect(await server.exited).toBe(0);
  });

  it("stops at once on a second signal (exit 1: requests were cut)", async () => {
    const server = await startCli({ SHUTDOWN_TIMEOUT_MS: "600000" });
    const held = await holdLeaseRequest(server.port);
    server.child.kill("SIGTERM");
    await expect.poll(() => connectionRefused(server.port), { timeout: 5000 }).toBe("ECONNREFUSED");
    server.child.kill("SIGINT");
    expect(await held.closed).toBe("HTTP/1.1 100 Continue\r\n\r\n");
    expect(await server.exited).toBe(1);
  });

  it("refuses a SHUTDOWN_TIMEOUT_MS that is not a whole number of milliseconds", async () => {
    const child = spawn(process.execPath, [cli], {
      env: { PATH: process.env.PATH ?? "", ...env, SHUTDOWN_TIMEOUT_MS: "2.5" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(stderr).toContain("SHUTDOWN_TIMEOUT_MS must be an integer from 0 to 600000");
  });
});

describe("blindcast-keys on SIGTERM with PostgreSQL leases", () => {
  // Its own cluster, to read its log: a pool that was not closed leaves "unexpected EOF" there.
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
    // At debug1 PostgreSQL logs a client that left without a Terminate message.
    const admin = new pg.Client(cluster.url);
    await admin.connect();
    await admin.query("ALTER SYSTEM SET log_min_messages = debug1");
    await admin.query("SELECT pg_reload_conf()");
    await admin.end();
  }, 60_000);
  afterAll(() => cluster?.destroy());

  it("finishes the request in flight, then closes the pool's connections cleanly", async () => {
    const server = await startCli({ DATABASE_URL: cluster.url });
    // Two connections in the pool: a lease created, and one request held while another runs.
    const created = await fetch(`http://127.0.0.1:${server.port}/keys/leases`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: BODY,
    });
    expect(created.status).toBe(201);
    const ready = await fetch(`http://127.0.0.1:${server.port}/readyz`);
    expect(await ready.json()).toEqual({ status: "ready", leaseStore: "answers" });

    const held = await holdLeaseRequest(server.port);
    server.child.kill("SIGTERM");
    await expect.poll(() => connectionRefused(server.port), { timeout: 5000 }).toBe("ECONNREFUSED");
    held.socket.write(BODY);
    expect(await held.closed).toMatch(/HTTP\/1\.1 201 Created\r\n/);
    expect(await server.exited).toBe(0);
    expect(auditLines(server.stdout()).map((r) => r.status)).toEqual([201, 201]);

    // The pool said goodbye on each connection (Terminate) rather than dropping them at exit.
    const log = readFileSync(cluster.log, "utf8");
    expect(log).toContain(`parameter "log_min_messages" changed to "debug1"`);
    expect(log).not.toMatch(/unexpected EOF on client connection|could not receive data from client/);
  });
});
