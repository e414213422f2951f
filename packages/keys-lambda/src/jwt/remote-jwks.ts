// jose's JWKS fetcher alone (its subpath, not its index), for the dynamic import in ./index.ts:
// an authenticator with a shared secret never loads it, and a bundle splitting on that import
// keeps it out of its main chunk.
export { createRemoteJWKSet } from "jose/jwks/remote";
