import { startFaultProxy } from "./fault-proxy.js";
import { expect, keysAnswered, openDemo, playback, test, waitForError, waitForTime } from "./fixtures.js";

// The player under key server faults: a proxy between page and key server fails or holds
// requests. Keys and leases are the real server's.

test("intermittent 500s and slow answers: playback continues through retries", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys();
  const attempts = new Map<string, number>();
  const proxy = await startFaultProxy(Number(new URL(keys.keysUrl).port), (method, path) => {
    const n = (attempts.get(`${method} ${path}`) ?? 0) + 1;
    attempts.set(`${method} ${path}`, n);
    // Every request's first attempt fails, its second is slow, later ones pass.
    return n === 1 ? { status: 500 } : n === 2 ? { delayMs: 700 } : "pass";
  });
  try {
    await openDemo(page, { ...keys, keysUrl: proxy.keysUrl });
    await waitForTime(page, 8.5);
    const state = await playback(page);
    expect(state.errors).toEqual([]);
    expect(state.frames).toBeGreaterThan(150);
    const failed = proxy.seen.filter((s) => s.fault !== "pass" && "status" in s.fault);
    expect(failed.map((s) => `${s.method} ${s.path}`)).toEqual(
      expect.arrayContaining(["POST /keys/leases", "POST /keys/demo-sample/keys"]),
    );
    // Every epoch key was still served by the real server, after its retries.
    const served = keys.records.filter((r) => r.route === "title_keys").flatMap(keysAnswered);
    expect(served).toEqual(expect.arrayContaining([1, 2]));
  } finally {
    await proxy.close();
  }
});

test("renewal failing briefly: playback continues", async ({ page, startKeys }) => {
  const keys = await startKeys({ leaseTtlSeconds: 10 });
  let renewals = 0;
  const proxy = await startFaultProxy(Number(new URL(keys.keysUrl).port), (_, path) => {
    if (path !== "/keys/leases/renew") return "pass";
    renewals++;
    return renewals <= 2 ? { status: 503 } : "pass";
  });
  try {
    await openDemo(page, { ...keys, keysUrl: proxy.keysUrl });
    await waitForTime(page, 11.5);
    const state = await playback(page);
    expect(state.errors).toEqual([]);
    expect(renewals).toBeGreaterThanOrEqual(3);
    expect(state.events.some((e) => e.name === "leaserenewed")).toBe(true);
  } finally {
    await proxy.close();
  }
});

test("renewal failing until the lease expires: playback stops with the lease error", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys({ leaseTtlSeconds: 10 });
  const proxy = await startFaultProxy(Number(new URL(keys.keysUrl).port), (_, path) =>
    path === "/keys/leases/renew" ? { status: 503 } : "pass",
  );
  try {
    await openDemo(page, { ...keys, keysUrl: proxy.keysUrl });
    await waitForError(page, 20_000);
    const state = await playback(page);
    expect(state.errors[0]).toMatchObject({ code: "LEASE_EXPIRED" });
    expect(state.events.some((e) => e.name === "leaselost")).toBe(true);
    expect(state.paused).toBe(true);
    expect(state.errorText).toContain("Your viewing session expired");
    // Renewals were retried, not given up on at the first failure.
    expect(proxy.seen.filter((s) => s.path === "/keys/leases/renew").length).toBeGreaterThan(2);
  } finally {
    await proxy.close();
  }
});
