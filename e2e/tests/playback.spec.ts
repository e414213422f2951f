import type { LeaseStore } from "@blindcast/keys";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { expect, keysAnswered, openDemo, playback, test, waitForError, waitForTime } from "./fixtures.js";

// The sample: 16 s, 8 segments of 2 s, a new key epoch every 2 segments (epochs 0-3, boundaries
// at 4, 8 and 12 s).

test("1. the encrypted sample plays through key rotations, frames decoded, no error", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys();
  await openDemo(page, keys);
  await waitForTime(page, 8.5);
  const state = await playback(page);
  expect(state.errors).toEqual([]);
  expect(state.frames).toBeGreaterThan(150);
  const epochs = state.events.filter((e) => e.name === "keyloaded").map((e) => e.detail.epoch);
  expect(epochs).toEqual(expect.arrayContaining([0, 1, 2]));
  await expect(page.locator("#status")).toHaveText("Playing.");
  await expect(page.locator("#keys li")).toHaveCount(4);
});

test("2. each (contentId, epoch) key is requested from the server exactly once", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys();
  await openDemo(page, keys);
  await page.waitForFunction(() => (document.querySelector("video") as HTMLVideoElement).ended, undefined, {
    timeout: 40_000,
  });
  // The first key comes with the lease (asked for in the lease request), the others through the
  // title's keys URL.
  const withLease = keys.records.filter((r) => r.route === "lease_create").flatMap((r) => r.keys ?? []);
  expect(withLease).toEqual([0]);
  const keyRecords = keys.records.filter((r) => r.route !== "preflight" && !r.route.startsWith("lease_"));
  expect(keyRecords.map((r) => `${r.route} ${r.contentId}:${r.status}`)).toEqual(
    keyRecords.map(() => "title_keys demo-sample:200"),
  );
  expect(keys.records.flatMap(keysAnswered).sort()).toEqual([0, 1, 2, 3]);
  expect((await playback(page)).errors).toEqual([]);
});

test("3. with a short lease TTL, the lease is created at start and renewed during playback", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys({ leaseTtlSeconds: 10 });
  await openDemo(page, keys);
  await waitForTime(page, 11.5);
  const leaseRoutes = keys.records.filter((r) => r.route.startsWith("lease_"));
  expect(leaseRoutes[0]).toMatchObject({ route: "lease_create", status: 201, viewerId: "demo-viewer" });
  const renewals = leaseRoutes.filter((r) => r.route === "lease_renew");
  expect(renewals.length).toBeGreaterThanOrEqual(2);
  expect(renewals.every((r) => r.status === 200)).toBe(true);
  const state = await playback(page);
  expect(state.events.filter((e) => e.name === "leaserenewed").length).toBe(renewals.length);
  expect(state.errors).toEqual([]);
  await expect(page.locator("#lease-renewals")).not.toHaveText("0");
});

for (const [name, token, reason] of [
  ["signed out (no token)", null, "Missing token"],
  ["a bad token", "not-a-valid-token", "Invalid token"],
] as const) {
  test(`4. ${name}: nothing plays and the page shows the refusal`, async ({ page, startKeys }) => {
    const keys = await startKeys();
    await openDemo(page, keys, { token });
    await waitForError(page);
    const state = await playback(page);
    expect(state.errors[0]).toMatchObject({ code: "AUTH_FAILED", reason });
    expect(state.errorText).toContain("You are not signed in");
    expect(state.errorText).toContain(reason);
    expect(state.frames).toBe(0);
    expect(state.currentTime).toBe(0);
    expect(keys.records.some((r) => r.status === 200 || r.status === 201)).toBe(false);
  });
}

test("5a. a lease released on the server stops playback with a lease error", async ({ page, startKeys }) => {
  const keys = await startKeys({ leaseTtlSeconds: 10 });
  await openDemo(page, keys);
  await waitForTime(page, 1);
  const leaseId = await page.evaluate(() => window.__blindcast.player?.lease?.leaseId);
  expect(await keys.store.release({ leaseId: leaseId ?? "", viewerId: "demo-viewer" })).toEqual({
    status: "released",
  });
  await waitForError(page, 15_000);
  const stopped = await playback(page);
  expect(stopped.errors[0]).toMatchObject({ code: "LEASE_LOST", reason: "Lease not found" });
  expect(stopped.events.some((e) => e.name === "leaselost")).toBe(true);
  expect(stopped.paused).toBe(true);
  expect(stopped.errorText).toContain("Your viewing session was ended");
  await page.waitForTimeout(1000);
  expect((await playback(page)).currentTime).toBe(stopped.currentTime);
  expect(stopped.currentTime).toBeLessThan(15);
});

