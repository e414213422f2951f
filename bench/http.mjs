// 2. Over HTTP: blindcast-keys (in-memory leases, audit on, an allowed Origin) under autocannon
// load on loopback, 16 connections, requests cycling over 1,000 epochs of one title; against
//   - a bare node:http server answering 16 constant bytes (the floor of any server),
//   - the same key route written the obvious way on node:http by hand, Express 5, Hono and
//     Fastify 5 (bench/peers/: Origin refused with 403, in-memory lease checked, hkdfSync, one
//     JSON audit line per request), each first checked to answer the same statuses and bytes.
// Ours runs as shipped (derived-key cache on) and without its cache (every request derives: the
// peers' work); a third instance with audit off attributes the audit trail's cost. Each server
// runs in its own process, the load generator in this one; every round measures every server once,
// in a rotated order, so drift on a noisy machine spreads over all of them.
import { spawn } from "node:child_process";
import { hkdfSync } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { LAMBDA_NODE_MAJOR, lambdaNodePath } from "../scripts/lambda-node.mjs";
import { DEMO_MASTER_KEY, DEMO_SALT } from "./lib/fixtures.mjs";
import { median, pairedRatio, round } from "./lib/stats.mjs";

// BENCH_HTTP_ROUNDS and BENCH_HTTP_SECONDS lengthen the run, to see through a busy machine.
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 2);
const WARM_UP_SECONDS = 1;
const CONNECTIONS = 16;
const EPOCHS = 1000;
const CONTENT_ID = "movie-42";
const ORIGIN = "https://app.example.com";
const dist = (path) => new URL(`../packages/keys-lambda/dist/${path}`, import.meta.url).pathname;
const peer = (name) => fileURLToPath(new URL(`peers/${name}.mjs`, import.meta.url));

// blindcast-keys with options the CLI does not take: the cache off, or the audit off.
const ours = (options) => `
  Promise.all([import("${dist("node/index.js")}"), import("${dist("lease-memory/index.js")}")]).then(
    async ([{ startKeyServer }, { createMemoryLeaseStore }]) => {
      const hex = (text) => Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
      const server = await startKeyServer({
        masterKey: hex(process.env.MASTER_KEY),
        salt: hex(process.env.SALT),
        corsOrigins: process.env.CORS_ORIGINS,
        port: 0,
        leaseStore: createMemoryLeaseStore(),
        leaseTtlSeconds: Number(process.env.LEASE_TTL_SECONDS),
        logger: { warn() {}, error: console.error },
        ...${JSON.stringify(options)},
      });
      console.error("listening on " + server.keysUrl);
    });`;
const BARE = `
  const http = require("node:http");
  const key = Buffer.alloc(16, 7);
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "cache-control": "no-store" });
    res.end(key);
  });
  server.listen(0, "127.0.0.1", () => console.error("listening on http://127.0.0.1:" + server.address().port + "/keys"));`;

const SERVERS = [
  { id: "bare", label: "bare node:http, 16 constant bytes", argv: ["-e", BARE], checked: false },
  { id: "ours", label: "blindcast-keys (cache on, as shipped)", argv: [dist("node/cli.js")] },
  { id: "oursUncached", label: "blindcast-keys, keyCacheSize 0", argv: ["-e", ours({ keyCacheSize: 0 })] },
  { id: "oursNoAudit", label: "blindcast-keys, audit off", argv: ["-e", ours({ audit: false })] },
  { id: "nodeHttp", label: "node:http by hand", argv: [peer("node-http")], peer: true },
  { id: "express", label: "Express 5", argv: [peer("express")], peer: true, framework: true },
  { id: "hono", label: "Hono (node-server)", argv: [peer("hono")], peer: true, framework: true },
  { id: "fastify", label: "Fastify 5", argv: [peer("fastify")], peer: true, framework: true },
];

// Every server runs on the Node the deployments run (the container image and the Lambda runtime
// are both of LAMBDA_NODE_MAJOR), not necessarily the one running the benchmark: node:crypto's
// and node:http's costs differ between majors. BENCH_SERVER_NODE names another binary.
const SERVER_NODE = process.env.BENCH_SERVER_NODE ?? lambdaNodePath();
const SERVER_NODE_LABEL = process.env.BENCH_SERVER_NODE ? "BENCH_SERVER_NODE" : `Node ${LAMBDA_NODE_MAJOR}`;

