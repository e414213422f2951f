// `pnpm demo`: packages the sample with the demo master key, starts the local key server
// (in-memory leases, JWT auth) and the Vite dev server, and prints the URL to open.
import { writeFileSync } from "node:fs";
import { hexToBytes } from "@blindcast/crypto";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createMemoryLeaseStore } from "@blindcast/keys/lease-memory";
import { startKeyServer } from "@blindcast/keys/node";
import { createServer } from "vite";
import { DEMO_JWT_SECRET, DEMO_MASTER_KEY, DEMO_SALT } from "./demo-values.mjs";
import { DEMO_DIR, demoToken, packageSample } from "./prepare.mjs";

const pagePort = Number(process.env.DEMO_PORT ?? 5173);
const keyPort = Number(process.env.KEYS_PORT ?? 8787);
const origin = `http://localhost:${pagePort}`;

const media = await packageSample();
const keys = await startKeyServer({
  masterKey: hexToBytes(DEMO_MASTER_KEY),
  salt: hexToBytes(DEMO_SALT),
  corsOrigins: origin,
  port: keyPort,
  authenticate: createJwtAuthenticator({ secret: DEMO_JWT_SECRET }),
  leaseStore: createMemoryLeaseStore(),
  leaseTtlSeconds: 30,
  maxConcurrentLeases: 3,
  // One short line per request instead of JSON, readable next to the page.
  audit: (r) =>
    console.log(
      `keys: ${r.method} ${r.route} ${r.contentId ?? ""}${r.epoch === undefined ? "" : `/${r.epoch}`} -> ${r.status}${r.reason ? ` (${r.reason})` : ""}`,
    ),
});
writeFileSync(
  `${DEMO_DIR}public/demo-config.json`,
  JSON.stringify(
    { keyServerUrl: keys.keysUrl, src: media.src, contentId: media.contentId, token: await demoToken() },
    null,
    2,
  ),
);
const vite = await createServer({
  root: DEMO_DIR,
  server: { host: "localhost", port: pagePort, strictPort: true },
  logLevel: "warn",
});
await vite.listen();

console.log(`
Blindcast demo (DEMO master key and token: not secret, never use them for real content)
  page:       ${origin}/
  key server: ${keys.keysUrl}  (leases in memory, 30 s TTL, at most 3 streams per viewer)
  media:      ${media.keyUris.length} key epochs, packaged into demo/public${media.src.replace(/\/[^/]+$/, "/")}
Press Ctrl+C to stop.`);

const stop = async () => {
  await Promise.allSettled([vite.close(), keys.close()]);
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
