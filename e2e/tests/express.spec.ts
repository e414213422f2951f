import { expect, openDemo, playback, test, waitForError } from "./fixtures.js";

// The demo stream played through `@blindcast/keys/express`: the key routes inside an Express app
// (its own JSON parser, trust proxy and error handler), mounted at /api/v1/keys.

test("Express: the sample plays to the end, each key fetched once, the lease renewed", async ({
  page,
  startExpressKeys,
}) => {
  const keys = await startExpressKeys({ leaseTtlSeconds: 10 });
  await openDemo(page, keys);
  await page.waitForFunction(() => (document.querySelector("video") as HTMLVideoElement).ended, undefined, {
    timeout: 40_000,
  });
  const state = await playback(page);
  expect(state.errors).toEqual([]);
  // 16 s of video: its frames were decoded, so its keys were right.
  expect(state.frames).toBeGreaterThan(300);
  const epochs = state.events.filter((e) => e.name === "keyloaded").map((e) => e.detail.epoch);
  expect(epochs).toEqual(expect.arrayContaining([0, 1, 2, 3]));

  // The first key came with the lease (through express.json()), the others through the title's
  // keys URL (through express.json() too).
  const created = keys.records.find((r) => r.route === "lease_create");
  expect(created).toMatchObject({ status: 201, keys: [0], viewerId: "demo-viewer" });
  const fetched = keys.records.filter((r) => r.route === "title_keys");
  expect(fetched.every((r) => r.status === 200 && r.contentId === "demo-sample")).toBe(true);
  expect(fetched.flatMap((r) => r.keys ?? []).sort()).toEqual([1, 2, 3]);
  const renewals = keys.records.filter((r) => r.route === "lease_renew");
  expect(renewals.length).toBeGreaterThanOrEqual(1);
  expect(renewals.every((r) => r.status === 200)).toBe(true);
  expect(keys.appErrors).toEqual([]);
});

test("Express: signed out, nothing plays and the page shows the key server's refusal", async ({
  page,
  startExpressKeys,
}) => {
  const keys = await startExpressKeys();
  await openDemo(page, keys, { token: null });
  await waitForError(page);
  const state = await playback(page);
  expect(state.errors[0]).toMatchObject({ code: "AUTH_FAILED", reason: "Missing token" });
  expect(state.errorText).toContain("You are not signed in");
  expect(state.frames).toBe(0);
  // Refused by the key server (CORS preflights aside), not by the app around it.
  const answered = keys.records.filter((r) => r.route !== "preflight");
  expect(answered.length).toBeGreaterThan(0);
  expect(answered.every((r) => r.status === 401 && r.reason === "Missing token")).toBe(true);
  expect(keys.appErrors).toEqual([]);
});
