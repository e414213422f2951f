import { hexToBytes } from "@blindcast/crypto";
import { DEMO_JWT_SECRET, DEMO_MASTER_KEY, DEMO_SALT } from "@blindcast/demo/demo-values.mjs";

// The demo's public values: benchmarks protect nothing.
export const masterKey = hexToBytes(DEMO_MASTER_KEY);
export const salt = hexToBytes(DEMO_SALT);
export { DEMO_JWT_SECRET, DEMO_MASTER_KEY, DEMO_SALT };
export const quiet = { warn() {}, error() {} };
