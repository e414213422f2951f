import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LeaseStoreTimeoutError } from "@blindcast/keys";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createSqliteLeaseStore, type SqliteLeaseStore } from "@blindcast/keys/lease-sqlite";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jsonBody, v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

// Another process holds the SQLite file's write lock (a second server on the same file, a
// backup): the store's calls must wait without stopping this process, and give up in time.
const HOLD_MS = 2000;
// Far below HOLD_MS, far above what a busy machine adds to a timer that is not blocked.
const MAX_LOOP_DELAY_MS = 750;

const dir = mkdtempSync(join(tmpdir(), "blindcast-sqlite-lock-"));
const sqliteModule = createRequire(import.meta.url).resolve("better-sqlite3");
const children: ChildProcess[] = [];
const stores: SqliteLeaseStore[] = [];
let files = 0;

afterEach(() => {
  for (const child of children.splice(0)) child.kill();
  for (const store of stores.splice(0)) store.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openStore(busyTimeoutMillis?: number) {
  const path = join(dir, `leases-${files++}.db`);
  const store = createSqliteLeaseStore(path, busyTimeoutMillis === undefined ? {} : { busyTimeoutMillis });
  stores.push(store);
  return { path, store };
}

/** A separate process that takes the write lock, says so, and holds it for `ms`. */
async function holdWriteLock(path: string, ms: number): Promise<void> {
  const script = `
    const Database = require(process.argv[1]);
    const db = new Database(process.argv[2]);
    db.exec("BEGIN IMMEDIATE");
    process.stdout.write("locked\\n");
    setTimeout(() => { db.exec("COMMIT"); db.close(); }, Number(process.argv[3]));`;
  const child = spawn(process.execPath, ["-e", script, sqliteModule, path, String(ms)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the lock holder did not start")), 15_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("locked")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`the lock holder exited (${code})`)));
  });
}

/**
 * The longest the event loop was stopped while `body` ran, in ms: the worst lateness of a timer
 * that ticks every 10 ms (counted from the start, so a stop right away counts too).
 */
async function worstLoopDelay<T>(body: () => Promise<T>): Promise<{ result: T; delayMs: number }> {
  const every = 10;
  let last = performance.now();
  let worst = 0;
  const sample = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last - every);
    last = now;
  };
  const probe = setInterval(sample, every);
  try {
    const result = await body();
    sample();
    return { result, delayMs: worst };
  } finally {
    clearInterval(probe);
  }
}

function keyServer(store: SqliteLeaseStore) {
  return createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    authenticate: () => ({ ok: true, viewerId: "viewer-1" }),
    leaseStore: store,
    audit: false,
    logger: recordingLogger(),
  });
}
const createLease = (server: ReturnType<typeof keyServer>) =>
  server(
    v2Event({
      method: "POST",
      path: "/keys/leases",
      headers: { "content-type": "application/json" },
      body: '{"contentId":"movie-42"}',
    }),
  );
const keyRequest = (server: ReturnType<typeof keyServer>, leaseId: string) =>
  server(v2Event({ path: "/keys/movie-42/7", headers: { "x-blindcast-lease": leaseId } }));

describe("the SQLite lease store while another process holds the write lock", () => {
  it("waits for the lock without stopping the process: other requests are served meanwhile", async () => {
    const { path, store } = openStore();
    const server = keyServer(store);
    const first = await createLease(server);
    expect(first.statusCode).toBe(201);
    const leaseId = String(jsonBody(first).leaseId);

    await holdWriteLock(path, HOLD_MS);
    const started = performance.now();
    const { result, delayMs } = await worstLoopDelay(async () => {
      const waiting = createLease(server);
      // Key requests (reads) while the create waits for the lock: answered, and promptly.
      const keyTimes: number[] = [];
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const asked = performance.now();
        expect((await keyRequest(server, leaseId)).statusCode).toBe(200);
        keyTimes.push(performance.now() - asked);
      }
      return { created: await waiting, createdAfterMs: performance.now() - started, keyTimes };
    });
    // The create went through once the other process let go of the lock.
    expect(result.created.statusCode).toBe(201);
    for (const ms of result.keyTimes) expect(ms).toBeLessThan(MAX_LOOP_DELAY_MS);
    expect(delayMs).toBeLessThan(MAX_LOOP_DELAY_MS);
    console.info(
      `sqlite lock held ${HOLD_MS} ms: create 201 after ${Math.round(result.createdAfterMs)} ms; key requests meanwhile ${result.keyTimes.map(Math.round).join(", ")} ms; worst event-loop delay ${Math.round(delayMs)} ms`,
    );
  }, 30_000);

  it("gives up after busyTimeoutMillis with a store error (503), and works once the lock is free", async () => {
    const { path, store } = openStore(300);
    const server = keyServer(store);
    await holdWriteLock(path, HOLD_MS);
    const started = performance.now();
    const { result, delayMs } = await worstLoopDelay(() => createLease(server));
    const tookMs = performance.now() - started;
    expect(result.statusCode).toBe(503);
    expect(jsonBody(result).code).toBe("store_unavailable");
    expect(tookMs).toBeGreaterThanOrEqual(300);
    expect(tookMs).toBeLessThan(HOLD_MS);
    expect(delayMs).toBeLessThan(MAX_LOOP_DELAY_MS);
    // The store's own error says why.
    await expect(store.create({ contentId: "c", viewerId: "v", ttlSeconds: 60 })).rejects.toBeInstanceOf(
      LeaseStoreTimeoutError,
    );
    // Once the holder is gone, the very same store creates again.
    const holder = children[0];
    if (holder && holder.exitCode === null) await new Promise((resolve) => holder.once("exit", resolve));
    expect((await createLease(server)).statusCode).toBe(201);
    console.info(
      `sqlite busyTimeoutMillis 300: 503 after ${Math.round(tookMs)} ms; worst event-loop delay ${Math.round(delayMs)} ms`,
    );
  }, 30_000);

  it("refuses a busyTimeoutMillis that is not a whole number of milliseconds", () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, "5000"]) {
      expect(() =>
        createSqliteLeaseStore(join(dir, "never.db"), { busyTimeoutMillis: bad as number }),
      ).toThrow(/busyTimeoutMillis must be a whole number from 0 to 2147483647/);
    }
  });
});
