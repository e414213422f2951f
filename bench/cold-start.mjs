// 3. Cold start and size of the bundled Lambda handlers: bytes minified and gzipped, and the time
// from spawning Node (the Lambda runtime's major, as the functions run) to the first answered
// invocation, against Node loading an empty handler. The Postgres variant is loaded and invoked
// too (a key request without a lease, answered before any database is asked). Sizes are what a
// cold start loads (the main chunk, index.mjs), and beside it every file of the bundle, with the
// chunks loaded only on first use (the upload signer, a JWKS fetcher).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import { bundle as buildBundle } from "../scripts/build-lambda.mjs";
import { lambdaNodePath } from "../scripts/lambda-node.mjs";
import { DEMO_JWT_SECRET, DEMO_MASTER_KEY, DEMO_SALT } from "./lib/fixtures.mjs";
import { alternate, median, round } from "./lib/stats.mjs";

const RUNS = 15;
const here = (path) => fileURLToPath(new URL(path, import.meta.url));

// Imports the handler and answers one API Gateway event, as the Lambda runtime would.
// Also reports how long the import and the first invocation took, measured inside the process
// (with process.hrtime: the performance global would load perf_hooks before the handler does).
const INVOKE = `
  const ms = () => Number(process.hrtime.bigint()) / 1e6;
  const started = ms();
  const { handler } = await import(process.env.HANDLER);
  const imported = ms();
  const result = await handler({
    version: "2.0", rawPath: "/keys/movie-42/7",
    headers: { authorization: "Bearer " + process.env.TOKEN, origin: "https://app.example.com" },
    requestContext: { http: { method: "GET" }, stage: "$default" },
  });
  const answered = ms();
  process.stdout.write("\\nSTATUS:" + result.statusCode + " " + (imported - started) + " " + (answered - imported) + "\\n");`;

/** Built as scripts/build-lambda.mjs builds the deployed bundles, in a folder of its own. */
async function bundle(entry, dir) {
  const out = join(dir, entry.replace(/\W/g, "_"), "index.mjs");
  const { main, total, files } = await buildBundle(entry, out);
  return { path: out, ...main, total, files: files.length };
}

function coldStart(handlerPath, env) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(lambdaNodePath(), ["--input-type=module", "-e", INVOKE], {
      env: { PATH: process.env.PATH, HANDLER: handlerPath, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /STATUS:(\d+) (\S+) (\S+)\n/.exec(out);
      if (match) {
        const [, status, importMs, firstMs] = match;
        resolve({
          ms: performance.now() - started,
          status: Number(status),
          importMs: Number(importMs),
          firstMs: Number(firstMs),
        });
      }
    });
    child.once("exit", (code) => {
      if (!/STATUS:\d+ /.test(out)) reject(new Error(`invocation exited ${code}: ${out}`));
    });
  });
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), "blindcast-bench-bundle-"));
  try {
    const sam = await bundle(here("../deploy/handlers/keys.ts"), dir);
    const minimal = await bundle(here("fixtures/minimal-handler.ts"), dir);
    const withPg = await bundle(here("../deploy/handlers/keys-postgres.ts"), dir);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("viewer-1")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(DEMO_JWT_SECRET));
    const env = {
      MASTER_KEY: DEMO_MASTER_KEY,
      SALT: DEMO_SALT,
      CORS_ORIGINS: "https://app.example.com",
      JWT_SECRET: DEMO_JWT_SECRET,
      TOKEN: token,
    };
    const empty = here("fixtures/empty-handler.mjs");
    const first = await coldStart(sam.path, env);
    if (first.status !== 200) throw new Error(`the bundled handler answered ${first.status}`);
    // No lease in the request: 403 lease_required, without a connection (none is listening there).
    const pgFirst = await coldStart(withPg.path, {
      ...env,
      DATABASE_URL: "postgres://blindcast@127.0.0.1:9/none",
    });
    if (pgFirst.status !== 403) throw new Error(`the bundled Postgres handler answered ${pgFirst.status}`);
    const split = { candidate: [], baseline: [] };
    const m = await alternate(
      RUNS,
      async () => {
        const run = await coldStart(sam.path, env);
        split.candidate.push(run);
        return run.ms;
      },
      async () => {
        const run = await coldStart(empty, env);
        split.baseline.push(run);
        return run.ms;
      },
    );
    const part = (side, field) => round(median(split[side].map((run) => run[field])), 1);
    const overhead = m.candidate - m.baseline;
    const kb = (n) => `${round(n / 1024, 1)} KB`;
    const all = (b) => `${kb(b.total.minified)} / ${kb(b.total.gzipped)} in all`;
    return [
      {
        id: "bundle-size",
        name: "Lambda bundle, deploy/handlers/keys (JWT auth), without pg: main chunk (what a cold start loads)",
        candidate: `${kb(sam.minified)} minified, ${kb(sam.gzipped)} gzipped (${all(sam)}, with the chunks loaded on first use: upload signer, JWKS)`,
        baseline: `minimal handler: ${kb(minimal.minified)} / ${kb(minimal.gzipped)} (${all(minimal)}); keys-postgres (with pg, loaded and invoked): ${kb(withPg.minified)} / ${kb(withPg.gzipped)} (${all(withPg)}), first answer ${round(pgFirst.ms, 1)} ms`,
        ratio: round(sam.minified / (40 * 1024)),
        target: "≤ 40 KB minified (ratio to 40 KB ≤ 1)",
        pass: sam.minified <= 40 * 1024,
        raw: { sam, minimal, withPg, withPgFirstAnswerMs: pgFirst.ms },
      },
      {
        id: "cold-start",
        name: `Cold start to first answered invocation (median of ${RUNS})`,
        candidate: `${round(m.candidate, 1)} ms (keys handler, JWT verified, key derived): import ${part("candidate", "importMs")} ms, first answer ${part("candidate", "firstMs")} ms`,
        baseline: `${round(m.baseline, 1)} ms (empty handler): import ${part("baseline", "importMs")} ms, first answer ${part("baseline", "firstMs")} ms`,
        ratio: round(m.candidate / m.baseline),
        target: `overhead ≤ 15 ms (measured: ${round(overhead, 1)} ms)`,
        pass: overhead <= 15,
        raw: { ...m, split },
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
