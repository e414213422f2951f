// Zips a prebuilt bundle folder into the archive the service files here deploy (`package.artifact`):
// Lambda takes code as a zip, and the Serverless Framework packages only files under its own
// folder, so it cannot pick up deploy/dist/<variant>/index.mjs itself.
//   node deploy/serverless/zip-bundle.mjs                  deploy/dist/<variant>/ to deploy/dist/<variant>.zip,
//                                                          for every variant built
//   node deploy/serverless/zip-bundle.mjs <dir> <zipfile>  one folder of your own
// The archive holds the folder's files at its root (handler `index.handler`) with a fixed
// timestamp and mode, so the same bundle gives the same bytes on any machine and the framework deploys
// new code only when the bundle changed.
import { createWriteStream, existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import yazl from "yazl";

// Built from local time and written as a DOS timestamp only (no Unix-time field), because zip's DOS
// fields are local time: this way the bytes do not depend on the machine's time zone either.
const FIXED_MTIME = new Date(2000, 0, 1);
const VARIANTS = ["keys", "keys-postgres"];

/** Zips every file under `dir` (paths relative to it) into `zipfile`; returns the files added. */
export async function zipBundle(dir, zipfile) {
  const files = listFiles(dir);
  if (!files.includes("index.mjs")) {
    throw new Error(`${dir} has no index.mjs: build the bundles first (node scripts/build-lambda.mjs)`);
  }
  const zip = new yazl.ZipFile();
  for (const file of files) {
    zip.addFile(join(dir, file), file, {
      mtime: FIXED_MTIME,
      forceDosTimestamp: true,
      mode: 0o100644,
      compress: true,
    });
  }
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(zipfile));
  return files;
}

function listFiles(dir, base = dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? listFiles(path, base) : [relative(base, path)];
    });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [dir, zipfile] = process.argv.slice(2);
  const jobs = dir
    ? [[dir, zipfile ?? `${dir.replace(/\/+$/, "")}.zip`]]
    : VARIANTS.map((variant) => fileURLToPath(new URL(`../dist/${variant}`, import.meta.url)))
        .filter((folder) => existsSync(folder))
        .map((folder) => [folder, `${folder}.zip`]);
  if (jobs.length === 0) {
    console.error("zip-bundle: no bundles in deploy/dist/: run node scripts/build-lambda.mjs first");
    process.exit(1);
  }
  for (const [folder, out] of jobs) {
    try {
      const files = await zipBundle(folder, out);
      console.log(`${out}: ${files.join(", ")} (${statSync(out).size} bytes)`);
    } catch (error) {
      console.error(`zip-bundle: ${error.message}`);
      process.exit(1);
    }
  }
}
