// Which library signs upload URLs (issue 15): the two candidates bundled as a Lambda bundles them
// (esbuild, minified, for the runtime's Node), compared on size and on cold start: time from
// spawning the Lambda runtime's Node to the first presigned URL, against an empty module.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { lambdaNodePath } from "../scripts/lambda-node.mjs";
import { alternate, round } from "./lib/stats.mjs";

const RUNS = 9;
const here = (path) => fileURLToPath(new URL(path, import.meta.url));

async function bundle(entry, dir) {
  const outfile = join(dir, `${entry.replace(/\W/g, "_")}.mjs`);
  await build({
    entryPoints: [here(entry)],
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    target: "node24",
    outfile,
    logLevel: "silent",
    // As scripts/build-lambda.mjs: CommonJS inside (the AWS SDK) needs `require` in an ES module.
    banner: {
      js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);',
    },
  });
  const bytes = readFileSync(outfile);
  return { path: outfile, minified: bytes.length, gzipped: gzipSync(bytes).length };
}

const SIGN = `
  const { presign } = await import(process.env.MODULE);
  const url = presign ? await presign("streams/movie-42/v0/seg0.ts") : "none";
  process.stdout.write("\\nURL:" + url.length + "\\n");`;

function firstUrl(modulePath) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(lambdaNodePath(), ["--input-type=module", "-e", SIGN], {
      env: { PATH: process.env.PATH, MODULE: modulePath },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.once("exit", (code) => {
      if (/URL:\d+\n/.test(out)) resolve(performance.now() - started);
      else reject(new Error(`signing exited ${code}: ${out}`));
    });
  });
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), "blindcast-bench-signer-"));
  try {
    const small = await bundle("fixtures/presign-aws4fetch.mjs", dir);
    const sdk = await bundle("fixtures/presign-aws-sdk.mjs", dir);
    const empty = here("fixtures/empty-handler.mjs");
    const a = await alternate(
      RUNS,
      () => firstUrl(small.path),
      () => firstUrl(empty),
    );
    const b = await alternate(
      RUNS,
      () => firstUrl(sdk.path),
      () => firstUrl(empty),
    );
    const kb = (n) => `${round(n / 1024, 1)} KB`;
    return [
      {
        id: "signer-size",
        name: "Upload URL signer in the bundle: aws4fetch (chosen) vs @aws-sdk/s3-request-presigner",
        candidate: `aws4fetch: ${kb(small.minified)} minified, ${kb(small.gzipped)} gzipped`,
        baseline: `AWS SDK v3: ${kb(sdk.minified)} / ${kb(sdk.gzipped)}`,
        ratio: round(small.gzipped / sdk.gzipped, 3),
        target: "the smaller (ratio < 1)",
        pass: small.gzipped < sdk.gzipped,
        raw: { small, sdk },
      },
      {
        id: "signer-cold-start",
        name: `Cold start to the first presigned URL over an empty module (median of ${RUNS})`,
        candidate: `aws4fetch: +${round(a.candidate - a.baseline, 1)} ms`,
        baseline: `AWS SDK v3: +${round(b.candidate - b.baseline, 1)} ms (empty module ${round(a.baseline, 1)} ms)`,
        ratio: round((a.candidate - a.baseline) / Math.max(b.candidate - b.baseline, 0.1), 2),
        target: "the faster (ratio < 1)",
        pass: a.candidate - a.baseline < b.candidate - b.baseline,
        raw: { aws4fetch: a, awsSdk: b },
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
