// 1. The key derivation path: the Lambda handler answering GET /keys/:contentId/:epoch in
// process (authenticate, in-memory lease check, audit record built), against raw
// crypto.hkdfSync, what a server written the obvious way pays per key. With and without the
// derived-key cache. For scale, HKDF's expand step alone (one HMAC with the extract step's PRK
// as a KeyObject), the floor of a server that derives every key.
import { createHmac, createSecretKey, hkdfSync } from "node:crypto";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { masterKey, quiet, salt } from "./lib/fixtures.mjs";
import { alternate, median, rate, round } from "./lib/stats.mjs";

const RUNS = 5;
const MS = 700;
// Requests cycle through this many distinct epochs: with the cache on, all but the first
// round are hits, as when many viewers watch the same stream.
const EPOCHS = 1000;

async function handlerFor(keyCacheSize) {
  const store = createMemoryLeaseStore();
  const created = await store.create({ contentId: "movie-42", viewerId: "viewer-1", ttlSeconds: 3600 });
  const handler = createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "https://app.example.com",
    authenticate: (event) =>
      event.headers?.authorization === "Bearer bench-token"
        ? { ok: true, viewerId: "viewer-1" }
        : { ok: false, status: 401, reason: "no" },
    leaseStore: store,
    keyCacheSize,
    audit: () => {},
    logger: quiet,
  });
  const events = Array.from({ length: EPOCHS }, (_, epoch) => ({
    version: "2.0",
    rawPath: `/prod/keys/movie-42/${epoch}`,
    headers: {
      authorization: "Bearer bench-token",
      "x-blindcast-lease": created.lease.leaseId,
      origin: "https://app.example.com",
    },
    requestContext: { http: { method: "GET" }, stage: "prod", requestId: "r" },
  }));
  return async (i) => {
    const result = await handler(events[i % EPOCHS]);
    if (result.statusCode !== 200) throw new Error(`handler answered ${result.statusCode}`);
  };
}

export async function run() {
  const raw = (i) => hkdfSync("sha256", masterKey, salt, `blindcast/v1/epoch/movie-42/${i % EPOCHS}`, 16);
  const prk = createSecretKey(createHmac("sha256", salt).update(masterKey).digest());
  const expandOnly = (i) =>
    createHmac("sha256", prk)
      .update(`blindcast/v1/epoch/movie-42/${i % EPOCHS}\u0001`)
      .digest();
  for (let i = 0; i < EPOCHS; i++) {
    if (!Buffer.from(raw(i)).equals(expandOnly(i).subarray(0, 16)))
      throw new Error("expand differs from HKDF");
  }
  const results = [];
  for (const [label, size, target] of [
    ["without cache", 0, 2],
    ["with cache", 10_000, 2],
  ]) {
    const call = await handlerFor(size);
    await rate(call, 200); // warm-up
    const expandRuns = [];
    const m = await alternate(
      RUNS,
      async () => {
        const calls = await rate(call, MS);
        expandRuns.push(await rate(expandOnly, MS / 2));
        return calls;
      },
      () => rate(raw, MS),
    );
    const expand = median(expandRuns);
    results.push({
      id: `derivation-${size ? "cached" : "uncached"}`,
      name: `Key handler in process, ${label}`,
      candidate: `${round(m.candidate / 1000, 1)}k calls/s`,
      baseline: `${round(m.baseline / 1000, 1)}k hkdfSync/s; expand alone (one HMAC): ${round(expand / 1000, 1)}k/s (handler ${round(m.candidate / expand)} of it)`,
      ratio: round(m.ratio),
      target: `≥ ${target}`,
      pass: m.ratio >= target,
      raw: { ...m, expandRuns },
    });
  }
  return results;
}
