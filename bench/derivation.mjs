// 1. The key derivation path: the Lambda handler answering GET /keys/:contentId/:epoch in
// process (authenticate, in-memory lease check, audit record built), against raw
// crypto.hkdfSync, the floor of any correct server. With and without the derived-key cache.
import { hkdfSync } from "node:crypto";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { masterKey, quiet, salt } from "./lib/fixtures.mjs";
import { alternate, rate, round } from "./lib/stats.mjs";

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
  const results = [];
  for (const [label, size] of [
    ["without cache", 0],
    ["with cache", 10_000],
  ]) {
    const call = await handlerFor(size);
    await rate(call, 200); // warm-up
    const m = await alternate(
      RUNS,
      () => rate(call, MS),
      () => rate(raw, MS),
    );
    results.push({
      id: `derivation-${size ? "cached" : "uncached"}`,
      name: `Key handler in process, ${label}`,
      candidate: `${round(m.candidate / 1000, 1)}k calls/s`,
      baseline: `${round(m.baseline / 1000, 1)}k hkdfSync/s`,
      ratio: round(m.candidate / m.baseline),
      target: "≥ 0.5",
      pass: m.candidate / m.baseline >= 0.5,
      raw: m,
    });
  }
  return results;
}
