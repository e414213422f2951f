import { bytesToHex, deriveContentKey, deriveEpochKey } from "@blindcast/crypto";
import { type BlindcastPlayerError, createKeySession, type KeyRef, type KeySession } from "@blindcast/player";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { settle } from "./support/flush.js";
import { createKeyServerMock, KEY_SERVER, MASTER_KEY, SALT } from "./support/key-server.js";

let mock: ReturnType<typeof createKeyServerMock>;
let session: KeySession | undefined;

function start(extra: Partial<Parameters<typeof createKeySession>[0]> = {}) {
  session = createKeySession({ keyServerUrl: KEY_SERVER, getToken: () => "token-1", ...extra });
  const seen: { event: string; payload: unknown }[] = [];
  for (const event of [
    "keyloaded",
    "leasecreated",
    "leaserenewed",
    "leasereleased",
    "leaselost",
    "error",
  ] as const) {
    session.on(event, (payload) => seen.push({ event, payload }));
  }
  return {
    session,
    seen,
    errors: () => seen.filter((s) => s.event === "error").map((s) => s.payload as BlindcastPlayerError),
  };
}

function useMock(options?: Parameters<typeof createKeyServerMock>[0]) {
  mock?.server.close();
  mock = createKeyServerMock(options);
  mock.server.listen({ onUnhandledRequest: "error" });
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  vi.setSystemTime(new Date("2026-11-28T12:00:00Z"));
  useMock();
});

