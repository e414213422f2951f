// Serves the demo page for the end-to-end tests as it would be deployed: the sample packaged with
// the demo master key, the page built by Vite, served by `vite preview` on localhost. Key
// servers are started by each test, configured as the test needs.

import { DEMO_DIR, packageSample } from "@blindcast/demo/prepare.mjs";
import { build, preview } from "vite";

await packageSample();
await build({ root: DEMO_DIR, logLevel: "warn", build: { outDir: "dist", emptyOutDir: true } });
const server = await preview({
  root: DEMO_DIR,
  logLevel: "warn",
  preview: { host: "localhost", port: 4173, strictPort: true },
});
console.log(`demo page on ${server.resolvedUrls?.local?.[0] ?? "http://localhost:4173/"}`);
