import { BlockList, isIP } from "node:net";

/**
 * Master keys published with Blindcast: the demo's (`demo/demo-values.mjs`,
 * `scripts/start-keys.mjs`, the README) and the key-derivation contract's test vectors. Anyone
 * can derive every key they protect, so a server using one must never be reachable from another
 * machine by accident. They are compared here only to refuse that; they are not secrets.
 */
const PUBLIC_MASTER_KEYS: readonly string[] = [
  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
  "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/** True if `masterKey` is one of the master keys published with Blindcast (the demo key). */
export function isPublicMasterKey(masterKey: Uint8Array): boolean {
  const hex = Buffer.from(masterKey.buffer, masterKey.byteOffset, masterKey.byteLength).toString("hex");
  return PUBLIC_MASTER_KEYS.includes(hex);
}

/** 127.0.0.0/8 and ::1; BlockList also matches their IPv4-mapped and long IPv6 spellings. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * True for names and addresses that only this machine can reach: `localhost`, 127.0.0.0/8, `::1`
 * (in any spelling, also IPv4-mapped). A wildcard (`0.0.0.0`, `::`) or any other name is not.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (name === "localhost") return true;
  const family = isIP(name);
  return family !== 0 && LOOPBACK.check(name, family === 6 ? "ipv6" : "ipv4");
}

/** The sentence every refusal to serve a public key elsewhere than loopback ends with. */
export const PUBLIC_KEY_ADVICE =
  "use a master key of your own (openssl rand -hex 32) to serve on another interface";
