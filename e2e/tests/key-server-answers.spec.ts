import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import type { LeaseStore } from "@blindcast/keys";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { startFaultProxy } from "./fault-proxy.js";
import { CONTENT_ID, expect, openDemo, playback, test, waitForError, waitForTime } from "./fixtures.js";

// What the player does with the key server's answers in a real browser, cross-origin (page on
// localhost:4173, key server on 127.0.0.1): redirects, Retry-After, one lease at a time, and the
// keys hls.js holds when the player is destroyed.

/** A server on yet another origin that accepts anything (CORS included) and records it. */
async function startForeignOrigin() {
  const seen: { method: string; path: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    req.resume();
    res.writeHead(200, {
      "access-control-allow-origin": String(req.headers.origin ?? "*"),
      "access-control-allow-headers": "authorization, content-type, x-blindcast-lease",
      "access-control-allow-methods": "GET, POST, DELETE",
      "content-type": "application/octet-stream",
    });
    res.end(new Uint8Array(16).fill(7));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    // localhost, not 127.0.0.1: another origin than the key server's.
    origin: `http://localhost:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test("a key server that redirects a key request: the lease goes nowhere else, playback stops with INVALID_RESPONSE", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys();
  const foreign = await startForeignOrigin();
  const proxy = await startFaultProxy(Number(new URL(keys.keysUrl).port), (method, path) =>
    method === "POST" && path === `/keys/${CONTENT_ID}/keys`
      ? { redirect: `${foreign.origin}${path}` }
      : "pass",
  );
  try {
    await openDemo(page, { keysUrl: proxy.keysUrl });
    await waitForError(page);
    expect(proxy.seen.some((s) => s.path === `/keys/${CONTENT_ID}/keys`)).toBe(true);
    // Not even a preflight: Chromium did not follow the redirect, so the lease id went nowhere.
    expect(foreign.seen.map((s) => `${s.method} ${s.headers["x-blindcast-lease"] ?? ""}`)).toEqual([]);
    const state = await playback(page);
    expect(state.errors[0]).toMatchObject({ code: "INVALID_RESPONSE" });
    expect(state.errors[0]?.message).toMatch(/redirected .*keyServerUrl must be the final URL/);
  } finally {
    await proxy.close();
    await foreign.close();
  }
});

test("Retry-After on a 503 is honoured from another origin", async ({ page, startKeys }) => {
  const memory = createMemoryLeaseStore();
  const creates: number[] = [];
  // The store fails the first lease creation: the real server answers 503 with Retry-After: 1.
  const flaky: LeaseStore = {
    ...memory,
    create: async (input) => {
      creates.push(Date.now());
      if (creates.length === 1) throw new Error("store down");
      return memory.create(input);
    },
  };
  const keys = await startKeys({ leaseStore: flaky });
  await openDemo(page, keys);
  await waitForTime(page, 1);
  expect((await playback(page)).errors).toEqual([]);
  expect(keys.records.filter((r) => r.route === "lease_create").map((r) => r.status)).toEqual([503, 201]);
  // The player's own first backoff is 150-300 ms; the server asked for 1 s, and got it.
  const [first = 0, second = 0] = creates;
  expect(second - first).toBeGreaterThanOrEqual(1000);
});

test("maxConcurrentLeases 1 and a load() contentId the stream does not use: the lease moves, playback goes on", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys({ maxConcurrentLeases: 1 });
  // Releases take 300 ms to reach the server (a slow network): the next lease must wait for it.
  const proxy = await startFaultProxy(Number(new URL(keys.keysUrl).port), (method) =>
    method === "DELETE" ? { delayMs: 300 } : "pass",
  );
  try {
    await openDemo(page, { keysUrl: proxy.keysUrl }, { contentId: "trailer" });
    await waitForTime(page, 4.5);
  } finally {
    await proxy.close();
  }
  const state = await playback(page);
  expect(state.errors).toEqual([]);
  const leases = keys.records
    .filter((r) => r.route.startsWith("lease_"))
    .map((r) => `${r.route} ${r.contentId ?? ""} ${r.status}`);
  expect(leases.slice(0, 3)).toEqual([
    "lease_create trailer 201",
    "lease_release  204",
    `lease_create ${CONTENT_ID} 201`,
  ]);
  expect(keys.records.some((r) => r.status === 429)).toBe(false);
});

test("destroy() overwrites the keys hls.js holds (its decrypt data)", async ({ page, startKeys }) => {
  const keys = await startKeys();
  await openDemo(page, keys);
  await waitForTime(page, 4.5);
  const [before, after] = await page.evaluate(async () => {
    const player = window.__blindcast.player as unknown as {
      hls: { levels: { details?: { fragments: { decryptdata: { key: Uint8Array | null } | null }[] } }[] };
      destroy(): Promise<void>;
    };
    // The key views hls.js keeps on its fragments' decrypt data, for every key it loaded.
    const held = player.hls.levels
      .flatMap((level) => level.details?.fragments ?? [])
      .map((frag) => frag.decryptdata?.key)
      .filter((key): key is Uint8Array => key instanceof Uint8Array);
    const hex = () => held.map((key) => Array.from(key, (b) => b.toString(16).padStart(2, "0")).join(""));
    const loaded = hex();
    await player.destroy();
    return [loaded, hex()];
  });
  expect(before.length).toBeGreaterThanOrEqual(2);
  expect(new Set(before).size).toBeGreaterThanOrEqual(2);
  expect(before.every((key) => key !== "0".repeat(32))).toBe(true);
  expect(after).toEqual(before.map(() => "0".repeat(32)));
});
