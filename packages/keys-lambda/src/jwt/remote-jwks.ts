// jose's JWKS fetcher alone (its subpath, not its index), for the dynamic import in ./index.ts:
// an authenticator with a shared secret never loads it. What it hands back is a function that
// resolves keys (WebCrypto CryptoKeys), and its errors are read by `code`, not by class: a bundle
// may give it a file of its own holding its own copy of jose's internals
// (scripts/build-lambda.mjs does) without two copies of a class having to meet.
export { createRemoteJWKSet } from "jose/jwks/remote";
