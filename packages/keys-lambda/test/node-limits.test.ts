import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { bytesToHex } from "@blindcast/crypto";
import { KeyServerConfigError } from "@blindcast/keys";
import { isLoopbackHost, type NodeKeyServerOptions, startKeyServer } from "@blindcast/keys/node";
import { describe, expect, it } from "vitest";
import { startCli } from "./support/cli.js";
import { MASTER_KEY_HEX, masterKey, recordingLogger, SALT_HEX, salt, vectorFor } from "./support/fixtures.js";

const env = { MASTER_KEY: MASTER_KEY_HEX, SALT: SALT_HEX, CORS_ORIGINS: "*", PORT: "0" };

type SlowKind = "silent" | "headers" | "body" | "idle";

/** What each kind of slow client sends once connected; "headers" and "body" then trickle a byte at a time. */
const OPENING: Record<SlowKind, string> = {
  silent: "",
  headers: "GET /keys/demo/1 HTTP/1.1\r\nhost: x\r\nx-slow: ",
  body: "POST /keys/leases HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n",
  // One complete request, answered at once (403: no lease); the connection is then kept alive, idle.
  idle: "GET /keys/demo/1 HTTP/1.1\r\nhost: x\r\n\r\n",
};

interface SlowClient {
  kind: SlowKind;
  socket: Socket;
  connected: boolean;
  closed: boolean;
  /** What the server sent before closing. */
  received: string;
}

/**
 * Opens `count` raw connections of each kind and trickles one byte every 200 ms on the
 * "headers" and "body" ones: requests that would take minutes to arrive.
 */
function openSlowClients(port: number, counts: Partial<Record<SlowKind, number>>) {
  const clients: SlowClient[] = [];
  for (const [kind, count] of Object.entries(counts) as [SlowKind, number][]) {
    for (let i = 0; i < count; i++) {
      const socket = connect(port, "127.0.0.1");
      const client: SlowClient = { kind, socket, connected: false, closed: false, received: "" };
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        client.received += chunk;
      });
      socket.on("error", () => {});
      socket.once("connect", () => {
        client.connected = true;
        if (OPENING[kind]) socket.write(OPENING[kind]);
      });
      socket.once("close", () => {
        client.closed = true;
      });
      clients.push(client);
    }
  }
  const trickle = setInterval(() => {
    for (const { kind, socket, connected } of clients) {
      if (connected && !socket.destroyed && (kind === "headers" || kind === "body")) socket.write("a");
    }
  }, 200);
  return {
    clients,
    /** Resolves once every connection is open (or already closed by the server). */
    async settled() {
      await Promise.all(
        clients.map((c) => (c.connected || c.closed ? undefined : once(c.socket, "connect").catch(() => {}))),
      );
    },
    /** Resolves once every connection is closed, or after `ms` (the test then sees which are open). */
    async allClosed(ms: number) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && clients.some((c) => !c.closed)) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    end() {
      clearInterval(trickle);
      for (const { socket } of clients) socket.destroy();
    },
  };
}

/** A viewer's whole key request: a lease, then an epoch key with it. */
async function fetchKey(keysUrl: string, signal?: AbortSignal): Promise<string> {
  const created = await fetch(`${keysUrl}/leases`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ contentId: "demo" }),
    signal,
  });
  expect(created.status).toBe(201);
  const { leaseId } = (await created.json()) as { leaseId: string };
  const key = await fetch(`${keysUrl}/demo/1`, { headers: { "x-blindcast-lease": leaseId }, signal });
  expect(key.status).toBe(200);
  return bytesToHex(new Uint8Array(await key.arrayBuffer()));
}

