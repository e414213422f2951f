// Bundles the Lambda entry points into minified ES modules, for the runtime the templates declare
// (scripts/lambda-node.mjs). Prints each bundle's size.
//   node scripts/build-lambda.mjs                    every variant: deploy/handlers/<variant>.ts to
//                                                    deploy/dist/<variant>/index.mjs and its chunks
//                                                    (handler `index.handler`, CodeUri: the folder)
//   node scripts/build-lambda.mjs <entry> <outfile>  one entry point of your own; chunks go to
//                                                    chunks/ beside <outfile> (a folder of its
//                                                    own: earlier builds' chunks stay there)
//
// A module the key server imports with import() (the upload signer with aws4fetch, jose's JWKS
// fetcher) gets a file of its own in chunks/, read only on first use: a function without
// publishing never reads the signer's. Deploy the whole folder: the templates' CodeUri, the CDK
// construct's codeDirectory and deploy/serverless/zip-bundle.mjs all take the folder.
import { createHash } from "node:crypto";
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
 * Bundles `entry` to `outfile` (an `.mjs`), and each module it imports with import() to a file of
 * its own in chunks/ beside it. Returns the sizes: `main`, what a cold start reads (the entry's
 * file), and `total`, every file written.
 *
 * Not esbuild's code splitting: it moves the code a lazily imported module shares with the entry
 * (here jose's internals, the publish constants) into a third file, which every cold start must
 * import too, and on Node 24 each extra module file cost more import time (about 1.5 ms) than the
 * bytes it kept out saved (BENCHMARKS.md). Each lazy file is bundled whole instead, with its own
 * copy of what it shares with the entry: the key server's lazily imported modules share no
 * classes or state with the rest (core/publish/uploads.ts, jwt/remote-jwks.ts say so), and
 * test/lambda-bundle.test.ts runs them from their files.
 */
export async function bundle(entry, outfile) {
  const outdir = dirname(outfile);
  const extension = extname(outfile) || ".mjs";
  /** Lazily imported module (resolved path) → its file in chunks/; one file however often imported. */
  const chunks = new Map();
  const pending = [];
  const chunkFor = (path) => {
    let file = chunks.get(path);
    if (file === undefined) {
      const id = createHash("sha256").update(relative(root, path)).digest("hex").slice(0, 8);
      file = join(outdir, "chunks", `${basename(path, extname(path))}-${id}${extension}`);
      chunks.set(path, file);
      pending.push([path, file]);
    }
    return file;
  };
  const written = [];
  const write = async (input, output) => {
    mkdirSync(dirname(output), { recursive: true });
    await build({
      entryPoints: [input],
      outfile: output,
      bundle: true,
      minify: true,
      format: "esm",
      platform: "node",
      target: `node${LAMBDA_NODE_MAJOR}`,
      banner: { js: REQUIRE_BANNER },
      // The AWS SDK and pg's optional native binding are never needed by the key server.
      external: ["@aws-sdk/*", "pg-native"],
      plugins: [lazyImports(output, chunkFor)],
      write: true,
      legalComments: "none",
      logLevel: "warning",
    });
    let bytes = readFileSync(output);
    // A file that never names `require` (all of the keys variant's) goes without the banner, and
    // without importing node:module.
    const code = bytes.toString("utf8");
    if (code.startsWith(REQUIRE_BANNER) && !/\brequire\b/.test(code.slice(REQUIRE_BANNER.length))) {
      bytes = Buffer.from(code.slice(REQUIRE_BANNER.length).replace(/^\n/, ""));
      writeFileSync(output, bytes);
    }
    written.push({ path: output, minified: bytes.length, gzipped: gzipSync(bytes).length });
  };
  await write(entry, outfile);
  while (pending.length > 0) await write(...pending.shift());
  const total = {
    minified: written.reduce((n, file) => n + file.minified, 0),
    gzipped: written.reduce((n, file) => n + file.gzipped, 0),
  };
  const [main] = written;
  return { outfile, files: written, main: { minified: main.minified, gzipped: main.gzipped }, total };
}

/**
 * An esbuild plugin: `import("…")` of a module in the bundle becomes an import of its file in
 * chunks/ (`chunkFor` names it and queues it to be bundled), relative to `output`, the file being
 * written.
 */
function lazyImports(output, chunkFor) {
  const self = Symbol("lazy-imports");
  return {
    name: "lazy-imports",
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind !== "dynamic-import" || args.pluginData === self) return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: self,
        });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        if (resolved.external) return { path: resolved.path, external: true };
        const file = relative(dirname(output), chunkFor(resolved.path)).split("\\").join("/");
        return { path: `./${file}`, external: true };
      });
    },
  };
}

function report({ outfile, files, main, total }) {
  const lazy = files.slice(1).map((file) => basename(file.path));
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
