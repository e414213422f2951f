import { type BlindcastPlayerError, createKeySession, type KeySession } from "@blindcast/player";
import { afterEach, describe, expect, it } from "vitest";
import {
  endlessBody,
  type Fault,
  stallMidBody,
  startFaultyKeyServer,
  startForeignServer,
} from "./support/http-servers.js";

// The player against a key server that misbehaves over real HTTP on loopback: a front server
// injects the fault, the real key server (node:http adapter) answers everything else.

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of cleanup.splice(0).reverse()) await close();
});

async function setup(fault: Fault, options: Parameters<typeof startFaultyKeyServer>[1] = {}) {
  const server = await startFaultyKeyServer(fault, options);
  cleanup.push(server.close);
  const errors: BlindcastPlayerError[] = [];
  const events: string[] = [];
  const session: KeySession = createKeySession({
    keyServerUrl: server.keysUrl,
    getToken: () => "token-1",
    retry: { timeoutMs: 300, maxRetries: 1, baseDelayMs: 10, maxDelayMs: 10 },
  });
  cleanup.push(() => session.destroy());
  session.on("error", (error) => errors.push(error));
  for (const event of ["leasecreated", "leasereleased", "leaselost"] as const) {
    session.on(event, () => events.push(event));
  }
  const waitForError = () =>
    expect
      .poll(() => errors[0], { timeout: 5_000, interval: 20 })
      .toBeDefined()
      .then(() => errors[0]);
  return { server, session, errors, events, waitForError };
}

/** Creates the lease and waits for it: a key asked for before the lease request leaves comes with it. */
const leaseFirst = (session: KeySession) =>
  new Promise<void>((resolve) => {
    session.on("leasecreated", () => resolve());
    session.start("demo");
  });

const is = (req: { method?: string; url?: string }, method: string, path: string) =>
  req.method === method && req.url === path;

describe("timeoutMs bounds the whole answer, body included", () => {
  it("a key whose body stalls halfway fails with KEY_SERVER_UNAVAILABLE after its retries", async () => {
    const { server, session } = await setup((req, res) => {
      if (!is(req, "POST", "/keys/demo/keys")) return false;
      req.resume();
      stallMidBody(res, 200, "application/json", 100);
      return true;
    });
    await leaseFirst(session);
    await expect(session.key({ contentId: "demo", epoch: 1 })).rejects.toMatchObject({
      code: "KEY_SERVER_UNAVAILABLE",
      message: expect.stringMatching(/no complete answer within 300 ms/),
    });
    expect(server.seen.filter((r) => r.path === "/keys/demo/keys")).toHaveLength(2);
  });

  it("a lease answer that stalls halfway fails the lease creation", async () => {
    const { session, waitForError } = await setup((req, res) => {
      if (!is(req, "POST", "/keys/leases")) return false;
      req.resume();
      stallMidBody(res, 201, "application/json", 200);
      return true;
    });
    session.start("demo");
    expect(await waitForError()).toMatchObject({
      code: "KEY_SERVER_UNAVAILABLE",
      message: expect.stringMatching(/no complete answer/),
    });
  });

  it("an error answer that stalls halfway is retried as a failure, then reported", async () => {
    const { server, session } = await setup((req, res) => {
      if (!is(req, "POST", "/keys/demo/keys")) return false;
      req.resume();
      stallMidBody(res, 403, "application/json", 100);
      return true;
    });
    await leaseFirst(session);
    await expect(session.key({ contentId: "demo", epoch: 2 })).rejects.toMatchObject({
      code: "KEY_SERVER_UNAVAILABLE",
    });
    expect(server.seen.filter((r) => r.path === "/keys/demo/keys")).toHaveLength(2);
  });
});

