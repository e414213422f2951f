import { type BlindcastPlayerError, createKeySession, type KeySession } from "@blindcast/player";
import { afterEach, describe, expect, it } from "vitest";
import { type Fault, startFaultyKeyServer } from "./support/http-servers.js";

// One player holds at most one lease at a time, so a server with maxConcurrentLeases: 1 never
// refuses it for a lease of its own. Real key server (node:http adapter) on loopback.

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of cleanup.splice(0).reverse()) await close();
});

const none: Fault = () => false;

async function setup(fault: Fault = none) {
  const server = await startFaultyKeyServer(fault, { maxConcurrentLeases: 1 });
  cleanup.push(server.close);
  const open = () => {
    const errors: BlindcastPlayerError[] = [];
    const events: string[] = [];
    const session: KeySession = createKeySession({ keyServerUrl: server.keysUrl, getToken: () => "token-1" });
    cleanup.push(() => session.destroy());
    session.on("error", (error) => errors.push(error));
    for (const event of ["leasecreated", "leasereleased", "leaselost"] as const) {
      session.on(event, (payload) => events.push(`${event} ${payload.contentId}`));
    }
    return { session, errors, events };
  };
  // Lease and key traffic, in the order the server received it.
  const traffic = () =>
    server.seen.map((r) => `${r.method} ${r.path.replace(/[0-9a-f]{32}$/, "<id>")}`).join(", ");
  return { server, open, traffic };
}

describe("with maxConcurrentLeases: 1", () => {
  it("a stream whose keys name other content than load() did: the lease moves, no LEASE_LIMIT", async () => {
    // The release takes a while to be answered (a slow network): the next lease waits for it.
    const { open, traffic } = await setup(
      (req) => req.method === "DELETE" && { answer: new Promise((resolve) => setTimeout(resolve, 100)) },
    );
    const { session, errors, events } = open();
    session.start("trailer", { contentId: "trailer", epoch: 0 });
    await expect.poll(() => events).toEqual(["leasecreated trailer"]);
    expect(await session.key({ contentId: "movie", epoch: 0 })).toHaveLength(16);
    expect(errors).toEqual([]);
    expect(session.lease?.contentId).toBe("movie");
    expect(events).toEqual(["leasecreated trailer", "leasereleased trailer", "leasecreated movie"]);
    // The key asked for came with the new lease.
    expect(traffic()).toBe("POST /keys/leases, DELETE /keys/leases, POST /keys/leases");
  });

  it("the same while the first lease is still being created: it is released once created", async () => {
    // The first lease's answer is held until the switch has happened.
    let answerFirst: () => void = () => {};
    const firstAnswered = new Promise<void>((resolve) => {
      answerFirst = resolve;
    });
    let posts = 0;
    const { open, traffic, server } = await setup(
      (req) => req.method === "POST" && ++posts === 1 && { answer: firstAnswered },
    );
    const { session, errors, events } = open();
    session.start("trailer", { contentId: "trailer", epoch: 0 });
    await expect.poll(() => server.seen.length).toBe(1);
    setTimeout(answerFirst, 50);
    expect(await session.key({ contentId: "movie", epoch: 0 })).toHaveLength(16);
    expect(errors).toEqual([]);
    expect(events).toEqual(["leasecreated trailer", "leasereleased trailer", "leasecreated movie"]);
    expect(traffic()).toBe("POST /keys/leases, DELETE /keys/leases, POST /keys/leases");
  });

  it("content switched twice in a row: the leases in between are never created", async () => {
    const { open, traffic } = await setup();
    const { session, errors, events } = open();
    session.start("a");
    await expect.poll(() => events).toEqual(["leasecreated a"]);
    session.start("b");
    session.start("c");
    expect(await session.key({ contentId: "c", epoch: 0 })).toHaveLength(16);
    expect(errors).toEqual([]);
    expect(events).toEqual(["leasecreated a", "leasereleased a", "leasecreated c"]);
    // b's request never left; c's lease came with the key asked for.
    expect(traffic()).toBe("POST /keys/leases, DELETE /keys/leases, POST /keys/leases");
  });

  it("destroyed while its lease is being created: that lease is released, not left to expire", async () => {
    let answerCreation: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      answerCreation = resolve;
    });
    const { server, open } = await setup(
      (req) => server.seen.length === 1 && req.url === "/keys/leases" && { answer: held },
    );
    const first = open();
    first.session.start("movie");
    // The creation reached the server; its answer is on the way when the player is destroyed.
    await expect.poll(() => server.seen.length).toBe(1);
    const destroyed = first.session.destroy();
    answerCreation();
    await destroyed;
    expect(first.events).toEqual(["leasecreated movie", "leasereleased movie"]);
    // The viewer's one slot is free: a new player gets its lease at once.
    const next = open();
    next.session.start("movie");
    expect(await next.session.key({ contentId: "movie", epoch: 0 })).toHaveLength(16);
    expect(next.errors).toEqual([]);
  });

  it("a key refused for a lease already replaced does not end the new lease", async () => {
    let releaseDone: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      releaseDone = resolve;
    });
    const { open } = await setup((req, res) => {
      if (req.method === "DELETE") res.on("finish", releaseDone);
      // Held until the trailer's lease is released, so the server refuses it for that lease.
      return req.url === "/keys/trailer/1" && { request: released };
    });
    const { session, errors, events } = open();
    session.start("trailer");
    await expect.poll(() => events).toEqual(["leasecreated trailer"]);
    // Sent with the trailer's lease, answered after that lease was released for the movie's.
    const stale = expect(session.key({ contentId: "trailer", epoch: 1 })).rejects.toMatchObject({
      code: "LEASE_LOST",
      reason: "Lease not found",
    });
    expect(await session.key({ contentId: "movie", epoch: 0 })).toHaveLength(16);
    await stale;
    expect(errors).toEqual([]);
    expect(events).not.toContain("leaselost movie");
    expect(session.lease?.contentId).toBe("movie");
    expect(await session.key({ contentId: "movie", epoch: 1 })).toHaveLength(16);
  });
});
