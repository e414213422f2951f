// DEMO VALUES ONLY. They are public (in this repository) and protect nothing: never encrypt
// real content with them or accept tokens signed with this secret outside this demo.
export const DEMO_MASTER_KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
export const DEMO_SALT = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
export const DEMO_JWT_SECRET = "blindcast-demo-jwt-secret-do-not-use-0123456789";
export const DEMO_CONTENT_ID = "demo-sample";
/** Two segments (4 s) per key epoch: the 16 s sample rotates keys three times. */
export const DEMO_SEGMENTS_PER_EPOCH = 2;
