// 7. What @blindcast/player adds on top of hls.js, in bytes gzipped: two minified bundles, one
// using hls.js alone, one using the player (which includes hls.js), for the full and light builds.
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { round } from "./lib/stats.mjs";

async function size(contents) {
  const result = await build({
    stdin: { contents, resolveDir: new URL(".", import.meta.url).pathname, loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2020",
    write: false,
    legalComments: "none",
  });
  const bytes = result.outputFiles[0].contents;
  return { minified: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length };
}

export async function run() {
  const results = [];
  for (const [label, hlsImport, playerImport] of [
    ["full", `import Hls from "hls.js";`, `import { createPlayer } from "@blindcast/player";`],
    ["light", `import Hls from "hls.js/light";`, `import { createPlayer } from "@blindcast/player/light";`],
  ]) {
    const hls = await size(`${hlsImport} globalThis.out = Hls;`);
    const player = await size(`${playerImport} globalThis.out = createPlayer;`);
    const added = player.gzipped - hls.gzipped;
    results.push({
      id: `player-size-${label}`,
      name: `Player size on the ${label} hls.js build`,
      candidate: `+${round(added / 1024, 2)} KB gzipped (+${round((player.minified - hls.minified) / 1024, 1)} KB minified)`,
      baseline: `hls.js ${label}: ${round(hls.gzipped / 1024, 1)} KB gzipped`,
      ratio: round(added / (5 * 1024)),
      target: "≤ 5 KB gzipped added (ratio to 5 KB ≤ 1)",
      pass: added <= 5 * 1024,
      raw: { hls, player },
    });
  }
  return results;
}
