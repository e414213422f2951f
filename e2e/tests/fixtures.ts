import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hexToBytes } from "@blindcast/crypto";
import { DEMO_JWT_SECRET, DEMO_MASTER_KEY, DEMO_SALT } from "@blindcast/demo/demo-values.mjs";
import { demoToken } from "@blindcast/demo/prepare.mjs";
import type { AuditRecord, LeaseStore } from "@blindcast/keys";
import { createExpressKeyServer, type ExpressKeyServerOptions } from "@blindcast/keys/express";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { type NodeKeyServerOptions, startKeyServer } from "@blindcast/keys/node";
import { test as base, expect, type Page } from "@playwright/test";
import express, { type ErrorRequestHandler } from "express";

export const PAGE_ORIGIN = "http://localhost:4173";
export const CONTENT_ID = "demo-sample";
export const SRC = `/media/${CONTENT_ID}/master.m3u8`;

/** An audit record and when the server had its answer (`performance.now()` in this process). */
export type TimedRecord = AuditRecord & { at: number };

export interface KeyServer {
  keysUrl: string;
  /** Every request the server answered, from its audit hook. */
  records: TimedRecord[];
  store: LeaseStore;
}

type Overrides = Partial<Omit<NodeKeyServerOptions, "masterKey">> & { masterKey?: Uint8Array };

/** The key server inside an Express app, with what reached the app's own error handler. */
export interface ExpressKeys extends KeyServer {
  appErrors: unknown[];
}

type ExpressOverrides = Partial<Omit<ExpressKeyServerOptions, "masterKey">> & { masterKey?: Uint8Array };

export const test = base.extend<{
  startKeys: (overrides?: Overrides) => Promise<KeyServer>;
  startExpressKeys: (overrides?: ExpressOverrides) => Promise<ExpressKeys>;
}>({
  // biome-ignore lint/correctness/noEmptyPattern: Playwright reads fixture dependencies from this destructuring.
  startKeys: async ({}, use) => {
    const running: { close(): Promise<void> }[] = [];
    await use(async (overrides = {}) => {
      const records: TimedRecord[] = [];
      const store = overrides.leaseStore ?? createMemoryLeaseStore();
      const server = await startKeyServer({
        masterKey: hexToBytes(DEMO_MASTER_KEY),
        salt: hexToBytes(DEMO_SALT),
        corsOrigins: PAGE_ORIGIN,
        authenticate: createJwtAuthenticator({ secret: DEMO_JWT_SECRET }),
        leaseStore: store,
        leaseTtlSeconds: 30,
        ...overrides,
        port: 0,
        audit: (record) => records.push({ ...record, at: performance.now() }),
        logger: { warn() {}, error() {} },
      });
      running.push(server);
      return { keysUrl: server.keysUrl, records, store };
    });
    for (const server of running) await server.close();
  },
  // An app as users write one: its own JSON parser and trust proxy, the key routes mounted under
  // a path of its choosing, its own error handler after them.
  // biome-ignore lint/correctness/noEmptyPattern: Playwright reads fixture dependencies from this destructuring.
  startExpressKeys: async ({}, use) => {
    const running: { close(): void; closeAllConnections(): void }[] = [];
    await use(async (overrides = {}) => {
      const records: TimedRecord[] = [];
      const appErrors: unknown[] = [];
      const store = overrides.leaseStore ?? createMemoryLeaseStore();
      const app = express();
      app.set("trust proxy", "loopback");
      app.use(express.json());
      app.use(
        "/api/v1/keys",
        createExpressKeyServer({
          masterKey: hexToBytes(DEMO_MASTER_KEY),
          salt: hexToBytes(DEMO_SALT),
          corsOrigins: PAGE_ORIGIN,
          authenticate: createJwtAuthenticator({ secret: DEMO_JWT_SECRET }),
          leaseStore: store,
          leaseTtlSeconds: 30,
          ...overrides,
          audit: (record) => records.push({ ...record, at: performance.now() }),
          logger: { warn() {}, error() {} },
        }),
      );
      const onError: ErrorRequestHandler = (error, _req, res, _next) => {
        appErrors.push(error);
        res.status(500).send("the app's error handler");
      };
      app.use(onError);
      const server = createServer(app);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      running.push(server);
      const { port } = server.address() as AddressInfo;
      return { keysUrl: `http://127.0.0.1:${port}/api/v1/keys`, records, store, appErrors };
    });
    for (const server of running) {
      server.close();
      server.closeAllConnections();
    }
  },
});

