import type { AuditRecord } from "@blindcast/keys";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore, LeaseStoreFullError } from "@blindcast/keys/lease-memory";
import { describe, expect, it } from "vitest";
import { v2Event } from "./support/events.js";
import { masterKey, recordingLogger, salt } from "./support/fixtures.js";

const create = (viewer: string, contentId = "movie-42") =>
  v2Event({
    method: "POST",
    path: "/keys/leases",
    headers: { authorization: `Bearer ${viewer}`, "content-type": "application/json" },
    body: JSON.stringify({ contentId }),
  });

function floodServer(maxLeases?: number) {
  const statuses: number[] = [];
  const handler = createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    authenticate: (event) => ({ ok: true, viewerId: event.headers?.authorization?.slice(7) ?? "" }),
    leaseStore: createMemoryLeaseStore(maxLeases === undefined ? {} : { maxLeases }),
    leaseTtlSeconds: 86_400,
    audit: (record: AuditRecord) => statuses.push(record.status),
    logger: recordingLogger(),
  });
  return { handler, statuses };
}

describe("lease floods", () => {
  it("one viewer creating leases as fast as it can holds 16, then gets 429", async () => {
    const { handler, statuses } = floodServer();
    for (let i = 0; i < 5000; i++) await handler(create("mallory", `title-${i}`));
    expect(statuses.filter((s) => s === 201)).toHaveLength(16);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5000 - 16);
    // Others are not locked out by one viewer's flood.
    expect((await handler(create("alice"))).statusCode).toBe(201);
  });

  it("many viewers fill the memory store only up to maxLeases; then 503, and no growth", async () => {
    const { handler, statuses } = floodServer(2000);
    for (let i = 0; i < 6000; i++) await handler(create(`viewer-${i}`));
    expect(statuses.filter((s) => s === 201)).toHaveLength(2000);
    expect(statuses.filter((s) => s === 503)).toHaveLength(4000);
    const full = await handler(create("late-viewer"));
    expect(full.statusCode).toBe(503);
    expect(full.headers["retry-after"]).toBeDefined();
  });

  it("expired leases give way when the store is full", async () => {
    let t = 1_000_000;
    const store = createMemoryLeaseStore({ now: () => t, maxLeases: 3 });
    const input = (viewerId: string) => ({ contentId: "c", viewerId, ttlSeconds: 10 });
    for (const v of ["a", "b", "c"]) expect((await store.create(input(v))).ok).toBe(true);
    await expect(store.create(input("d"))).rejects.toBeInstanceOf(LeaseStoreFullError);
    t += 10_001;
    expect((await store.create(input("d"))).ok).toBe(true);
  });

  it("sweeps a large store a slice at a time: no single write pays for the whole sweep", async () => {
    let t = 1_000_000;
    const store = createMemoryLeaseStore({ now: () => t, maxLeases: 1_000_000 });
    const ids: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const created = await store.create({ contentId: "c", viewerId: `v${i}`, ttlSeconds: 10 });
      if (created.ok) ids.push(created.lease.leaseId);
    }
    const swept = async () => {
      let gone = 0;
      for (const id of ids) if ((await store.get(id)).status === "not_found") gone++;
      return gone;
    };
    // All expired and past the grace period: writes now sweep them, a bounded slice per write
    // (counted, not timed: the work one write does is what holds the event loop).
    t += 11 * 60_000;
    await store.create({ contentId: "c", viewerId: "late-0", ttlSeconds: 10 });
    const afterOne = await swept();
    expect(afterOne).toBeGreaterThan(0);
    expect(afterOne).toBeLessThanOrEqual(1000);
    for (let i = 1; i <= 20; i++)
      await store.create({ contentId: "c", viewerId: `late-${i}`, ttlSeconds: 10 });
    expect(await swept()).toBe(ids.length);
  });
});
