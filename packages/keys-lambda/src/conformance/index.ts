import assert from "node:assert/strict";
import { isLeaseIdFormat, type LeaseStore } from "../lease-store.js";

/** How the suite gets stores and moves their clock. */
export interface ConformanceHarness<S extends LeaseStore = LeaseStore> {
  /** A store with no leases in it; called once per test. */
  create(): S | Promise<S>;
  /**
   * Moves the store's clock forward. Without it, expiry is tested in real time with 1 s leases
   * (slower, and only as precise as the store's clock).
   */
  advanceTime?(store: S, seconds: number): void | Promise<void>;
  /** Called after each test, e.g. to close the store. */
  dispose?(store: S): void | Promise<void>;
}

/** The two functions the suite needs from a test framework (Vitest, Jest, node:test, Mocha). */
export interface TestFramework {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeout?: number): void;
}

/**
 * Registers the lease store conformance suite: what every `LeaseStore` must do for the key
 * server to be correct. Run it against your own store:
 *
 *     leaseStoreConformance("my store", { create: () => myStore() }, { describe, it })
 */
export function leaseStoreConformance<S extends LeaseStore>(
  name: string,
  harness: ConformanceHarness<S>,
  { describe, it }: TestFramework,
): void {
  const ttl = harness.advanceTime ? 30 : 1;
  const timeout = 20_000;
  const test = (title: string, body: (store: S) => Promise<void>) =>
    it(
      title,
      async () => {
        const store = await harness.create();
        try {
          await body(store);
        } finally {
          await harness.dispose?.(store);
        }
      },
      timeout,
    );
  const expire = async (store: S) => {
    if (harness.advanceTime) await harness.advanceTime(store, ttl + 1);
    else await new Promise((resolve) => setTimeout(resolve, (ttl + 0.5) * 1000));
  };
  const created = async (store: S, contentId = "movie-42", viewerId = "viewer-1", max?: number) => {
    const result = await store.create({ contentId, viewerId, ttlSeconds: ttl, maxConcurrentLeases: max });
    assert.equal(result.ok, true, "create should succeed");
    if (!result.ok) throw new Error("unreachable");
    return result.lease;
  };

  describe(`lease store conformance: ${name}`, () => {
    test("creates a live lease bound to its content and viewer", async (store) => {
      const lease = await created(store);
      assert.equal(lease.contentId, "movie-42");
      assert.equal(lease.viewerId, "viewer-1");
      assert.ok(lease.expiresAt instanceof Date && !Number.isNaN(lease.expiresAt.getTime()));
      const found = await store.get(lease.leaseId);
      assert.equal(found.status, "live");
      if (found.status !== "live") return;
      assert.deepEqual(
        { ...found.lease, expiresAt: found.lease.expiresAt.getTime() },
        { ...lease, expiresAt: lease.expiresAt.getTime() },
      );
    });

    test("gives unguessable ids: at least 128 bits, all distinct", async (store) => {
      const ids = new Set<string>();
      for (let i = 0; i < 50; i++) ids.add((await created(store, "c", `viewer-${i}`)).leaseId);
      assert.equal(ids.size, 50);
      for (const id of ids) {
        assert.ok(isLeaseIdFormat(id), `lease id ${id} is not of the accepted form`);
        const alphabet = /^[0-9a-f]+$/.test(id) ? 16 : /^[0-9a-fA-F-]+$/.test(id) ? 16 : 64;
        const bits = (alphabet === 16 ? id.replaceAll("-", "").length : id.length) * Math.log2(alphabet);
        assert.ok(bits >= 128, `lease id ${id} carries at most ${bits} bits`);
      }
      // Ids must not share long prefixes, as counters or timestamps would.
      const prefixes = new Set([...ids].map((id) => id.slice(0, 6)));
      assert.ok(prefixes.size > 45, "lease ids look sequential");
    });

    test("answers not_found for an unknown lease, everywhere", async (store) => {
      const unknown = "0123456789abcdef0123456789abcdef";
      assert.deepEqual(await store.get(unknown), { status: "not_found" });
      assert.deepEqual(await store.renew({ leaseId: unknown, viewerId: "v", ttlSeconds: ttl }), {
        status: "not_found",
      });
      assert.deepEqual(await store.release({ leaseId: unknown, viewerId: "v" }), { status: "not_found" });
    });

    test("renews a live lease of the same viewer, and only that", async (store) => {
      const lease = await created(store);
      if (harness.advanceTime) await harness.advanceTime(store, ttl / 2);
      const renewed = await store.renew({ leaseId: lease.leaseId, viewerId: "viewer-1", ttlSeconds: ttl });
      assert.equal(renewed.status, "renewed");
      if (renewed.status !== "renewed") return;
      assert.equal(renewed.lease.leaseId, lease.leaseId);
      assert.equal(renewed.lease.contentId, "movie-42");
      assert.ok(renewed.lease.expiresAt.getTime() >= lease.expiresAt.getTime());
      if (harness.advanceTime) assert.ok(renewed.lease.expiresAt.getTime() > lease.expiresAt.getTime());
      assert.deepEqual(await store.renew({ leaseId: lease.leaseId, viewerId: "viewer-2", ttlSeconds: ttl }), {
        status: "wrong_viewer",
      });
    });

    test("expires a lease at its time: get and renew say expired", async (store) => {
      const lease = await created(store);
      await expire(store);
      const found = await store.get(lease.leaseId);
      assert.equal(found.status, "expired");
      assert.deepEqual(await store.renew({ leaseId: lease.leaseId, viewerId: "viewer-1", ttlSeconds: ttl }), {
        status: "expired",
      });
    });

    test("releases a lease of the same viewer only; a released lease is gone", async (store) => {
      const lease = await created(store);
      assert.deepEqual(await store.release({ leaseId: lease.leaseId, viewerId: "viewer-2" }), {
        status: "wrong_viewer",
      });
      assert.equal((await store.get(lease.leaseId)).status, "live");
      assert.deepEqual(await store.release({ leaseId: lease.leaseId, viewerId: "viewer-1" }), {
        status: "released",
      });
      assert.deepEqual(await store.get(lease.leaseId), { status: "not_found" });
      assert.deepEqual(await store.release({ leaseId: lease.leaseId, viewerId: "viewer-1" }), {
        status: "not_found",
      });
    });

    test("caps live leases per viewer; release and expiry free slots", async (store) => {
      const first = await created(store, "a", "viewer-1", 2);
      await created(store, "b", "viewer-1", 2);
      const refused = await store.create({
        contentId: "c",
        viewerId: "viewer-1",
        ttlSeconds: ttl,
        maxConcurrentLeases: 2,
      });
      assert.equal(refused.ok, false);
      if (!refused.ok) assert.ok(refused.activeLeases >= 2);
      await created(store, "c", "viewer-2", 2);
      await store.release({ leaseId: first.leaseId, viewerId: "viewer-1" });
      await created(store, "c", "viewer-1", 2);
      await expire(store);
      await created(store, "d", "viewer-1", 2);
      await created(store, "e", "viewer-1", 2);
    });

    test("holds the cap under many simultaneous creates", async (store) => {
      const attempts = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          store.create({ contentId: `c${i}`, viewerId: "racer", ttlSeconds: ttl, maxConcurrentLeases: 5 }),
        ),
      );
      assert.equal(attempts.filter((a) => a.ok).length, 5);
      assert.equal(attempts.filter((a) => !a.ok).length, 19);
    });

    test("answers ping, when it has one, without touching leases", async (store) => {
      if (store.ping === undefined) return;
      const lease = await created(store);
      await store.ping();
      await store.ping();
      const found = await store.get(lease.leaseId);
      assert.equal(found.status, "live");
    });

    test("stores any viewer and content strings exactly", async (store) => {
      const viewerId = `O'Brien "quoted" ; DROP TABLE x; -- \\ \u00e9\u{1F600}`;
      const lease = await created(store, "A.b_c~d-9", viewerId, 3);
      const found = await store.get(lease.leaseId);
      assert.equal(found.status, "live");
      if (found.status === "live") assert.equal(found.lease.viewerId, viewerId);
      assert.equal(
        (await store.renew({ leaseId: lease.leaseId, viewerId, ttlSeconds: ttl })).status,
        "renewed",
      );
    });
  });
}
