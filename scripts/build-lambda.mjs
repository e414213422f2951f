// Bundles the Lambda entry points into minified ES modules, for the runtime the templates declare
// (scripts/lambda-node.mjs). Prints each bundle's size.
//   node scripts/build-lambda.mjs                    every variant: deploy/handlers/<variant>.ts to
//                                                    deploy/dist/<variant>/index.mjs and its chunks
//                                                    (handler `index.handler`, CodeUri: the folder)
//   node scripts/build-lambda.mjs <entry> <outfile>  one entry point of your own; chunks go to
//                                                    chunks/ beside <outfile> (a folder of its
//                                                    own: earlier builds' chunks stay there)
//
// Code the key server imports only when it needs it (publishing with its URL signer, a JWKS
// fetcher) goes into chunks of its own (esbuild's code splitting), loaded on first use: a function
// without publishing never reads them. Deploy the whole folder: the templates' CodeUri, the CDK
// construct's codeDirectory and deploy/serverless/zip-bundle.mjs all take the folder.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, relative } from "node:path";
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

/**
 * Bundles `entry` to `outfile` (an `.mjs`), its lazily imported code to chunks beside it. Returns
 * the sizes: `main`, what a cold start reads (the entry file and the chunks it imports
 * statically), and `total`, every file written.
 */
export async function bundle(entry, outfile) {
  const outdir = dirname(outfile);
  const extension = extname(outfile) || ".mjs";
  const name = basename(outfile, extension);
  mkdirSync(outdir, { recursive: true });
  const { metafile } = await build({
    entryPoints: { [name]: entry },
    outdir,
    // Every file an .mjs: Lambda's Node reads a .js outside a "type": "module" package as CommonJS.
    outExtension: { ".js": extension },
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    metafile: true,
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
  const outputs = metafile.outputs;
  const key = (path) => relative(process.cwd(), path);
  // What importing the entry loads: it, and every chunk reached by static imports (a chunk
  // shared by the entry and a lazily imported one is one of these).
  const atStart = new Set();
  const visit = (path) => {
    if (atStart.has(path)) return;
    atStart.add(path);
    for (const { path: imported, kind } of outputs[path]?.imports ?? []) {
      if (kind === "import-statement" && outputs[imported]) visit(imported);
    }
  };
  visit(key(join(outdir, `${name}${extension}`)));
  const files = Object.keys(outputs).map((path) => {
    let bytes = readFileSync(path);
    // esbuild puts the banner on every file; a file that never names `require` (all of the keys
    // variant's, pg's chunk aside) is left without it, and without importing node:module.
    const code = bytes.toString("utf8");
    if (code.startsWith(REQUIRE_BANNER) && !/\brequire\b/.test(code.slice(REQUIRE_BANNER.length))) {
      bytes = Buffer.from(code.slice(REQUIRE_BANNER.length).replace(/^\n/, ""));
      writeFileSync(path, bytes);
    }
    return { path, minified: bytes.length, gzipped: gzipSync(bytes).length, atStart: atStart.has(path) };
  });
  const sum = (list) => ({
    minified: list.reduce((n, file) => n + file.minified, 0),
    gzipped: list.reduce((n, file) => n + file.gzipped, 0),
  });
  return { outfile, files, main: sum(files.filter((file) => file.atStart)), total: sum(files) };
}

function report({ outfile, files, main, total }) {
  const lazy = files.filter((file) => !file.atStart).map((file) => basename(file.path));
  console.log(
    `${relative(process.cwd(), outfile)}: ${main.minified} bytes minified, ${main.gzipped} bytes gzipped loaded at start` +
      (lazy.length === 0
        ? ""
        : `; ${total.minified} / ${total.gzipped} with the chunks loaded on first use (${lazy.join(", ")})`),
  );
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
