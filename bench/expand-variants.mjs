// HKDF's expand step, one 16-byte key per call, done the ways node:crypto allows, for the
// derivation finding in BENCHMARKS.md: which is the floor of a server that derives every key.
// Not part of `npm run bench` (no target of its own); run with `node bench/expand-variants.mjs`.
// Every variant is checked equal to hkdfSync on 1000 inputs before anything is timed.
import { createHash, createHmac, createSecretKey, hash, hkdfSync } from "node:crypto";
import { masterKey, salt } from "./lib/fixtures.mjs";
import { cpuRate, median, round } from "./lib/stats.mjs";

const EPOCHS = 1000;
const info = (i) => `blindcast/v1/epoch/movie-42/${i % EPOCHS}`;
const prkBytes = createHmac("sha256", salt).update(masterKey).digest();
const prk = createSecretKey(prkBytes);
// HMAC's two padded keys (RFC 2104), for the variants that hash them themselves.
const ipad = Buffer.alloc(64, 0x36);
const opad = Buffer.alloc(64, 0x5c);
for (let i = 0; i < prkBytes.length; i++) {
  ipad[i] ^= prkBytes[i];
  opad[i] ^= prkBytes[i];
}
const inner = Buffer.alloc(64 + 256);
ipad.copy(inner);
const outer = Buffer.alloc(96);
opad.copy(outer);
const innerState = createHash("sha256").update(ipad);
const outerState = createHash("sha256").update(opad);

const variants = {
  "hkdfSync (extract and expand per key)": (i) =>
    Buffer.from(hkdfSync("sha256", masterKey, salt, info(i), 16)),
  "createHmac with the PRK as a KeyObject (shipped)": (i) =>
    createHmac("sha256", prk)
      .update(`${info(i)}\u0001`)
      .digest()
      .subarray(0, 16),
  "createHmac with the PRK as bytes": (i) =>
    createHmac("sha256", prkBytes)
      .update(`${info(i)}\u0001`)
      .digest()
      .subarray(0, 16),
  "two one-shot crypto.hash calls over the padded keys": (i) => {
    const n = inner.write(info(i), 64, "utf8");
    inner[64 + n] = 1;
    hash("sha256", inner.subarray(0, 65 + n), "buffer").copy(outer, 64);
    return hash("sha256", outer, "buffer").subarray(0, 16);
  },
  "SHA-256 states after the padded keys, cloned with hash.copy()": (i) => {
    const first = innerState
      .copy()
      .update(`${info(i)}\u0001`)
      .digest();
    return outerState.copy().update(first).digest().subarray(0, 16);
  },
};

const reference = variants["hkdfSync (extract and expand per key)"];
for (const [name, fn] of Object.entries(variants)) {
  for (let i = 0; i < EPOCHS; i++) {
    if (!fn(i).equals(reference(i))) throw new Error(`${name} differs from hkdfSync at ${i}`);
  }
}
const runs = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
for (let round = 0; round < 5; round++) {
  for (const [name, fn] of Object.entries(variants)) runs[name].push(await cpuRate(fn, 400));
}
const hkdf = median(runs["hkdfSync (extract and expand per key)"]);
console.log(`Node ${process.version}, keys per second of CPU time, median of 5 rounds:`);
for (const [name, values] of Object.entries(runs)) {
  const m = median(values);
  console.log(`  ${name}: ${round(m / 1000, 1)}k/s (${round(m / hkdf)}× hkdfSync)`);
}