export { expect };

/**
 * Opens the demo page against a key server; `token: null` means signed out. `contentId` and
 * `firstKey` are what the page passes to `load()` (the sample's own, and the player's default);
 * `src` the playlist it plays (the sample by default).
 */
export async function openDemo(
  page: Page,
  keys: Pick<KeyServer, "keysUrl">,
  options: { token?: string | null; contentId?: string; src?: string; firstKey?: string } = {},
) {
  const token = options.token === undefined ? await demoToken() : (options.token ?? "");
  const contentId = options.contentId ?? CONTENT_ID;
  const src = options.src ?? SRC;
  const params = new URLSearchParams({ keyServerUrl: keys.keysUrl, src, contentId, token });
  if (options.firstKey !== undefined) params.set("firstKey", options.firstKey);
  await page.goto(`/?${params}`);
}

export interface PlaybackState {
  currentTime: number;
  paused: boolean;
  frames: number;
  errors: { code: string; message: string; reason?: string }[];
  events: { name: string; detail: Record<string, unknown> }[];
  errorText: string | null;
}

export function playback(page: Page): Promise<PlaybackState> {
  return page.evaluate(() => {
    const video = document.querySelector("video") as HTMLVideoElement;
    const box = document.getElementById("error") as HTMLElement;
    return {
      currentTime: video.currentTime,
      paused: video.paused,
      frames: video.getVideoPlaybackQuality().totalVideoFrames,
      errors: window.__blindcast.errors,
      events: window.__blindcast.events.map(({ name, detail }) => ({ name, detail })),
      errorText: box.hidden ? null : box.textContent,
    };
  });
}

/**
 * The keys (epochs; `null` the content key) a key server record answered: on a key route, with a
 * new lease, or through the title's keys URL (`POST /keys/{contentId}/keys`, the player's).
 */
export function keysAnswered(r: AuditRecord): (number | null | undefined)[] {
  if ((r.route === "epoch_key" || r.route === "content_key") && r.status === 200) return [r.epoch];
  if ((r.route === "title_keys" && r.status === 200) || (r.route === "lease_create" && r.status === 201))
    return r.keys ?? [];
  return [];
}

/**
 * When the key server had each epoch's key answered (first time), whether on its own route, with
 * a new lease, or through the title's keys URL.
 */
export function keysInHand(records: TimedRecord[]): Map<number, number> {
  const inHand = new Map<number, number>();
  for (const r of records) {
    const epochs = keysAnswered(r);
    for (const epoch of epochs) {
      if (typeof epoch === "number" && !inHand.has(epoch)) inHand.set(epoch, r.at);
    }
  }
  return inHand;
}

export async function waitForTime(page: Page, seconds: number, timeout = 40_000) {
  await page.waitForFunction(
    (t) => (document.querySelector("video") as HTMLVideoElement).currentTime > t,
    seconds,
    {
      timeout,
    },
  );
}

export async function waitForError(page: Page, timeout = 40_000) {
  await page.waitForFunction(() => window.__blindcast.errors.length > 0, undefined, { timeout });
}

declare global {
  interface Window {
    __blindcast: {
      errors: { code: string; message: string; reason?: string }[];
      events: { name: string; at: number; detail: Record<string, unknown> }[];
      player?: {
        lease?: { leaseId: string };
        hls: {
          on(event: string, listener: (event: string, data: { details: string }) => void): void;
        };
      };
    };
  }
}

/**
 * Opens a live stream with the starting epoch's key asked for with the lease, records hls.js
 * stalls, and waits until ten 1 s epoch boundaries have played through after playback started.
 */
