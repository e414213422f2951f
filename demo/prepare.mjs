// Packages the committed clear sample with the demo master key into public/media, where Vite
// serves it, and returns what the page needs to know. Shared by `pnpm demo` and the e2e tests.
import { fileURLToPath } from "node:url";
import { hexToBytes } from "@blindcast/crypto";
import { packageHls } from "@blindcast/packager";
import { SignJWT } from "jose";
import {
  DEMO_CONTENT_ID,
  DEMO_JWT_SECRET,
  DEMO_MASTER_KEY,
  DEMO_SALT,
  DEMO_SEGMENTS_PER_EPOCH,
} from "./demo-values.mjs";

export const DEMO_DIR = fileURLToPath(new URL(".", import.meta.url));

export async function packageSample({ masterKey = DEMO_MASTER_KEY, salt = DEMO_SALT } = {}) {
  const result = await packageHls({
    input: `${DEMO_DIR}sample/master.m3u8`,
    output: `${DEMO_DIR}public/media/${DEMO_CONTENT_ID}`,
    contentId: DEMO_CONTENT_ID,
    masterKey: hexToBytes(masterKey),
    salt: hexToBytes(salt),
    segmentsPerEpoch: DEMO_SEGMENTS_PER_EPOCH,
    overwrite: true,
  });
  return {
    src: `/media/${DEMO_CONTENT_ID}/${result.playlist}`,
    contentId: DEMO_CONTENT_ID,
    keyUris: result.keyUris,
  };
}

/** A demo viewer's token, signed with the demo secret. */
export function demoToken(viewer = "demo-viewer", expiresIn = "12h") {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(viewer)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(DEMO_JWT_SECRET));
}
