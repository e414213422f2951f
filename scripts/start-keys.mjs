// Starts the local key server (blindcast-keys) for development. Where MASTER_KEY, SALT or
// CORS_ORIGINS are not set it fills in DEMO values, says so loudly, and never prints them. The
// CLI serves the demo master key on loopback only: it refuses any other HOST (exit code 2).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

// DEMO VALUES ONLY: public, in the repository, and therefore protecting nothing.
const DEMO = {
  MASTER_KEY: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
  SALT: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
  CORS_ORIGINS: "http://localhost:5173",
};

const env = { ...process.env };
const filled = Object.keys(DEMO).filter((name) => !env[name]);
for (const name of filled) env[name] = DEMO[name];
if (filled.length > 0) {
  console.error(
    `start-keys: using DEMO ${filled.join(", ")} (public, not secret: never use them for real content)`,
  );
}
const cli = fileURLToPath(new URL("../packages/keys-lambda/dist/node/cli.js", import.meta.url));
const child = spawn(process.execPath, [cli], { env, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 1));