export async function playLiveThroughRotations(
  page: Page,
  keys: Pick<KeyServer, "keysUrl">,
  src: string,
  contentId: string,
): Promise<{ stalls: string[]; state: PlaybackState }> {
  await openDemo(page, keys, { src, contentId, firstKey: "playlist" });
  await page.waitForFunction(() => window.__blindcast.player !== undefined);
  await page.evaluate(() => {
    const stalls: string[] = [];
    Object.assign(window, { stalls });
    window.__blindcast.player?.hls.on("hlsError", (_event, data) => {
      if (data.details === "bufferStalledError") stalls.push(data.details);
    });
  });
  await page.waitForFunction(() => window.__blindcast.events.some((e) => e.name === "playing"), undefined, {
    timeout: 15_000,
  });
  const started = await page.evaluate(
    () => (document.querySelector("video") as HTMLVideoElement).currentTime,
  );
  // Ten epoch boundaries (1 s each) played through.
  await page.waitForFunction(
    (t) => (document.querySelector("video") as HTMLVideoElement).currentTime > t,
    started + 10.2,
    { timeout: 20_000 },
  );
  const stalls = await page.evaluate(() => (window as unknown as { stalls: string[] }).stalls);
  return { stalls, state: await playback(page) };
}

/** What a live playback through `playLiveThroughRotations` is held to, in both live tests. */
export interface LivePlayback {
  keys: Pick<KeyServer, "records">;
  state: PlaybackState;
  stalls: string[];
  /** When each epoch's first segment was requested, in order; the first is the starting epoch. */
  firstRequested: Map<number, number>;
  /** The newest media sequence requested, and the newest published. */
  lastRequested: number;
  newest: number;
}

/**
 * One lease, created with the starting epoch's key; every later epoch's key in hand before its
 * first segment was requested, over ten rotations at least, each key fetched once; no
 * rebuffering, stall or error once playing; at the live edge; the lease renewed, never lost.
 */
export async function expectSmoothLivePlayback(page: Page, live: LivePlayback): Promise<void> {
  const { keys, state, stalls, firstRequested, lastRequested, newest } = live;
  const [startEpoch] = firstRequested.keys();

  // One lease, created with the key of the epoch playback starts in first.
  const creations = keys.records.filter((r) => r.route === "lease_create");
  expect(creations).toHaveLength(1);
  expect(creations[0]).toMatchObject({ status: 201 });
  expect(creations[0]?.keys?.[0]).toBe(startEpoch);

  // Every later epoch's key was in hand before its first segment was requested: fetched ahead,
  // at least ten rotations of them. (The starting epoch's key comes with the lease, which
  // leaves when the first playlist is read, as hls.js may request the first segment at once.)
  const inHand = keysInHand(keys.records);
  const rotations = [...firstRequested].filter(([epoch]) => epoch !== startEpoch);
  expect(rotations.length).toBeGreaterThanOrEqual(10);
  const late = rotations.filter(([epoch, at]) => !((inHand.get(epoch) ?? Infinity) < at)).map(([e]) => e);
  expect(late, "epochs whose key was not in hand before their first segment was requested").toEqual([]);
  // Each key fetched once.
  const fetched = keys.records.flatMap(keysAnswered);
  expect(new Set(fetched).size).toBe(fetched.length);

  // No rebuffering once playing, no hls.js stall, no error; at the live edge all along.
  const firstPlaying = state.events.findIndex((e) => e.name === "playing");
  expect(state.events.slice(firstPlaying).filter((e) => e.name === "waiting")).toEqual([]);
  expect(stalls).toEqual([]);
  expect(state.errors).toEqual([]);
  // It keeps up with the stream: segments are requested as they are published (a playlist
  // refresh a target duration apart may not have seen the newest one or two yet).
  expect(lastRequested).toBeGreaterThanOrEqual(newest - 2);

  // The lease lives on as long as the viewer watches: renewed, never lost.
  const renewals = keys.records.filter((r) => r.route === "lease_renew");
  expect(renewals.length).toBeGreaterThanOrEqual(2);
  expect(renewals.every((r) => r.status === 200)).toBe(true);
  const after = await playback(page);
  expect(after.events.filter((e) => e.name === "leaserenewed")).toHaveLength(renewals.length);
  expect(after.events.some((e) => e.name === "leaselost")).toBe(false);
  expect(after.errors).toEqual([]);
}
