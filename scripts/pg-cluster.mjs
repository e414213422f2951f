// A throwaway PostgreSQL cluster: initdb into a temporary folder, served on a free loopback
// port, no system service involved. As root it runs as Debian's `postgres` user, since
// PostgreSQL refuses to run as root.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function startCluster() {
  const bin = findPostgresBin();
  const root = mkdtempSync(join(tmpdir(), "blindcast-pg-"));
  const data = join(root, "data");
  const prefix = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  if (prefix.length) chmodSync(root, 0o777);
  const exec = (argv) => execFileSync(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const port = await freePort();
  exec([
    ...prefix,
    join(bin, "initdb"),
    "-D",
    data,
    "-U",
    "blindcast",
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
  ]);
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const pgCtl = [...prefix, join(bin, "pg_ctl"), "-D", data, "-w", "-t", "30", "-o", options];
  const log = join(root, "postgres.log");
  const cluster = {
    url: `postgres://blindcast@127.0.0.1:${port}/postgres`,
    bin,
    /** pg_ctl for this cluster, as an argv prefix. */
    pgCtl,
    log,
    start: () => exec([...pgCtl, "-l", log, "start"]),
    /** A clean, fast shutdown: committed data is kept. */
    stop: () => exec([...pgCtl, "-m", "fast", "stop"]),
    destroy() {
      try {
        exec([...pgCtl, "-m", "immediate", "stop"]);
      } catch {
        // Not running.
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  cluster.start();
  return cluster;
}

export function findPostgresBin() {
  const base = "/usr/lib/postgresql";
  if (process.env.PG_BIN && existsSync(join(process.env.PG_BIN, "initdb"))) return process.env.PG_BIN;
  const versions = existsSync(base)
    ? readdirSync(base).filter((v) => existsSync(join(base, v, "bin/initdb")))
    : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions[0]) return join(base, versions[0], "bin");
  throw new Error(
    "no PostgreSQL server found: install Debian's postgresql (scripts/setup-system.sh does) or set PG_BIN",
  );
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
