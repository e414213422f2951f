// Bundles the Lambda entry points into one minified ES module each, for the runtime the templates
// declare (scripts/lambda-node.mjs). Prints each bundle's size.
//   node scripts/build-lambda.mjs                    every variant: deploy/handlers/<variant>.ts to
//                                                    deploy/dist/<variant>/index.mjs (handler
//                                                    `index.handler`, CodeUri deploy/dist/<variant>)
//   node scripts/build-lambda.mjs <entry> <outfile>  one entry point of your own
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { LAMBDA_NODE_MAJOR } from "./lambda-node.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
/** The deployable variants; the templates in deploy/ name their folders in deploy/dist/. */
export const VARIANTS = ["keys", "keys-postgres"];

// CommonJS dependencies (pg and its helpers) call require("events"), require("net") and so on.
// In an ES module esbuild turns those calls into a shim that uses `require` from the enclosing
// scope, and an ES module has none: the bundle threw `Dynamic require of "events" is not
// supported` at load. The module is ESM on purpose (the Postgres handler awaits its store at top
// level, which CommonJS cannot), so it gets a real `require` from createRequire; bundled code
// only ever asks it for Node's built-in modules (everything else is inlined; pg-native, the one
// external, is optional and required only if someone asks pg for its native client). Aliased so
// it cannot clash with a bundled module's own import of createRequire.
const REQUIRE_BANNER =
  'import { createRequire as __blindcastCreateRequire } from "node:module"; ' +
  "const require = __blindcastCreateRequire(import.meta.url);";

export async function bundle(entry, outfile) {
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "node",
    target: `node${LAMBDA_NODE_MAJOR}`,
    banner: { js: REQUIRE_BANNER },
    // The AWS SDK and pg's optional native binding are never needed by the key server.
    external: ["@aws-sdk/*", "pg-native"],
    write: true,
    legalComments: "none",
    logLevel: "warning",
  });
  const bytes = readFileSync(outfile);
  return { outfile, minified: bytes.length, gzipped: gzipSync(bytes).length };
}

function report({ outfile, minified, gzipped }) {
  console.log(`${relative(process.cwd(), outfile)}: ${minified} bytes minified, ${gzipped} bytes gzipped`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args.length === 2) {
    report(await bundle(args[0], args[1]));
  } else if (args.length === 0) {
    for (const variant of VARIANTS) {
      const dir = `${root}deploy/dist/${variant}`;
      // The folder is the function's code asset: nothing but the bundle goes into it.
      rmSync(dir, { recursive: true, force: true });
      report(await bundle(`${root}deploy/handlers/${variant}.ts`, `${dir}/index.mjs`));
    }
  } else {
    console.error("usage: node scripts/build-lambda.mjs [<entry.ts> <outfile.mjs>]");
    process.exit(2);
  }
}
