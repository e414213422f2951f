// 2. Over HTTP: the local key server (blindcast-keys, real leases, audit on) under autocannon
// load on loopback, against a bare node:http server answering 16 constant bytes. Each server runs
// in its own process; the load generator in this one.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { DEMO_MASTER_KEY, DEMO_SALT } from "./lib/fixtures.mjs";
import { alternate, median, round } from "./lib/stats.mjs";

const RUNS = 5;
const SECONDS = 3;
const CONNECTIONS = 16;
const cli = fileURLToPath(new URL("../packages/keys-lambda/dist/node/cli.js", import.meta.url));
// The same key server with auditing off: attributes the cost between the audit trail and the
// rest of the key path.
const NO_AUDIT = `
  Promise.all([
    import("${new URL("../packages/keys-lambda/dist/node/index.js", import.meta.url).pathname}"),
    import("${new URL("../packages/keys-lambda/dist/lease-memory/index.js", import.meta.url).pathname}"),
  ]).then(async ([{ startKeyServer }, { createMemoryLeaseStore }]) => {
    const hex = (text) => Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
    const server = await startKeyServer({
      masterKey: hex(process.env.MASTER_KEY),
      salt: hex(process.env.SALT),
      corsOrigins: "*",
      port: 0,
      leaseStore: createMemoryLeaseStore(),
      audit: false,
      logger: { warn() {}, error: console.error },
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

async function startServer(argv, env) {
  const child = spawn(process.execPath, argv, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  const url = await new Promise((resolve, reject) => {
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

function load(url, headers) {
  return autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers });
}

export async function run() {
  const bare = await startServer(["-e", BARE], {});
  const secrets = { MASTER_KEY: DEMO_MASTER_KEY, SALT: DEMO_SALT };
  const quiet = await startServer(["-e", NO_AUDIT], secrets);
  const keys = await startServer([cli], {
    MASTER_KEY: DEMO_MASTER_KEY,
    SALT: DEMO_SALT,
    CORS_ORIGINS: "*",
    PORT: "0",
  });
  try {
    const leaseFor = async (server) => {
      const lease = await fetch(`${server.url}/leases`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ contentId: "movie-42" }),
      }).then((r) => r.json());
      const headers = { "x-blindcast-lease": lease.leaseId };
      const check = await fetch(`${server.url}/movie-42/7`, { headers });
      if (check.status !== 200) throw new Error(`key server answered ${check.status}`);
      return headers;
    };
    const keyUrl = `${keys.url}/movie-42/7`;
    const withLease = await leaseFor(keys);
    const quietLease = await leaseFor(quiet);
    await load(keyUrl, withLease); // warm-up
    await load(`${quiet.url}/movie-42/7`, quietLease);
    const ours = [];
    const theirs = [];
    const m = await alternate(
      RUNS,
      async () => {
        const r = await load(keyUrl, withLease);
        if (r.non2xx > 0 || r.errors > 0)
          throw new Error(`key server: ${r.non2xx} non-2xx, ${r.errors} errors`);
        ours.push(r);
        return r.requests.average;
      },
      async () => {
        const r = await load(`${bare.url}/movie-42/7`, {});
        theirs.push(r);
        return r.requests.average;
      },
    );
    const quietRuns = [];
    for (let i = 0; i < RUNS; i++)
      quietRuns.push((await load(`${quiet.url}/movie-42/7`, quietLease)).requests.average);
    const quietRate = median(quietRuns);
    const p = (runs, field) =>
      round(runs.map((r) => r.latency[field]).sort((a, b) => a - b)[Math.floor(runs.length / 2)], 2);
    return [
      {
        id: "http",
        name: `Key requests over HTTP (${CONNECTIONS} connections, ${SECONDS} s × ${RUNS})`,
        candidate: `${round(m.candidate)} req/s, p50 ${p(ours, "p50")} ms, p99 ${p(ours, "p99")} ms`,
        baseline: `${round(m.baseline)} req/s, p50 ${p(theirs, "p50")} ms, p99 ${p(theirs, "p99")} ms (bare node:http); the key server with audit off: ${round(quietRate)} req/s (${round(quietRate / m.baseline)})`,
        ratio: round(m.candidate / m.baseline),
        target: "≥ 0.8",
        pass: m.candidate / m.baseline >= 0.8,
        raw: m,
      },
    ];
  } finally {
    await Promise.all([bare.stop(), quiet.stop(), keys.stop()]);
  }
}