afterEach(async () => {
  await session?.destroy();
  session = undefined;
  mock.server.close();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Requests for keys: everything but the lease routes. */
const keyRequests = () => mock.log.filter((r) => !r.path.startsWith("/leases"));
const asked = (r: { body?: string } | undefined) => (JSON.parse(r?.body ?? "{}") as { keys?: unknown }).keys;

describe("keys", () => {
  it("fetches the keys asked for together in one POST {keyServerUrl}/{contentId}/keys, with the lease", async () => {
    const { session, seen } = start();
    session.start("movie-42");
    await settle();
    const [content, epoch7] = await Promise.all([
      session.key({ contentId: "movie-42" }),
      session.key({ contentId: "movie-42", epoch: 7 }),
    ]);
    expect(bytesToHex(content)).toBe(bytesToHex(await deriveContentKey(MASTER_KEY, SALT, "movie-42")));
    expect(bytesToHex(epoch7)).toBe(bytesToHex(await deriveEpochKey(MASTER_KEY, SALT, "movie-42", 7)));
    const lease = mock.log.find((r) => r.path === "/leases");
    expect(keyRequests().map((r) => `${r.method} ${r.path}`)).toEqual(["POST /movie-42/keys"]);
    expect(asked(keyRequests()[0])).toEqual(["content", 7]);
    for (const r of keyRequests()) {
      expect(r.authorization).toBe("Bearer token-1");
      expect(r.lease).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(lease?.authorization).toBe("Bearer token-1");
    const loaded = seen.filter((s) => s.event === "keyloaded").map((s) => s.payload);
    expect(loaded).toEqual(
      expect.arrayContaining([
        { contentId: "movie-42", epoch: undefined, durationMs: expect.any(Number), prefetch: false },
        { contentId: "movie-42", epoch: 7, durationMs: expect.any(Number), prefetch: false },
      ]),
    );
    expect(JSON.stringify(loaded)).not.toContain(bytesToHex(content));
  });

  it("fetches each key once and shares concurrent requests", async () => {
    const { session, seen } = start();
    session.start("demo");
    await settle();
    const ref = { contentId: "demo", epoch: 3 };
    const keys = await Promise.all([session.key(ref), session.key(ref), session.key(ref)]);
    session.prefetch(ref);
    await session.key(ref);
    expect(new Set(keys.map(bytesToHex)).size).toBe(1);
    expect(keyRequests()).toHaveLength(1);
    expect(seen.filter((s) => s.event === "keyloaded")).toHaveLength(1);
  });

  it("wipes held keys on destroy", async () => {
    const { session } = start();
    const key = await session.key({ contentId: "demo", epoch: 0 });
    expect(key.some((b) => b !== 0)).toBe(true);
    await session.destroy();
    expect(key.every((b) => b === 0)).toBe(true);
    await expect(session.key({ contentId: "demo", epoch: 0 })).rejects.toThrow(/destroyed/);
  });

  it("creates the lease at start, before any key is asked for", async () => {
    const { session, seen } = start();
    session.start("demo");
    await settle();
    expect(mock.log.map((r) => `${r.method} ${r.path}`)).toEqual(["POST /leases"]);
    expect(seen[0]).toMatchObject({ event: "leasecreated", payload: { contentId: "demo", ttlSeconds: 30 } });
    expect(session.lease?.contentId).toBe("demo");
  });

  it("gets the first key with the lease itself: one request for both", async () => {
    const { session, seen } = start();
    session.start("demo", { contentId: "demo", epoch: 0 });
    await settle();
    expect(mock.log.map((r) => `${r.method} ${r.path}`)).toEqual(["POST /leases"]);
    expect(seen.find((s) => s.event === "keyloaded")?.payload).toMatchObject({ epoch: 0, prefetch: true });
    const key = await session.key({ contentId: "demo", epoch: 0 });
    expect(bytesToHex(key)).toBe(bytesToHex(await deriveEpochKey(MASTER_KEY, SALT, "demo", 0)));
    expect(keyRequests()).toHaveLength(0);
    // Later keys are fetched as usual, with the lease.
    await session.key({ contentId: "demo", epoch: 1 });
    expect(keyRequests().map((r) => r.path)).toEqual(["/demo/keys"]);
    expect(asked(keyRequests()[0])).toEqual([1]);
  });

  it("keys asked for before the lease request leaves come with it: in order, up to 4, each once", async () => {
    const { session, seen } = start();
    // As a live stream starts: nothing at load, then the first playlist's keys, hls.js' own first.
    const refs = [5, 6, 7, 7, 8, 9].map((epoch) => ({ contentId: "live", epoch }));
    const keys = await Promise.all(refs.map((ref) => session.key(ref)));
    await settle();
    expect(mock.log.map((r) => `${r.method} ${r.path}`)).toEqual(["POST /leases", "POST /live/keys"]);
    expect(JSON.parse(mock.log[0]?.body ?? "")).toEqual({ contentId: "live", keys: [5, 6, 7, 8] });
    expect(asked(mock.log[1])).toEqual([9]);
    for (const [i, ref] of refs.entries()) {
      expect(bytesToHex(keys[i] ?? new Uint8Array())).toBe(
        bytesToHex(await deriveEpochKey(MASTER_KEY, SALT, "live", ref.epoch)),
      );
    }
    expect(seen.filter((s) => s.event === "keyloaded")).toHaveLength(5);
    // Once the request has left, keys are fetched on their own.
    await session.key({ contentId: "live", epoch: 10 });
    expect(keyRequests().map(asked)).toEqual([[9], [10]]);
  });

  it("fetches the first key itself from a server that sends no keys with the lease", async () => {
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/leases`, () =>
        mock.HttpResponse.json(
          {
            leaseId: "0123456789abcdef0123456789abcdef",
            contentId: "demo",
            expiresAt: new Date(Date.now() + 30_000).toISOString(),
            ttlSeconds: 30,
          },
          { status: 201 },
        ),
      ),
      mock.http.post(`${KEY_SERVER}/demo/keys`, () =>
        mock.HttpResponse.json({ keys: [{ epoch: 0, key: Buffer.alloc(16, 9).toString("base64") }] }),
      ),
    );
    const { session } = start();
    session.start("demo", { contentId: "demo", epoch: 0 });
    expect(await session.key({ contentId: "demo", epoch: 0 })).toEqual(new Uint8Array(16).fill(9));
    expect(keyRequests().map((r) => r.lease)).toEqual(["0123456789abcdef0123456789abcdef"]);
  });

  it.each([
    ["a key of 15 bytes", [{ epoch: 1, key: Buffer.alloc(15, 1).toString("base64") }]],
    ["a key of 17 bytes", [{ epoch: 1, key: Buffer.alloc(17, 1).toString("base64") }]],
    ["another key than the one asked for", [{ epoch: 2, key: Buffer.alloc(16, 1).toString("base64") }]],
    ["no keys", "none"],
  ])("refuses an answer with %s: KEY_INVALID", async (_, keys) => {
    const { session, errors } = start();
    session.start("demo");
    await settle();
    mock.server.use(mock.http.post(`${KEY_SERVER}/demo/keys`, () => mock.HttpResponse.json({ keys })));
    await expect(session.key({ contentId: "demo", epoch: 1 })).rejects.toMatchObject({
      code: "KEY_INVALID",
      message: "Key server answered no 16-byte key for demo/1",
    });
    expect(errors()[0]).toMatchObject({ code: "KEY_INVALID", fatal: true, epoch: 1 });
  });

  it("asks for at most 8 keys a request, each request for one title", async () => {
    useMock({ leases: false });
    const { session } = start({ leases: false });
    const refs: KeyRef[] = [
      ...Array.from({ length: 10 }, (_, epoch) => ({ contentId: "a", epoch })),
      { contentId: "a" },
      { contentId: "b" },
    ];
    const keys = await Promise.all(refs.map((ref) => session.key(ref)));
    expect(keyRequests().map((r) => [r.path, asked(r)])).toEqual([
      ["/a/keys", [0, 1, 2, 3, 4, 5, 6, 7]],
      ["/a/keys", [8, 9, "content"]],
      ["/b/keys", ["content"]],
    ]);
    for (const [i, ref] of refs.entries()) {
      const expected =
        ref.epoch === undefined
          ? await deriveContentKey(MASTER_KEY, SALT, ref.contentId)
          : await deriveEpochKey(MASTER_KEY, SALT, ref.contentId, ref.epoch);
      expect(bytesToHex(keys[i] ?? new Uint8Array()), JSON.stringify(ref)).toBe(bytesToHex(expected));
    }
    // Keys asked for in later turns leave in later requests, as they come.
    await session.key({ contentId: "a", epoch: 10 });
    await session.key({ contentId: "a", epoch: 11 });
    expect(keyRequests().slice(3).map(asked)).toEqual([[10], [11]]);
  });
});

describe("errors and retries", () => {
  beforeEach(() => useMock({ leases: false }));

  it("refreshes the token once after a 401 and retries", async () => {
    const getToken = vi.fn(({ refresh }: { refresh: boolean }) => (refresh ? "token-1" : "stale"));
    const { session } = start({ getToken, leases: false });
    const key = await session.key({ contentId: "demo" });
    expect(key).toHaveLength(16);
    expect(getToken.mock.calls.map(([c]) => c)).toEqual([{ refresh: false }, { refresh: true }]);
    expect(keyRequests().map((r) => r.authorization)).toEqual(["Bearer stale", "Bearer token-1"]);
  });

  it("fails with AUTH_FAILED when the refreshed token is refused too", async () => {
    const { session, errors } = start({ getToken: () => "bad", leases: false });
    await expect(session.key({ contentId: "demo" })).rejects.toMatchObject({
      code: "AUTH_FAILED",
      status: 401,
      reason: "Invalid token",
    });
    expect(keyRequests()).toHaveLength(2);
    expect(errors()).toHaveLength(1);
  });

  it("fails with FORBIDDEN and the server's reason on 403", async () => {
    const { session } = start({ leases: false });
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/demo/keys`, () =>
        mock.HttpResponse.json({ error: "Plan expired" }, { status: 403 }),
      ),
    );
    await expect(session.key({ contentId: "demo" })).rejects.toMatchObject({
      code: "FORBIDDEN",
      reason: "Plan expired",
      status: 403,
    });
  });

  it("retries 5xx and network errors with growing, jittered delays, then succeeds", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { session } = start({ leases: false, retry: { baseDelayMs: 100, maxDelayMs: 1000 } });
    let calls = 0;
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/demo/keys`, () => {
        calls++;
        if (calls === 1) return new mock.HttpResponse(null, { status: 502 });
        if (calls === 2) return mock.HttpResponse.error();
        return undefined; // falls through to the real server
      }),
    );
    const key = session.key({ contentId: "demo" });
    await settle();
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(74); // first delay: 50 + 0.5 * 50 = 75 ms
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(150); // second: 100 + 0.5 * 100
    await settle();
    expect(await key).toHaveLength(16);
    expect(calls).toBe(3);
  });

  it("gives up after maxRetries with KEY_SERVER_UNAVAILABLE", async () => {
    const { session, errors } = start({
      leases: false,
      retry: { maxRetries: 2, baseDelayMs: 10, maxDelayMs: 10 },
    });
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/demo/keys`, () =>
        mock.HttpResponse.json({ error: "Boom" }, { status: 500 }),
      ),
    );
    const key = session.key({ contentId: "demo" });
    const outcome = expect(key).rejects.toMatchObject({
      code: "KEY_SERVER_UNAVAILABLE",
      status: 500,
      reason: "Boom",
    });
    await vi.advanceTimersByTimeAsync(100);
    await outcome;
    expect(keyRequests()).toHaveLength(3);
    expect(errors()).toHaveLength(1);
  });

  it("honours Retry-After on 503", async () => {
    const { session } = start({ leases: false, retry: { baseDelayMs: 10, maxDelayMs: 5000 } });
    let calls = 0;
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/demo/keys`, () => {
        calls++;
        return calls === 1
          ? mock.HttpResponse.json({ error: "Down" }, { status: 503, headers: { "retry-after": "2" } })
          : undefined;
      }),
    );
    const key = session.key({ contentId: "demo" });
    await vi.advanceTimersByTimeAsync(1999);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(await key).toHaveLength(16);
  });

  it("times out a request that never answers, then retries", async () => {
    const { session } = start({ leases: false, retry: { timeoutMs: 1000, baseDelayMs: 10, maxDelayMs: 10 } });
    let calls = 0;
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/demo/keys`, async ({ request }) => {
        calls++;
        if (calls === 1) {
          await new Promise((_, reject) =>
            request.signal.addEventListener("abort", () => reject(request.signal.reason)),
          );
        }
        return undefined;
      }),
    );
    const key = session.key({ contentId: "demo" });
    await vi.advanceTimersByTimeAsync(1000);
    await vi.advanceTimersByTimeAsync(20);
    await settle();
    expect(await key).toHaveLength(16);
    expect(calls).toBe(2);
  });

  it("reports a getToken failure as AUTH_FAILED", async () => {
    const { session } = start({
      leases: false,
      getToken: () => {
        throw new Error("idp down");
      },
    });
    await expect(session.key({ contentId: "demo" })).rejects.toMatchObject({
      code: "AUTH_FAILED",
      message: "getToken failed",
    });
  });
  it("asks getToken again after it threw at once: a failed call is not kept", async () => {
    let calls = 0;
    const { session } = start({
      leases: false,
      getToken: () => {
        calls++;
        if (calls === 1) throw new Error("idp down");
        return "token-1";
      },
    });
    // A prefetch's failure ends nothing (a key hls.js asks for would end the session).
    session.prefetch({ contentId: "demo", epoch: 0 });
    await settle();
    expect(calls).toBe(1);
    const key = await session.key({ contentId: "demo", epoch: 1 });
    expect(bytesToHex(key)).toBe(bytesToHex(await deriveEpochKey(MASTER_KEY, SALT, "demo", 1)));
    expect(calls).toBe(2);
  });
});

