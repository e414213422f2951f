// 1. The key derivation path: the Lambda handler answering GET /keys/:contentId/:epoch in
// process (authenticate, in-memory lease check, audit record built), against raw
// crypto.hkdfSync, what a server written the obvious way pays per key. With and without the
// derived-key cache. For scale, HKDF's expand step alone (one HMAC with the extract step's PRK
// as a KeyObject), the floor of a server that derives every key.
import { execFile } from "node:child_process";
import { createHmac, createSecretKey, hkdfSync } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createKeyDeriver } from "@blindcast/crypto";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { LAMBDA_NODE_MAJOR, lambdaNodePath } from "../scripts/lambda-node.mjs";
import { masterKey, quiet, salt } from "./lib/fixtures.mjs";
import { alternate, cpuRate, median, rate, round } from "./lib/stats.mjs";

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

const NODE_MAJOR = Number(process.versions.node.split(".")[0]);
const CHILD_TIMEOUT_MS = 5 * 60 * 1000;

/**
 * Measured on the Node running the benchmark, and again on the Lambda runtime's Node major (the
 * Lambda templates and the container image run that one): node:crypto's costs differ a lot
 * between majors (hkdfSync is about 2.4 times as fast on Node 24 as on Node 20).
 */
export async function run() {
  const here = await measure();
  if (NODE_MAJOR === LAMBDA_NODE_MAJOR) return here;
  const stdout = await new Promise((resolve, reject) => {
    execFile(
      lambdaNodePath(),
      [fileURLToPath(import.meta.url), "--json"],
      { timeout: CHILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (error, out) => (error ? reject(error) : resolve(out)),
    );
  });
  return [...here, ...JSON.parse(stdout)];
}

async function measure() {
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
    // Per second of CPU time: what other work on the machine takes is not counted against either.
    const m = await alternate(
      RUNS,
      async () => {
        const calls = await cpuRate(call, MS);
        expandRuns.push(await cpuRate(expandOnly, MS / 2));
        return calls;
      },
      () => cpuRate(raw, MS),
    );
    const expand = median(expandRuns);
    results.push({
      id: `derivation-${size ? "cached" : "uncached"}`,
      name: `Key handler in process, ${label}`,
      candidate: `${round(m.candidate / 1000, 1)}k calls/s of CPU`,
      baseline: `${round(m.baseline / 1000, 1)}k hkdfSync/s of CPU; expand alone (one HMAC): ${round(expand / 1000, 1)}k/s (handler ${round(m.candidate / expand)} of it)`,
      ratio: round(m.ratio),
      target: `≥ ${target}`,
      pass: m.ratio >= target,
      raw: { ...m, expandRuns },
    });
  }
  results.push(await webCrypto());
  // Names and ids say which Node measured them, so the two sets of rows can sit in one table.
  return results.map((r) => ({
    ...r,
    id: `${r.id}-node${NODE_MAJOR}`,
    name: `${r.name}, Node ${NODE_MAJOR}`,
  }));
}

// @blindcast/crypto's deriver (packager, browsers, runtimes without node:crypto): the PRK imported
// once as an HMAC key and one HMAC per key, against WebCrypto's HKDF with the master key imported
// once (what createKeyDeriver did before). One call at a time: each goes through libuv's pool.
async function webCrypto() {
  const subtle = globalThis.crypto.subtle;
  const info = (i) => new TextEncoder().encode(`blindcast/v1/epoch/movie-42/${i % EPOCHS}`);
  const hkdfKey = await subtle.importKey("raw", masterKey, "HKDF", false, ["deriveBits"]);
  const before = (i) =>
    subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: info(i) }, hkdfKey, 128);
  const deriver = createKeyDeriver(masterKey, salt);
  const after = (i) => deriver.epochKey("movie-42", i % EPOCHS);
  for (const i of [0, 7, 999]) {
    if (!Buffer.from(await before(i)).equals(await after(i)))
      throw new Error("the two WebCrypto paths differ");
  }
  await rate(after, 100);
  const m = await alternate(
    RUNS,
    () => rate(after, MS / 2),
    () => rate(before, MS / 2),
  );
  return {
    id: "derivation-webcrypto",
    name: "WebCrypto deriver (createKeyDeriver), one key at a time",
    candidate: `${round(m.candidate / 1000, 1)}k keys/s`,
    baseline: `${round(m.baseline / 1000, 1)}k/s WebCrypto HKDF (deriveBits, master key imported once)`,
    ratio: round(m.ratio),
    target: "≥ 1",
    pass: m.ratio >= 1,
    raw: m,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes("--json")) {
  process.stdout.write(JSON.stringify(await measure()));
}