describe("node:http under slow and many clients (the blindcast-keys CLI)", () => {
  it("serves a new client while 600 trickling clients hold connections under a 512-file limit", async () => {
    // Timeouts far longer than this test: only the connection cap can let the new client in.
    const server = await startCli(
      { ...env, HEADERS_TIMEOUT_MS: "60000", REQUEST_TIMEOUT_MS: "120000" },
      { openFiles: 512 },
    );
    const slow = openSlowClients(server.port, { body: 600 });
    try {
      await slow.settled();
      // Without the cap, node:http accepts until the process runs out of files, and then nobody
      // is served until a slow client gives up: this would time out.
      expect(await fetchKey(server.url, AbortSignal.timeout(8000))).toBe(vectorFor("demo", 1));
      expect(await fetchKey(server.url, AbortSignal.timeout(8000))).toBe(vectorFor("demo", 1));
      // Three quarters of the 512 files, read from the process's limit.
      expect(server.stderr()).toContain("384 connections open (maxConnections)");
      const evicted = slow.clients.filter((c) => c.closed);
      expect(evicted.length).toBeGreaterThanOrEqual(600 - 384);
      expect(evicted.every((c) => c.received === "")).toBe(true);
    } finally {
      slow.end();
      expect(await server.stop()).toBe(0);
    }
  });

  it("closes silent, trickling and idle connections at their timeouts, and serves meanwhile", async () => {
    const server = await startCli({
      ...env,
      HEADERS_TIMEOUT_MS: "500",
      REQUEST_TIMEOUT_MS: "1000",
      KEEP_ALIVE_TIMEOUT_MS: "500",
    });
    const slow = openSlowClients(server.port, { silent: 100, headers: 100, body: 200, idle: 100 });
    try {
      await slow.settled();
      expect(await fetchKey(server.url)).toBe(vectorFor("demo", 1));
      // node:http's defaults would keep all of them for minutes (the body for 300 s).
      await slow.allClosed(8000);
      const open = slow.clients.filter((c) => !c.closed).map((c) => c.kind);
      expect(open).toEqual([]);
      // A timed-out request is answered 408 before its connection is closed; the client may
      // not see it (a reset that overtakes unread data), but never anything else.
      for (const client of slow.clients) {
        const status = client.received.slice(9, 12);
        const expected = client.kind === "idle" ? ["403"] : ["408", ""];
        expect([client.kind, expected.includes(status)]).toEqual([client.kind, true]);
      }
      expect(slow.clients.filter((c) => c.received.startsWith("HTTP/1.1 408")).length).toBeGreaterThan(0);
    } finally {
      slow.end();
      expect(await server.stop()).toBe(0);
    }
  });
});

