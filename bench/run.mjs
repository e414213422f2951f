// `pnpm bench`: runs every benchmark, prints a table, writes the raw results to
// bench/results/, and the table and machine into BENCHMARKS.md (between its markers).
//   node bench/run.mjs [id-prefix ...]   run only the benchmarks whose module name starts so
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { findPostgresBin } from "../scripts/pg-cluster.mjs";

const MODULES = [
  "derivation",
  "http",
  "cold-start",
  "signer-choice",
  "lease-store",
  "player",
  "player-size",
  "packaging",
];
const only = process.argv.slice(2);
const here = (path) => fileURLToPath(new URL(path, import.meta.url));

function machine() {
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8" }).trim().split("\n")[0];
    } catch {
      return "not found";
    }
  };
  return {
    cpu: `${cpus()[0]?.model ?? "unknown"} × ${cpus().length}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    chromium: version(process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", ["--version"]),
    postgres: version(`${findPostgresBin()}/postgres`, ["--version"]),
    date: new Date().toISOString(),
    // Other work on the machine moves every figure; the load average says how much there was.
    loadAverageAtStart: loadAverage,
  };
}

const round1 = (n) => Math.round(n * 10) / 10;
const loadAverage = loadavg().map(round1);
const results = [];
for (const name of MODULES.filter((m) => only.length === 0 || only.some((o) => m.startsWith(o)))) {
  const started = performance.now();
  process.stderr.write(`bench: ${name}…\n`);
  try {
    const { run } = await import(`./${name}.mjs`);
    for (const result of await run()) results.push({ module: name, ...result });
  } catch (error) {
    results.push({ module: name, id: name, name, error: String(error?.stack ?? error), pass: false });
  }
  process.stderr.write(`bench: ${name} done in ${Math.round((performance.now() - started) / 1000)} s\n`);
}

const rows = results.map((r) =>
  r.error
    ? `| ${r.name} | failed: ${r.error.split("\n")[0]} | | | | ✗ |`
    : `| ${r.name} | ${r.candidate} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.pass ? "✓" : "✗ missed"} |`,
);
const info = { ...machine(), loadAverageAtEnd: loadavg().map(round1) };
const table = [
  `Measured ${info.date} on ${info.cpu}, ${info.memory}, Node ${info.node}, ${info.chromium}, ${info.postgres}; load average (1, 5, 15 min) ${info.loadAverageAtStart.join(", ")} at the start, ${info.loadAverageAtEnd.join(", ")} at the end.`,
  "",
  "| benchmark | Blindcast | baseline (same run) | ratio | target | |",
  "| --- | --- | --- | --- | --- | --- |",
  ...rows,
].join("\n");
console.log(`\n${table}\n`);

mkdirSync(here("results"), { recursive: true });
const record = JSON.stringify({ machine: info, results }, null, 2);
writeFileSync(here(`results/${info.date.replace(/[:.]/g, "-")}.json`), record);
writeFileSync(here("results/latest.json"), record);

if (only.length === 0) {
  const doc = here("../BENCHMARKS.md");
  const text = readFileSync(doc, "utf8");
  const start = "<!-- results:start -->";
  const end = "<!-- results:end -->";
  const updated = `${text.slice(0, text.indexOf(start) + start.length)}\n${table}\n${text.slice(text.indexOf(end))}`;
  writeFileSync(doc, updated);
  console.error("bench: BENCHMARKS.md updated");
}
process.exitCode = results.some((r) => r.error) ? 1 : 0;
