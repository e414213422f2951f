import { hexToBytes } from "@blindcast/crypto";
import { DEMO_JWT_SECRET, DEMO_MASTER_KEY, DEMO_SALT } from "@blindcast/demo/demo-values.mjs";
import { demoToken } from "@blindcast/demo/prepare.mjs";
import type { AuditRecord, LeaseStore } from "@blindcast/keys";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { type NodeKeyServerOptions, startKeyServer } from "@blindcast/keys/node";
import { test as base, expect, type Page } from "@playwright/test";

export const PAGE_ORIGIN = "http://localhost:4173";
export const CONTENT_ID = "demo-sample";
export const SRC = `/media/${CONTENT_ID}/master.m3u8`;

export interface KeyServer {
  keysUrl: string;
  /** Every request the server answered, from its audit hook. */
  records: AuditRecord[];
  store: LeaseStore;
}

type Overrides = Partial<Omit<NodeKeyServerOptions, "masterKey">> & { masterKey?: Uint8Array };

export const test = base.extend<{ startKeys: (overrides?: Overrides) => Promise<KeyServer> }>({
  // biome-ignore lint/correctness/noEmptyPattern: Playwright reads fixture dependencies from this destructuring.
  startKeys: async ({}, use) => {
    const running: { close(): Promise<void> }[] = [];
    await use(async (overrides = {}) => {
      const records: AuditRecord[] = [];
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
        audit: (record) => records.push(record),
        logger: { warn() {}, error() {} },
      });
      running.push(server);
      return { keysUrl: server.keysUrl, records, store };
    });
    for (const server of running) await server.close();
  },
});

export { expect };

/**
 * Opens the demo page against a key server; `token: null` means signed out. `contentId` is what
 * the page passes to `load()` (the sample's own by default).
 */
export async function openDemo(
  page: Page,
  keys: Pick<KeyServer, "keysUrl">,
  options: { token?: string | null; contentId?: string } = {},
) {
  const token = options.token === undefined ? await demoToken() : (options.token ?? "");
  const contentId = options.contentId ?? CONTENT_ID;
  const params = new URLSearchParams({ keyServerUrl: keys.keysUrl, src: SRC, contentId, token });
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
      player?: { lease?: { leaseId: string } };
    };
  }
}