describe("isLoopbackHost", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["localhost", true],
    ["LocalHost", true],
    ["::1", true],
    ["[::1]", true],
    ["0:0:0:0:0:0:0:1", true],
    ["::ffff:127.0.0.1", true],
    ["0.0.0.0", false],
    ["::", false],
    ["", false],
    ["192.0.2.10", false],
    ["::ffff:10.0.0.1", false],
    ["128.0.0.1", false],
    ["localhost.example.com", false],
    ["127.0.0.1.nip.io", false],
    ["keys.example.com", false],
  ])("%s: %s", (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

const base: NodeKeyServerOptions = {
  masterKey,
  salt,
  corsOrigins: "*",
  port: 0,
  audit: false,
  logger: recordingLogger(),
};

describe("startKeyServer's node:http limits", () => {
  it("sets tight timeouts by default", async () => {
    const running = await startKeyServer(base);
    try {
      expect(running.server.headersTimeout).toBe(5000);
      expect(running.server.requestTimeout).toBe(10_000);
      expect(running.server.keepAliveTimeout).toBe(5000);
    } finally {
      await running.close();
    }
  });

  it.each<[Partial<NodeKeyServerOptions>, string]>([
    [{ headersTimeoutMs: 50 }, "headersTimeoutMs must be an integer from 100 to 600000"],
    [{ requestTimeoutMs: 1.5 }, "requestTimeoutMs must be an integer"],
    [{ keepAliveTimeoutMs: 0 }, "keepAliveTimeoutMs must be an integer from 100"],
    [{ maxConnections: 0 }, "maxConnections must be an integer from 1"],
    [{ shutdownTimeoutMs: -1 }, "shutdownTimeoutMs must be an integer from 0"],
    [{ headersTimeoutMs: 20_000 }, "headersTimeoutMs must not be more than requestTimeoutMs"],
    [{ audit: undefined, auditBufferBytes: 1000 }, "at least 65536 bytes"],
    [{ auditBufferBytes: 100_000 }, "auditBufferBytes is for the default stdout audit"],
  ])("refuses %j", async (override, message) => {
    const attempt = startKeyServer({ ...base, ...override });
    await expect(attempt).rejects.toThrow(KeyServerConfigError);
    await expect(attempt).rejects.toThrow(message);
  });

  it("refuses to serve the public demo key on anything but loopback, before listening", async () => {
    // Addresses this machine cannot bind: without the check, this fails without serving elsewhere.
    for (const hostname of ["192.0.2.10", "keys.example.com"]) {
      await expect(startKeyServer({ ...base, hostname })).rejects.toThrow(
        "the master key is the public demo key: it is served on loopback only",
      );
    }
    for (const hostname of ["127.0.0.1", "localhost", "::1"]) {
      const running = await startKeyServer({ ...base, hostname });
      await running.close();
    }
  });
});

/** A raw keep-alive connection; `request` sends one GET and resolves with the raw answer. */
async function rawConnection(port: number) {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  let text = "";
  socket.setEncoding("latin1").on("data", (chunk: string) => {
    text += chunk;
  });
  const closed = once(socket, "close");
  return {
    socket,
    closed,
    text: () => text,
    send(headers: string) {
      socket.write(`GET /keys/demo/1 HTTP/1.1\r\nhost: x\r\n${headers}\r\n`);
    },
  };
}

describe("startKeyServer's connection cap", () => {
  it("holds no request or answer once it is answered, while the connection stays open", async () => {
    // The cap tracks what each connection is doing. Holding each connection's last exchange until
    // its next request kept every request and answer alive past a young-generation collection,
    // which promoted them all to the old generation on Node 24 (BENCHMARKS.md): a finished
    // exchange must be garbage at once, though its keep-alive connection stays open.
    setFlagsFromString("--expose-gc");
    const collect = runInNewContext("gc") as () => void;
    const running = await startKeyServer(base);
    const exchanges: WeakRef<object>[] = [];
    running.server.prependListener("request", (req, res) => {
      exchanges.push(new WeakRef(req), new WeakRef(res));
    });
    try {
      const connection = await rawConnection(running.port);
      connection.send("");
      await new Promise<void>((resolve) => connection.socket.once("data", () => resolve()));
      expect(connection.text()).toMatch(/^HTTP\/1\.1 200 /);
      expect(exchanges).toHaveLength(2);
      // The answer is written; let node:http finish with it, then collect.
      for (let round = 0; round < 5 && exchanges.some((ref) => ref.deref()); round++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        collect();
      }
      expect(exchanges.map((ref) => ref.deref() === undefined)).toEqual([true, true]);
      expect(connection.socket.destroyed).toBe(false);
      connection.socket.destroy();
    } finally {
      await running.close();
    }
  });
});

describe("startKeyServer's close()", () => {
  it("closes idle and unfinished connections at once, and lets a request being answered finish", async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const running = await startKeyServer({
      ...base,
      // A request marked x-hold waits here: an answer still being prepared when close() is called.
      authenticate: async (event) => {
        if (event.headers?.["x-hold"]) await held;
        return { ok: true };
      },
    });
    const idle = await rawConnection(running.port);
    idle.send("");
    await new Promise<void>((resolve) => idle.socket.once("data", () => resolve()));
    const unfinished = await rawConnection(running.port);
    unfinished.socket.write("GET /keys/demo/1 HTTP/1.1\r\nhost: x\r\n");
    const answering = await rawConnection(running.port);
    answering.send("x-hold: 1\r\n");
    await new Promise((resolve) => setTimeout(resolve, 100));

    let closed = false;
    const closing = running.close().then(() => {
      closed = true;
    });
    await Promise.all([idle.closed, unfinished.closed]);
    expect(closed).toBe(false);
    expect(answering.text()).toBe("");
    release();
    await closing;
    await answering.closed;
    // Its answer arrived whole, told the client the connection closes, and it did.
    const answer = answering.text();
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer.toLowerCase()).toContain("connection: close");
    const key = Buffer.from(answer.slice(answer.indexOf("\r\n\r\n") + 4), "latin1");
    expect(bytesToHex(key)).toBe(vectorFor("demo", 1));
  });

  it("gives up on a request that never finishes after shutdownTimeoutMs", async () => {
    const running = await startKeyServer({
      ...base,
      shutdownTimeoutMs: 300,
      authenticate: () => new Promise(() => {}),
    });
    const stuck = await rawConnection(running.port);
    stuck.send("");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await running.close();
    await stuck.closed;
    expect(stuck.text()).toBe("");
  });
});