describe("leases", () => {
  it("renews at half the TTL, from the server's TTL, and keeps renewing", async () => {
    const { session, seen } = start();
    session.start("demo");
    await settle();
    expect(seen.map((s) => s.event)).toEqual(["leasecreated"]);
    await vi.advanceTimersByTimeAsync(14_999);
    expect(mock.log.filter((r) => r.path === "/leases/renew")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(mock.log.filter((r) => r.path === "/leases/renew")).toHaveLength(1);
    expect(seen.map((s) => s.event)).toEqual(["leasecreated", "leaserenewed"]);
    await vi.advanceTimersByTimeAsync(15_000);
    await settle();
    expect(seen.map((s) => s.event)).toEqual(["leasecreated", "leaserenewed", "leaserenewed"]);
    // Still valid on the server: a key request at this point succeeds.
    expect(await session.key({ contentId: "demo", epoch: 2 })).toHaveLength(16);
  });

  it("uses the title's key URL again at a renewal when no key went through it since the last", async () => {
    // Browsers drop a cached preflight at its max-age however often the URL is used: using the
    // URL each renewal while idle makes it again soon after, so a seek finds it cached.
    const { session } = start();
    session.start("demo", { contentId: "demo", epoch: 0 });
    await settle();
    await session.key({ contentId: "demo", epoch: 1 });
    const renewal = async () => {
      await vi.advanceTimersByTimeAsync(15_000);
      await settle();
      return keyRequests().map(asked);
    };
    expect(await renewal()).toEqual([[1]]); // a key went through it since the lease was created
    expect(await renewal()).toEqual([[1], []]);
    expect(await renewal()).toEqual([[1], [], []]);
    await session.key({ contentId: "demo", epoch: 2 });
    expect(await renewal()).toEqual([[1], [], [], [2]]);
    expect(await renewal()).toEqual([[1], [], [], [2], []]);
    const lease = session.lease?.leaseId;
    expect(keyRequests().map((r) => [r.path, r.lease, r.authorization])).toEqual(
      Array(5).fill(["/demo/keys", lease, "Bearer token-1"]),
    );
  });

  it("never uses the URL for a title whose keys all came with the lease", async () => {
    const { session } = start();
    session.start("movie", { contentId: "movie" });
    await settle();
    await session.key({ contentId: "movie" });
    await vi.advanceTimersByTimeAsync(60_000);
    await settle();
    expect(mock.log.map((r) => r.path)).toEqual(["/leases", ...Array(4).fill("/leases/renew")]);
  });

  // 408: the request timed out at the server (or a proxy): as transient as a 5xx.
  it.each([503, 408])(
    "retries a renewal answered %i with backoff while the lease is valid",
    async (status) => {
      const { session, seen, errors } = start({ retry: { baseDelayMs: 1000, maxDelayMs: 4000 } });
      session.start("demo");
      await settle();
      let failures = 0;
      mock.server.use(
        mock.http.post(`${KEY_SERVER}/leases/renew`, () => {
          if (failures < 2) {
            failures++;
            return new mock.HttpResponse(null, { status });
          }
          return undefined;
        }),
      );
      await vi.advanceTimersByTimeAsync(15_000);
      await settle();
      await vi.advanceTimersByTimeAsync(5_000);
      await settle();
      expect(failures).toBe(2);
      expect(seen.map((s) => s.event)).toEqual(["leasecreated", "leaserenewed"]);
      expect(errors()).toEqual([]);
    },
  );

  it("times out a renewal whose answer stalls mid-body, and retries it while the lease is valid", async () => {
    const { session, seen, errors } = start({
      retry: { timeoutMs: 1000, baseDelayMs: 100, maxDelayMs: 100 },
    });
    session.start("demo");
    await settle();
    let stalled = 0;
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/leases/renew`, ({ request }) => {
        if (stalled++ > 0) return undefined;
        // Headers and the body's first bytes, then nothing: the stream never closes. An aborted
        // fetch errors its body, as real fetch does (msw does not wire that up itself).
        const body = new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode('{"leaseId"'));
            request.signal.addEventListener("abort", () => c.error(request.signal.reason));
          },
        });
        return new mock.HttpResponse(body, { status: 200, headers: { "content-type": "application/json" } });
      }),
    );
    await vi.advanceTimersByTimeAsync(15_000);
    await settle();
    expect(seen.map((s) => s.event)).toEqual(["leasecreated"]);
    await vi.advanceTimersByTimeAsync(1000);
    await settle();
    await vi.advanceTimersByTimeAsync(100);
    await settle();
    expect(stalled).toBe(2);
    expect(seen.map((s) => s.event)).toEqual(["leasecreated", "leaserenewed"]);
    expect(errors()).toEqual([]);
  });

  it("ends with LEASE_EXPIRED when renewals fail until expiry", async () => {
    const { session, seen, errors } = start({ retry: { baseDelayMs: 1000, maxDelayMs: 4000 } });
    session.start("demo");
    await settle();
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/leases/renew`, () => new mock.HttpResponse(null, { status: 502 })),
    );
    await vi.advanceTimersByTimeAsync(29_999);
    expect(errors()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(seen.find((s) => s.event === "leaselost")?.payload).toMatchObject({
      contentId: "demo",
      code: "LEASE_EXPIRED",
    });
    expect(errors()[0]).toMatchObject({ code: "LEASE_EXPIRED", fatal: true });
    await expect(session.key({ contentId: "demo", epoch: 1 })).rejects.toMatchObject({
      code: "LEASE_EXPIRED",
    });
  });

  it.each([
    [404, { error: "Lease not found", code: "lease_not_found" }, "LEASE_LOST"],
    [410, { error: "Lease expired", code: "lease_expired" }, "LEASE_EXPIRED"],
    [403, { error: "Lease belongs to another viewer", code: "lease_forbidden" }, "LEASE_LOST"],
  ])("stops at once when renewal answers %i", async (status, body, code) => {
    const { session, seen, errors } = start();
    session.start("demo");
    await settle();
    mock.server.use(
      mock.http.post(`${KEY_SERVER}/leases/renew`, () => mock.HttpResponse.json(body, { status })),
    );
    await vi.advanceTimersByTimeAsync(15_000);
    await settle();
    expect(mock.log.filter((r) => r.path === "/leases/renew")).toHaveLength(1);
    expect(seen.find((s) => s.event === "leaselost")?.payload).toEqual({
      contentId: "demo",
      code,
      reason: body.error,
    });
    expect(errors()).toHaveLength(1);
    expect(errors()[0]).toMatchObject({ code, reason: body.error, status });
  });

  it("treats a key refused for the lease as a lost lease", async () => {
    const { session, seen } = start();
    session.start("demo");
    await settle();
    // The server forgets the lease (released elsewhere): the next key request is refused.
    const leaseId = session.lease?.leaseId;
    await fetch(`${KEY_SERVER}/leases/${leaseId}`, {
      method: "DELETE",
      headers: { authorization: "Bearer token-1" },
    });
    await expect(session.key({ contentId: "demo", epoch: 4 })).rejects.toMatchObject({
      code: "LEASE_LOST",
      reason: "Lease not found",
    });
    expect(seen.find((s) => s.event === "leaselost")?.payload).toMatchObject({
      code: "LEASE_LOST",
      reason: "Lease not found",
    });
  });

  it("reports 429 as LEASE_LIMIT", async () => {
    useMock({ maxConcurrentLeases: 1 });
    const first = createKeySession({ keyServerUrl: KEY_SERVER, getToken: () => "token-1" });
    first.start("a");
    await settle();
    const { session, errors } = start();
    session.start("b");
    await settle();
    expect(errors()[0]).toMatchObject({ code: "LEASE_LIMIT", status: 429 });
    expect(errors()[0]?.reason).toMatch(/Too many concurrent streams/);
    await first.destroy();
  });

  it("releases the lease on destroy with a keepalive request", async () => {
    const { session, seen } = start();
    session.start("demo");
    await settle();
    const leaseId = session.lease?.leaseId;
    const done = session.destroy();
    await settle();
    await done;
    const release = mock.log.find((r) => r.method === "DELETE");
    expect(release).toMatchObject({
      path: "/leases",
      lease: leaseId,
      keepalive: true,
      authorization: "Bearer token-1",
    });
    expect(seen.map((s) => s.event)).toEqual(["leasecreated", "leasereleased"]);
    // No renewal after destroy.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(mock.log.filter((r) => r.path === "/leases/renew")).toHaveLength(0);
  });

  it("plays without a lease when the server has leases off", async () => {
    useMock({ leases: false });
    const { session, errors } = start();
    session.start("demo");
    expect(await session.key({ contentId: "demo", epoch: 0 })).toHaveLength(16);
    expect(keyRequests()[0]?.lease).toBeNull();
    expect(errors()).toEqual([]);
  });

  it("fails when leases are required and the server has them off", async () => {
    useMock({ leases: false });
    const { session, errors } = start({ leases: { required: true } });
    session.start("demo");
    await settle();
    expect(errors()[0]).toMatchObject({ code: "BAD_REQUEST", serverCode: "leases_disabled", status: 404 });
  });

  it("reports a key refused for want of a lease when leases are off here but on at the server", async () => {
    const { session, errors } = start({ leases: false });
    await expect(session.key({ contentId: "demo" })).rejects.toMatchObject({
      code: "LEASE_LOST",
      serverCode: "lease_required",
    });
    expect(errors()).toHaveLength(1);
  });

  it("with leases: false, never creates one", async () => {
    const { session } = start({ leases: false });
    session.start("demo");
    await settle();
    expect(mock.log).toEqual([]);
  });
});