test("5b. a lease that expires on the server stops playback with a lease error", async ({
  page,
  startKeys,
}) => {
  const memory = createMemoryLeaseStore();
  // The server's store says the lease has expired when the player comes to renew it.
  const expiring: LeaseStore = { ...memory, renew: async () => ({ status: "expired" }) };
  const keys = await startKeys({ leaseTtlSeconds: 10, leaseStore: expiring });
  await openDemo(page, keys);
  await waitForError(page, 20_000);
  const state = await playback(page);
  expect(state.errors[0]).toMatchObject({ code: "LEASE_EXPIRED", reason: "Lease expired" });
  expect(state.paused).toBe(true);
  expect(keys.records.find((r) => r.route === "lease_renew")).toMatchObject({ status: 410 });
});

test("6. a server with another master key yields a decryption error, not garbage frames", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys({ masterKey: crypto.getRandomValues(new Uint8Array(32)) });
  await openDemo(page, keys);
  await waitForError(page);
  const state = await playback(page);
  expect(state.errors[0]).toMatchObject({ code: "DECRYPTION_FAILED" });
  expect(state.errorText).toContain("could not be decrypted");
  expect(state.frames).toBe(0);
});

test("7. a page from an origin not in corsOrigins gets no keys", async ({ page, startKeys }) => {
  const keys = await startKeys({ corsOrigins: "https://app.example.com" });
  await openDemo(page, keys);
  await waitForError(page);
  const state = await playback(page);
  expect(state.errors[0]?.code).toBe("KEY_SERVER_UNAVAILABLE");
  expect(state.frames).toBe(0);
  expect(keys.records.length).toBeGreaterThan(0);
  expect(keys.records.every((r) => r.status === 403 && r.reason === "Origin not allowed")).toBe(true);
});

test("8. startup: the lease and first key requests run in parallel with the playlist requests", async ({
  page,
  startKeys,
}) => {
  const keys = await startKeys();
  // A fixed 300 ms on every playlist makes "in parallel" measurable on loopback.
  await page.route("**/*.m3u8", async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    await route.continue();
  });
  const started = new Map<string, number>();
  const answered = new Map<string, number>();
  const name = (url: string) => new URL(url).pathname.replace(/^.*\/(keys|media)\//, "$1/");
  page.on("request", (request) => {
    if (!started.has(name(request.url()))) started.set(name(request.url()), Date.now());
  });
  page.on("response", (response) => {
    if (!answered.has(name(response.url()))) answered.set(name(response.url()), Date.now());
  });
  await openDemo(page, keys);
  await waitForTime(page, 0.5);

  const master = "media/demo-sample/master.m3u8";
  const media = "media/demo-sample/index.m3u8";
  const lease = "keys/leases";
  for (const key of [master, media, lease]) expect(started.get(key), key).toBeDefined();
  // The lease leaves while the multivariant playlist is still on its way...
  expect(started.get(lease)).toBeLessThan(answered.get(master) ?? 0);
  // ...and brings the first key, in hand before the media playlist that names it has arrived.
  expect(answered.get(lease)).toBeLessThan(answered.get(media) ?? 0);
  expect(keys.records.find((r) => r.route === "lease_create")).toMatchObject({ status: 201, keys: [0] });
  // Not asked for again on its own.
  const titleKeys = keys.records.filter((r) => r.route === "title_keys");
  expect(titleKeys.flatMap((r) => r.keys ?? [])).not.toContain(0);
  expect((await playback(page)).errors).toEqual([]);
});

test("9. each key server URL is preflighted once: every later key request and renewal reuses it", async ({
  page,
  startKeys,
}) => {
  // Browsers cache a CORS preflight per URL, and Chromium only for requests that do not bypass
  // the HTTP cache: the player's keys all go through one URL per title, with the default cache
  // mode, so a seek to a key not in hand costs one round trip, not two.
  const keys = await startKeys({ leaseTtlSeconds: 10 });
  await openDemo(page, keys);
  await waitForTime(page, 11.5); // past the renewals at 5 s and 10 s
  const preflights = keys.records.filter((r) => r.route === "preflight");
  // POST /keys/leases, POST /keys/demo-sample/keys, POST /keys/leases/renew: one each.
  expect(preflights).toHaveLength(3);
  const titleKeys = keys.records.filter((r) => r.route === "title_keys");
  expect(titleKeys.every((r) => r.status === 200)).toBe(true);
  // Keys 1 to 3 in two requests or more, and, at the renewal after they were all in hand, the
  // URL used again with no keys (what keeps its preflight cached through a long idle stretch).
  expect(titleKeys.filter((r) => (r.keys ?? []).length > 0).length).toBeGreaterThanOrEqual(2);
  expect(titleKeys.filter((r) => r.keys?.length === 0).length).toBeGreaterThanOrEqual(1);
  expect((await playback(page)).errors).toEqual([]);
});
