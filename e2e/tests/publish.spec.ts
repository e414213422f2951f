import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { DEMO_JWT_SECRET } from "@blindcast/demo/demo-values.mjs";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { SignJWT } from "jose";
import { type MotoServer, startMoto } from "../../test/support/moto-server.js";
import { CONTENT_ID, expect, openDemo, PAGE_ORIGIN, playback, test } from "./fixtures.js";

// Issue 15's "done when": from a clean start, a publisher with only a token packages the demo
// sample through the key server (no MASTER_KEY on the publisher's side), uploads it through
// presigned URLs to an S3 server (moto, on loopback), and a viewer plays it from there in
// Chromium; a viewer's token is refused on both publisher routes.

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const PACK = join(root, "packages/packager/dist/cli.js");
const UPLOAD = join(root, "packages/packager/dist/upload-cli.js");
const SAMPLE = join(root, "demo/sample/master.m3u8");

let moto: MotoServer;
let work: string;
test.beforeAll(async () => {
  moto = await startMoto({ bucket: "media" });
  await moto.allowPublicReads([PAGE_ORIGIN]);
  work = mkdtempSync(join(tmpdir(), "blindcast-publish-e2e-"));
});
test.afterAll(async () => {
  await moto?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const token = (sub: string, scope: string) =>
  new SignJWT({ scope })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(DEMO_JWT_SECRET));

test("a publisher with only a token packages through the key server, uploads to S3, and the stream plays from there", async ({
  page,
  startKeys,
}) => {
  test.setTimeout(120_000);
  const keys = await startKeys({
    authenticate: createJwtAuthenticator({ secret: DEMO_JWT_SECRET, publisherScope: "blindcast:publish" }),
    publish: {
      storage: {
        bucket: moto.bucket,
        prefix: "streams",
        region: moto.region,
        endpoint: moto.endpoint,
        credentials: moto.credentials,
      },
    },
  });
  const publisher = await token("publisher-1", "openid blindcast:publish");
  // The publisher's environment: a token, and nothing else of Blindcast's.
  const env = { PATH: process.env.PATH ?? "", BLINDCAST_TOKEN: publisher };
  const out = join(work, "packaged");
  await run(
    process.execPath,
    [
      PACK,
      SAMPLE,
      out,
      "--content-id",
      CONTENT_ID,
      "--segments-per-epoch",
      "2",
      "--key-server",
      keys.keysUrl,
    ],
    { env, timeout: 60_000 },
  );
  const upload = await run(
    process.execPath,
    [UPLOAD, out, "--content-id", CONTENT_ID, "--key-server", keys.keysUrl],
    { env, timeout: 60_000 },
  );
  expect(upload.stderr).not.toContain(publisher);
  const stored = await moto.listKeys();
  expect(stored).toContain(`streams/${CONTENT_ID}/master.m3u8`);
  expect(stored.filter((key) => key.endsWith(".ts")).length).toBe(8);
  // Only ciphertext in storage: no segment starts with an MPEG-TS sync byte pattern in the clear.
  const segment = await moto.getObject(`streams/${CONTENT_ID}/seg000.ts`);
  expect(segment?.contentType).toBe("video/mp2t");
  expect(segment?.body[0] === 0x47 && segment?.body[188] === 0x47).toBe(false);

  const published = keys.records.filter((r) => r.route.startsWith("publish_"));
  expect(published.map((r) => `${r.route}:${r.status}:${r.viewerId}`)).toEqual(
    expect.arrayContaining(["publish_keys:200:publisher-1", "publish_uploads:200:publisher-1"]),
  );

  // The viewer plays what storage serves, with keys from the key server.
  const src = `${moto.endpoint}/${moto.bucket}/streams/${CONTENT_ID}/master.m3u8`;
  await openDemo(page, keys, { src });
  await page.waitForFunction(() => (document.querySelector("video") as HTMLVideoElement).ended, undefined, {
    timeout: 60_000,
  });
  const state = await playback(page);
  expect(state.errors).toEqual([]);
  expect(state.frames).toBeGreaterThan(300);
  const epochs = state.events.filter((e) => e.name === "keyloaded").map((e) => e.detail.epoch);
  expect(epochs).toEqual(expect.arrayContaining([0, 1, 2, 3]));

  // A viewer's token is refused on both publisher routes.
  const viewer = await token("viewer-1", "openid");
  for (const [path, body] of [
    [`/publish/${CONTENT_ID}/keys`, { keys: [0] }],
    [`/publish/${CONTENT_ID}/uploads`, { files: [{ path: "x.ts", size: 1 }] }],
  ] as const) {
    const answer = await fetch(`${keys.keysUrl}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${viewer}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(answer.status).toBe(403);
    expect(((await answer.json()) as { code: string }).code).toBe("publisher_required");
  }
});