async function startServer(argv) {
  const child = spawn(SERVER_NODE, argv, {
    // Leases outlive the whole run: nothing renews them here, as a player would.
    env: {
      PATH: process.env.PATH,
      MASTER_KEY: DEMO_MASTER_KEY,
      SALT: DEMO_SALT,
      CORS_ORIGINS: ORIGIN,
      PORT: "0",
      LEASE_TTL_SECONDS: "3600",
    },
    // Audit lines go to /dev/null: written, as in production, but not kept.
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15_000);
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once("exit", (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  return {
    url,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

/**
 * CPU time (user + system, µs) a process has used so far, from /proc; undefined where there is
 * none. Per request, it is the server's own cost: on a busy machine, less disturbed than its rate.
 */
function cpuMicros(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    // utime and stime, in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

const expectedKey = (epoch) =>
  Buffer.from(
    hkdfSync(
      "sha256",
      Buffer.from(DEMO_MASTER_KEY, "hex"),
      Buffer.from(DEMO_SALT, "hex"),
      `blindcast/v1/epoch/${CONTENT_ID}/${epoch}`,
      16,
    ),
  );

async function createLease(url, contentId = CONTENT_ID) {
  const response = await fetch(`${url}/leases`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: ORIGIN },
    body: JSON.stringify({ contentId }),
  });
  if (response.status !== 201) throw new Error(`POST /keys/leases answered ${response.status}`);
  return (await response.json()).leaseId;
}

/**
 * The same answers from every server: statuses for each refusal, and the contract's key bytes
 * (with the CORS headers a browser needs) for each valid request. Throws on the first difference.
 */
async function verify(server, label) {
  const lease = await createLease(server.url);
  const otherLease = await createLease(server.url, "other-title");
  const get = (path, headers) => fetch(`${server.url}${path}`, { headers });
  const cases = [
    [
      "disallowed Origin",
      `/${CONTENT_ID}/7`,
      { origin: "https://evil.example", "x-blindcast-lease": lease },
      403,
    ],
    ["no lease", `/${CONTENT_ID}/7`, { origin: ORIGIN }, 403],
    ["unknown lease", `/${CONTENT_ID}/7`, { origin: ORIGIN, "x-blindcast-lease": "A".repeat(22) }, 403],
    ["lease for other content", `/${CONTENT_ID}/7`, { origin: ORIGIN, "x-blindcast-lease": otherLease }, 403],
    ["non-canonical epoch", `/${CONTENT_ID}/07`, { origin: ORIGIN, "x-blindcast-lease": lease }, 400],
    ["epoch out of range", `/${CONTENT_ID}/4294967296`, { origin: ORIGIN, "x-blindcast-lease": lease }, 400],
    ["invalid contentId", "/a%20b/7", { origin: ORIGIN, "x-blindcast-lease": lease }, 400],
  ];
  for (const [what, path, headers, status] of cases) {
    const response = await get(path, headers);
    await response.arrayBuffer();
    if (response.status !== status)
      throw new Error(`${label}, ${what}: answered ${response.status}, not ${status}`);
  }
  for (const epoch of [0, 7, 999, 4294967295]) {
    const response = await get(`/${CONTENT_ID}/${epoch}`, { origin: ORIGIN, "x-blindcast-lease": lease });
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200 || !body.equals(expectedKey(epoch)))
      throw new Error(`${label}, epoch ${epoch}: answered ${response.status} and not the contract's key`);
    if (response.headers.get("access-control-allow-origin") !== ORIGIN)
      throw new Error(`${label}: no Access-Control-Allow-Origin on a key`);
  }
  return lease;
}

/** Requests per second over SECONDS, cycling over EPOCHS epochs of one title. */
async function load(server, seconds = SECONDS) {
  let next = 0;
  const headers = server.lease ? { origin: ORIGIN, "x-blindcast-lease": server.lease } : {};
  const result = await autocannon({
    url: server.url,
    connections: CONNECTIONS,
    duration: seconds,
    headers,
    requests: [
      {
        method: "GET",
        setupRequest: (request) => {
          request.path = `/keys/${CONTENT_ID}/${next++ % EPOCHS}`;
          return request;
        },
      },
    ],
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(
      `${server.label}: ${result.non2xx} non-2xx answers (${JSON.stringify(result.statusCodeStats)}), ${result.errors} errors under load`,
    );
  return result;
}

export async function run() {
  const running = [];
  try {
    for (const spec of SERVERS) {
      const server = { ...spec, ...(await startServer(spec.argv)), runs: [], latencies: [], cpu: [] };
      running.push(server);
      if (spec.checked !== false) server.lease = await verify(server, spec.label);
    }
    for (const server of running) await load(server, WARM_UP_SECONDS);
    for (let round = 0; round < ROUNDS; round++) {
      // Rotated each round: no server always follows the same one.
      for (let i = 0; i < running.length; i++) {
        const server = running[(i + round) % running.length];
        const cpuBefore = cpuMicros(server.pid);
        const result = await load(server);
        const cpuAfter = cpuMicros(server.pid);
        if (cpuBefore !== undefined && cpuAfter !== undefined)
          server.cpu.push((cpuAfter - cpuBefore) / result.requests.total);
        server.runs.push(result.requests.average);
        server.latencies.push(result.latency);
      }
    }
  } finally {
    await Promise.all(running.map((server) => server.stop()));
  }

  const by = Object.fromEntries(running.map((s) => [s.id, s]));
  const rate = (id) => median(by[id].runs);
  // Ratios are medians over rounds of the two servers' rates in that round.
  const ratio = (a, b) => pairedRatio(by[a].runs, by[b].runs);
  const latency = (id) => {
    const pick = (field) => round(median(by[id].latencies.map((l) => l[field])), 2);
    return `p50 ${pick("p50")} ms, p99 ${pick("p99")} ms`;
  };
  const rps = (id) => `${Math.round(rate(id)).toLocaleString("en")} req/s`;
  // The server's CPU per request, the least over rounds: the round other work disturbed least.
  const cpu = (id) => (by[id].cpu.length ? Math.min(...by[id].cpu) : Number.NaN);
  const us = (id) => `${round(cpu(id), 1)} µs`;
  const raw = Object.fromEntries(running.map((s) => [s.id, { label: s.label, runs: s.runs, cpu: s.cpu }]));
  const window = `${CONNECTIONS} connections, ${EPOCHS} epochs, ${SECONDS} s × ${ROUNDS}, servers on ${SERVER_NODE_LABEL}`;
  const results = [
    {
      id: "http",
      name: `Key requests over HTTP, as shipped (${window})`,
      candidate: `${rps("ours")}, ${latency("ours")}`,
      baseline: `${rps("bare")}, ${latency("bare")} (bare node:http, 16 constant bytes); audit off: ${rps("oursNoAudit")} (${round(ratio("oursNoAudit", "bare"))}); without cache: ${rps("oursUncached")} (${round(ratio("oursUncached", "bare"))}); server CPU per request: ${us("ours")} against ${us("bare")} (${round(cpu("bare") / cpu("ours"))}), audit off ${us("oursNoAudit")}, without cache ${us("oursUncached")}`,
      ratio: round(ratio("ours", "bare")),
      target: "≥ 0.8",
      pass: ratio("ours", "bare") >= 0.8,
      raw,
    },
  ];
  const peers = running.filter((s) => s.peer);
  const best = peers.filter((s) => s.framework).reduce((a, b) => (rate(a.id) >= rate(b.id) ? a : b));
  for (const server of peers) {
    const equalWork = ratio("oursUncached", server.id);
    const asShipped = ratio("ours", server.id);
    // Ahead in both modes; and against the best framework, twice as fast on equal work.
    const needed = server === best ? 2 : 1;
    results.push({
      id: `http-peer-${server.id}`,
      name: `Key route over HTTP against ${server.label} (same checks and answers, hkdfSync, audit line; ${SERVER_NODE_LABEL})`,
      candidate: `without cache ${rps("oursUncached")}, ${us("oursUncached")} CPU per request; as shipped ${rps("ours")} (${round(asShipped)}×), ${us("ours")}`,
      baseline: `${rps(server.id)}, ${latency(server.id)}, ${us(server.id)} CPU per request (${round(cpu(server.id) / cpu("oursUncached"))}× ours without cache)`,
      ratio: round(equalWork),
      target:
        server === best
          ? "equal work ≥ 2 (best framework peer), ahead as shipped"
          : "ahead in both modes (ratio: equal work, ours without cache)",
      pass: equalWork >= needed && asShipped >= 1,
      raw: { equalWork, asShipped },
    });
  }
  return results;
}
