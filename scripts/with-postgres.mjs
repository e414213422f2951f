// Runs a command with a throwaway PostgreSQL cluster (see pg-cluster.mjs) and DATABASE_URL
// pointing at it; the cluster is removed when the command ends.
//   node scripts/with-postgres.mjs <command> [args...]
import { spawn } from "node:child_process";
import { startCluster } from "./pg-cluster.mjs";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node scripts/with-postgres.mjs <command> [args...]");
  process.exit(2);
}
let cluster;
try {
  cluster = await startCluster();
} catch (error) {
  console.error(`with-postgres: ${error.message}`);
  process.exit(1);
}
console.error(`with-postgres: PostgreSQL (${cluster.bin}) at ${cluster.url}`);
const child = spawn(command, args, { stdio: "inherit", env: { ...process.env, DATABASE_URL: cluster.url } });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => {
  cluster.destroy();
  process.exit(code ?? (signal ? 1 : 0));
});
