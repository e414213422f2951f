// Bundles deploy/sam/handler.ts and its dependencies into one minified ES module,
// deploy/sam/dist/handler.mjs, the CodeUri of template.yaml. Prints its size.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const entry = process.argv[2] ?? `${root}deploy/sam/handler.ts`;
const outfile = process.argv[3] ?? `${root}deploy/sam/dist/handler.mjs`;
mkdirSync(dirname(outfile), { recursive: true });

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  minify: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // The AWS SDK and pg's optional native binding are never needed by the key server.
  external: ["@aws-sdk/*", "pg-native"],
  write: true,
  metafile: true,
  legalComments: "none",
});

const [output] = Object.entries(result.metafile.outputs);
const bytes = readFileSync(output[0]);
console.log(`${output[0]}: ${bytes.length} bytes minified, ${gzipSync(bytes).length} bytes gzipped`);
