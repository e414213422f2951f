import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToHex, deriveEpochKey, hexToBytes } from "@blindcast/crypto";
import type { AuditRecord } from "@blindcast/keys";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  buildImage,
  ensureBaseImage,
  healthcheckCommand,
  inspectImage,
  mountImage,
  runImage,
  unmountImage,
} from "../../scripts/container-image.mjs";
import { type Cluster, startCluster } from "../../scripts/pg-cluster.mjs";

// The image of deploy/docker/Dockerfile, built with podman and run as a container runtime would
// run it (see scripts/container-image.mjs for what that means on a machine that cannot run
// containers). Its own npm script (test:image), which `npm run check` runs after the unit tests.

// A master key of the test's own: the image listens on 0.0.0.0, where the key server refuses the
// published keys (the demo's and the contract vectors'). The expected key follows the contract.
const MASTER_KEY_HEX = randomBytes(32).toString("hex");
const SALT_HEX = randomBytes(16).toString("hex");
const expectedKey = bytesToHex(
  await deriveEpochKey(hexToBytes(MASTER_KEY_HEX), hexToBytes(SALT_HEX), "movie-42", 7),
);
const JWT_SECRET = "test-only-jwt-secret-of-at-least-32-bytes";
const root = new URL("../..", import.meta.url).pathname;

/** The `-e NAME=VALUE` of the README's `docker run` example: the SQLite case runs with exactly these. */
function readmeDockerRunEnv(): Record<string, string> {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### In a container"));
  const block = section.slice(
    section.indexOf("docker run"),
    section.indexOf("```", section.indexOf("docker run")),
  );
  return Object.fromEntries([...block.matchAll(/-e ([A-Z_]+)=(\S+)/g)].map((m) => [m[1], m[2]]));
}

/**
 * The key server's environment in compose.yaml as Docker Compose makes it from a shell that sets
 * only CORS_ORIGINS (as the README says): `${NAME:-default}` and `${NAME:?message}` interpolated.
 */
function composeEnv(): Record<string, string> {
  const compose = parse(readFileSync(join(root, "deploy/docker/compose.yaml"), "utf8"));
  const env = compose.services.keys.environment as Record<string, string>;
  const shell: Record<string, string> = { CORS_ORIGINS: "https://app.example.com" };
  return Object.fromEntries(
    Object.entries(env).map(([name, value]) => [
      name,
      String(value).replace(
        /\$\{(\w+)(?::([-?])([^}]*))?\}/g,
        (_, variable: string, kind?: string, rest?: string) => {
          const given = shell[variable];
          if (given) return given;
          if (kind === "?") throw new Error(`compose.yaml needs ${variable}: ${rest}`);
          return kind === "-" ? (rest ?? "") : "";
        },
      ),
    ]),
  );
}
const timings: Record<string, string> = {};

let rootfs: string;
let config: ReturnType<typeof inspectImage>;
let cluster: Cluster;

beforeAll(async () => {
  let started = performance.now();
  const base = ensureBaseImage();
  timings.base = `${((performance.now() - started) / 1000).toFixed(1)} s (${base.imported ? "imported" : "cached"}, Node ${base.nodeVersion})`;
  started = performance.now();
  const build = buildImage();
  timings.build = `${build.seconds.toFixed(1)} s (${build.cachedSteps} steps from cache; log ${build.log})`;
  config = inspectImage();
  timings.image = `${(config.size / 1e6).toFixed(0)} MB`;
  rootfs = mountImage();
  cluster = await startCluster();
}, 40 * 60_000);

afterAll(() => {
  unmountImage();
  cluster?.destroy();
  console.log(
    `container image: ${Object.entries(timings)
      .map(([k, v]) => `${k} ${v}`)
      .join("; ")}`,
  );
});

/** A folder of secret files, as Docker or Kubernetes would mount at /run/secrets. */
function secrets(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "blindcast-secrets-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), `${content}\n`);
  chmodSync(dir, 0o755);
  for (const name of Object.keys(files)) chmodSync(join(dir, name), 0o644);
  return dir;
}

let nextPort = 28_000 + (process.pid % 1000) * 10;

async function waitForHealthy(url: string, container: ReturnType<typeof runImage>): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    const exited = await Promise.race([container.exited, new Promise((r) => setTimeout(() => r(null), 100))]);
    if (exited) throw new Error(`the container exited: ${JSON.stringify(exited)}\n${container.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no /healthz within 30 s:\n${container.stderr()}`);
  }
}

/** Serves a lease and a key through the running container, checking each answer. */
async function serveLeaseAndKey(url: string) {
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject("viewer-1")
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(JWT_SECRET));
  const refused = await fetch(`${url}/keys/leases`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"contentId":"movie-42"}',
  });
  expect(refused.status).toBe(401);
  const created = await fetch(`${url}/keys/leases`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: '{"contentId":"movie-42"}',
  });
  expect(created.status).toBe(201);
  const { leaseId } = (await created.json()) as { leaseId: string };
  const key = await fetch(`${url}/keys/movie-42/7`, {
    headers: { authorization: `Bearer ${token}`, "x-blindcast-lease": leaseId },
  });
  expect(key.status).toBe(200);
  expect(bytesToHex(new Uint8Array(await key.arrayBuffer()))).toBe(expectedKey);
}