describe("bodies are read only as far as they may go", () => {
  it("stops reading a keys answer past 16 KiB and reports KEY_INVALID", async () => {
    let sent = { bytes: 0, closed: false };
    const { session } = await setup((req, res) => {
      if (!is(req, "POST", "/keys/demo/keys")) return false;
      req.resume();
      sent = endlessBody(res, 200, "application/json");
      return true;
    });
    await leaseFirst(session);
    await expect(session.key({ contentId: "demo", epoch: 1 })).rejects.toMatchObject({
      code: "KEY_INVALID",
      message: "Key server answered no 16-byte key for demo/1",
    });
    // The player closed the connection: the endless body was neither waited for nor held.
    await expect.poll(() => sent.closed, { timeout: 5_000 }).toBe(true);
    expect(sent.bytes).toBeLessThan(64 * 1024 * 1024);
  });

  it("stops reading a lease answer past 16 KiB and reports INVALID_RESPONSE", async () => {
    let sent = { bytes: 0, closed: false };
    const { session, waitForError } = await setup((req, res) => {
      if (!is(req, "POST", "/keys/leases")) return false;
      req.resume();
      sent = endlessBody(res, 201, "application/json");
      return true;
    });
    session.start("demo");
    expect(await waitForError()).toMatchObject({
      code: "INVALID_RESPONSE",
      message: "Key server answered a malformed lease",
    });
    await expect.poll(() => sent.closed, { timeout: 5_000 }).toBe(true);
  });

  it("reads an endless error answer only far enough to know it is no reason", async () => {
    let sent = { bytes: 0, closed: false };
    const { session } = await setup((req, res) => {
      if (!is(req, "POST", "/keys/demo/keys")) return false;
      req.resume();
      sent = endlessBody(res, 403, "application/json");
      return true;
    });
    await leaseFirst(session);
    await expect(session.key({ contentId: "demo", epoch: 3 })).rejects.toMatchObject({
      code: "FORBIDDEN",
      status: 403,
      reason: undefined,
      message: "Key server answered HTTP 403",
    });
    await expect.poll(() => sent.closed, { timeout: 5_000 }).toBe(true);
  });
});

describe("key and lease requests never follow a redirect", () => {
  // Every request the player makes (key, lease creation, renewal, release) carries the token,
  // and all but the creation the lease id: none may go on to wherever a redirect points.
  async function redirecting(method: string, path: string, status: number, shortLease = false) {
    const foreign = await startForeignServer();
    cleanup.push(foreign.close);
    const context = await setup((req, res) => {
      if (shortLease && is(req, "POST", "/keys/leases")) {
        // A lease of 1 s (the real server's are 10 s or more), so its renewal is due at once.
        req.resume();
        res.writeHead(201, { "content-type": "application/json" });
        const expiresAt = new Date(Date.now() + 1000).toISOString();
        res.end(JSON.stringify({ leaseId: "0".repeat(32), contentId: "demo", expiresAt, ttlSeconds: 1 }));
        return true;
      }
      if (req.method !== method || !req.url?.startsWith(path)) return false;
      req.resume();
      res.writeHead(status, { location: `${foreign.origin}${req.url}` });
      res.end();
      return true;
    });
    return { ...context, foreign };
  }

  it("a key answered 302: INVALID_RESPONSE, and nothing reaches the other origin", async () => {
    const { session, foreign } = await redirecting("POST", "/keys/demo/keys", 302);
    await leaseFirst(session);
    await expect(session.key({ contentId: "demo", epoch: 1 })).rejects.toMatchObject({
      code: "INVALID_RESPONSE",
      status: 302,
      epoch: 1,
      message: "Key server redirected (HTTP 302), not followed: keyServerUrl must be the final URL",
    });
    expect(foreign.seen).toEqual([]);
  });

  it("the lease creation answered 307: INVALID_RESPONSE, nothing reaches the other origin", async () => {
    const { session, foreign, waitForError } = await redirecting("POST", "/keys/leases", 307);
    session.start("demo");
    expect(await waitForError()).toMatchObject({ code: "INVALID_RESPONSE", status: 307 });
    expect(foreign.seen).toEqual([]);
  });

  it("the renewal answered 308: the lease is lost, nothing reaches the other origin", async () => {
    const { session, foreign, events, waitForError } = await redirecting(
      "POST",
      "/keys/leases/renew",
      308,
      true,
    );
    session.start("demo");
    expect(await waitForError()).toMatchObject({ code: "INVALID_RESPONSE", status: 308 });
    expect(events).toEqual(["leasecreated", "leaselost"]);
    expect(foreign.seen).toEqual([]);
  });

  it("the release answered 307: best effort as ever, nothing reaches the other origin", async () => {
    const { session, server, foreign, errors, events } = await redirecting("DELETE", "/keys/leases", 307);
    session.start("demo");
    await expect.poll(() => events).toEqual(["leasecreated"]);
    await session.destroy();
    expect(server.seen.map((r) => r.method)).toEqual(["POST", "DELETE"]);
    expect(errors).toEqual([]);
    expect(events).toEqual(["leasecreated"]);
    expect(foreign.seen).toEqual([]);
  });
});