describe("the container image", () => {
  it("is configured as documented: non-root numeric user, exec-form entrypoint, /data volume, HEALTHCHECK", () => {
    expect(config.user).toBe("1000:1000");
    expect(config.workingDir).toBe("/app");
    expect(config.entrypoint).toEqual(["node", "/app/node_modules/@blindcast/keys/dist/node/cli.js"]);
    expect(config.volumes).toEqual(["/data"]);
    expect(config.exposedPorts).toEqual(["8787/tcp"]);
    expect(config.env).toEqual(expect.arrayContaining(["NODE_ENV=production", "HOST=0.0.0.0", "PORT=8787"]));
    expect(healthcheckCommand(config.healthcheck)).toEqual(["node", "/app/healthcheck.mjs"]);
  });

  it("holds production dependencies only, owned by root, with no build tools", () => {
    const store = readdirSync(join(rootfs, "app/node_modules/.pnpm"));
    for (const wanted of ["better-sqlite3@", "pg@", "jose@"]) {
      expect(store.some((entry) => entry.startsWith(wanted))).toBe(true);
    }
    for (const unwanted of ["typescript@", "@types+", "vitest@", "@biomejs", "esbuild@"]) {
      expect(store.filter((entry) => entry.startsWith(unwanted))).toEqual([]);
    }
    expect(existsSync(join(rootfs, "usr/bin/g++"))).toBe(false);
    expect(existsSync(join(rootfs, "usr/bin/make"))).toBe(false);
    // The server cannot change its own code; only the volume is its.
    expect(statSync(join(rootfs, "app/node_modules/@blindcast/keys/dist/node/cli.js")).uid).toBe(0);
    expect(statSync(join(rootfs, "app")).uid).toBe(0);
    expect(statSync(join(rootfs, "data")).uid).toBe(1000);
  });

  it.each([
    [
      "SQLite on the volume (the README's docker run)",
      () => readmeDockerRunEnv(),
      "SQLite at /data/leases.db",
    ],
    ["PostgreSQL (compose.yaml's variables)", () => composeEnv(), "PostgreSQL at 127.0.0.1"],
  ])(
    "serves a lease and a key with %s, passes its HEALTHCHECK, and stops on SIGTERM with exit 0",
    async (_, store, description) => {
      const port = nextPort++;
      const volume = mkdtempSync(join(tmpdir(), "blindcast-volume-"));
      const env = store();
      expect(env).toMatchObject({
        MASTER_KEY_FILE: "/run/secrets/master_key",
        SALT_FILE: "/run/secrets/salt",
        JWT_SECRET_FILE: "/run/secrets/jwt_secret",
        CORS_ORIGINS: "https://app.example.com",
      });
      const container = runImage(rootfs, config, {
        // The one change: a free port, as the test shares the host's network.
        env: { ...env, PORT: String(port) },
        volumeSource: volume,
        secrets: secrets({
          master_key: MASTER_KEY_HEX,
          salt: SALT_HEX,
          jwt_secret: JWT_SECRET,
          database_url: cluster.url,
        }),
      });
      try {
        const url = `http://127.0.0.1:${port}`;
        await waitForHealthy(url, container);
        expect(container.stderr()).toContain(`listening on http://0.0.0.0:${port}/keys`);
        expect(container.stderr()).toContain(`leases: ${description}`);
        // compose.yaml leaves publishing off unless PUBLISH_BUCKET is given.
        expect(container.stderr()).toContain("publishing: off");
        expect(container.stderr()).toContain("auth: bearer JWT");

        // PID 1 of its PID namespace, as in a container: SIGTERM reaches only a process that
        // handles it.
        const status = readFileSync(`/proc/${container.pid1()}/status`, "utf8");
        expect(status).toMatch(/^NSpid:\s+\d+\s+1$/m);
        expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);

        const ready = await fetch(`${url}/readyz`);
        expect(await ready.json()).toEqual({ status: "ready", leaseStore: "answers" });
        await serveLeaseAndKey(url);

        const check = container.exec(healthcheckCommand(config.healthcheck));
        expect(check.stderr).toBe("");
        expect(check.status).toBe(0);

        process.kill(container.pid1(), "SIGTERM");
        const exit = await container.exited;
        expect(exit).toEqual({ code: 0, signal: null });
        expect(container.stderr()).toMatch(
          /blindcast-keys: SIGTERM: stopping[^\n]*\nblindcast-keys: stopped\n$/,
        );
        const records = container
          .stdout()
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => JSON.parse(line) as AuditRecord);
        expect(records.map((r) => [r.route, r.status])).toEqual([
          ["lease_create", 401],
          ["lease_create", 201],
          ["epoch_key", 200],
        ]);
        // Nothing written but the volume: with SQLite, its database files; with PostgreSQL, nothing.
        const written = readdirSync(volume).sort();
        if (description.startsWith("SQLite")) expect(written[0]).toBe("leases.db");
        else expect(written).toEqual([]);
      } finally {
        if (container.child.exitCode === null) container.child.kill("SIGKILL");
      }
    },
    120_000,
  );

  it("fails its HEALTHCHECK when nothing answers on PORT", async () => {
    const port = nextPort++;
    const container = runImage(rootfs, config, {
      env: {
        PORT: String(port),
        MASTER_KEY: MASTER_KEY_HEX,
        SALT: SALT_HEX,
        CORS_ORIGINS: "*",
        LEASES: "off",
      },
    });
    try {
      await waitForHealthy(`http://127.0.0.1:${port}`, container);
      expect(container.exec(healthcheckCommand(config.healthcheck)).status).toBe(0);
      // The same check, told the wrong port: what it reports when the server does not answer.
      const check = container.exec(healthcheckCommand(config.healthcheck), { PORT: String(port + 1) });
      expect(check.status).toBe(1);
      expect(check.stderr).toContain("healthcheck: fetch failed");
    } finally {
      process.kill(container.pid1(), "SIGTERM");
      expect((await container.exited).code).toBe(0);
    }
  }, 60_000);
});
