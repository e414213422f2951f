// Builds deploy/docker/Dockerfile with podman and runs the image's entrypoint the way a container
// runtime would, on a machine where podman can build but not run containers (no usable cgroups,
// rlimits it may not set) and no registry is reachable:
//   - the base image is made here (container-base.mjs) and tagged as the Dockerfile's base;
//   - `podman build --isolation chroot` builds the real Dockerfile;
//   - the image's file system is mounted (`podman image mount`) and its entrypoint started in new
//     mount and PID namespaces: the image's root bound read-only (as `docker run --read-only`),
//     /proc, a minimal /dev, the volume and the secrets mounted, then chroot as the image's USER
//     into its WORKDIR with exactly its ENV (plus what `docker run -e` would add) and
//     ENTRYPOINT + CMD. The process is PID 1 of its namespace, as in a container, so the signal
//     handling is the container's. The network namespace is the host's (as `--network host`).
//   - the HEALTHCHECK command runs inside the same namespaces, as the image's user (docker exec).
import { spawn, spawnSync } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CACHE, ensureBaseImage, podman, podmanArgs } from "./container-base.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
/** This run's tag: runs from two checkouts at once must not mount each other's image. */
export const IMAGE = `localhost/blindcast-keys:test-${process.pid}`;

/**
 * The CA bundle the build's npm and pnpm must trust, when this machine reaches the npm registry
 * through a TLS-inspecting proxy (NODE_EXTRA_CA_CERTS names it); passed as the Dockerfile's
 * optional `ca_certs` build secret.
 */
function caBundle() {
  const candidates = [process.env.NODE_EXTRA_CA_CERTS, process.env.SSL_CERT_FILE];
  return candidates.find((path) => path && existsSync(path));
}

/** Builds the image; returns how long it took and where the build's output went. */
export function buildImage() {
  const log = join(CACHE, "build.log");
  const ca = caBundle();
  const args = [
    "build",
    "--isolation",
    "chroot",
    "--pull=never",
    // Docker's format: the OCI format has no HEALTHCHECK.
    "--format",
    "docker",
    "--layers",
    ...(ca ? ["--secret", `id=ca_certs,src=${ca}`] : []),
    "-f",
    join(root, "deploy/docker/Dockerfile"),
    "-t",
    IMAGE,
    root,
  ];
  const started = performance.now();
  const result = spawnSync("podman", podmanArgs(...args), {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    // Bounded: a build that hangs (a registry that stopped answering) fails the test.
    timeout: 20 * 60_000,
  });
  mkdirSync(CACHE, { recursive: true });
  const output = `${result.stdout ?? ""}\n${result.stderr ?? ""}`;
  writeFileSync(log, output);
  if (result.status !== 0) {
    throw new Error(
      `podman build failed (${result.error?.message ?? `exit ${result.status}`}); end of ${log}:\n${output.slice(-4000)}`,
    );
  }
  // Layers of builds a week old and more. Not younger ones: the build stage's layers are untagged
  // too, and they are the cache that makes the next build take seconds.
  spawnSync("podman", podmanArgs("image", "prune", "--force", "--filter", "until=168h"), { stdio: "ignore" });
  return {
    seconds: (performance.now() - started) / 1000,
    log,
    cachedSteps: (output.match(/--> Using cache/g) ?? []).length,
  };
}

/** The image's run configuration, from `podman image inspect`. */
export function inspectImage() {
  const [info] = JSON.parse(podman(["image", "inspect", IMAGE]));
  const config = info.Config ?? {};
  return {
    id: info.Id,
    size: info.Size,
    user: config.User ?? "",
    workingDir: config.WorkingDir || "/",
    env: config.Env ?? [],
    entrypoint: config.Entrypoint ?? [],
    cmd: config.Cmd ?? [],
    // Docker's format keeps it beside Config.
    healthcheck: info.Healthcheck ?? config.Healthcheck,
    volumes: Object.keys(config.Volumes ?? {}),
    exposedPorts: Object.keys(config.ExposedPorts ?? {}),
  };
}

/** Mounts the image's file system (read-only overlay) and returns its path. */
export function mountImage() {
  return podman(["image", "mount", IMAGE]).trim();
}

/** Unmounts the image and drops this run's tag; its layers stay, as the next build's cache. */
export function unmountImage() {
  spawnSync("podman", podmanArgs("image", "unmount", IMAGE), { stdio: "ignore" });
  spawnSync("podman", podmanArgs("untag", IMAGE, IMAGE), { stdio: "ignore" });
}

/** `USER` as uid and gid, numeric ones as they are, names looked up in the image's own files. */
export function resolveUser(rootfs, user) {
  const [name = "0", group] = user.split(":");
  const lookup = (file, key) => {
    if (/^[0-9]+$/.test(key)) return Number(key);
    const line = readFileSync(join(rootfs, file), "utf8")
      .split("\n")
      .find((l) => l.split(":")[0] === key);
    if (!line) throw new Error(`${key} is not in the image's ${file}`);
    return Number(line.split(":")[2]);
  };
  const uid = lookup("etc/passwd", name);
  let gid;
  if (group !== undefined) gid = lookup("etc/group", group);
  else if (/^[0-9]+$/.test(name)) gid = uid;
  else
    gid = Number(
      readFileSync(join(rootfs, "etc/passwd"), "utf8")
        .split("\n")
        .find((l) => l.startsWith(`${name}:`))
        ?.split(":")[3],
    );
  return { uid, gid };
}

// Runs inside the new mount and PID namespaces, as root, then becomes the image's process.
const SETUP = `set -e
mount --make-rprivate /
mount --bind "$IMG_ROOTFS" "$IMG_MNT"
mount -o remount,bind,ro "$IMG_MNT"
mount -t proc -o nosuid,nodev,noexec proc "$IMG_MNT/proc"
mount -t tmpfs -o nosuid,mode=755,size=64k tmpfs "$IMG_MNT/dev"
for d in null zero full random urandom tty; do touch "$IMG_MNT/dev/$d"; mount --bind "/dev/$d" "$IMG_MNT/dev/$d"; done
if [ -n "$IMG_VOLUME_SRC" ]; then mount --bind "$IMG_VOLUME_SRC" "$IMG_MNT$IMG_VOLUME"; fi
if [ -n "$IMG_SECRETS" ]; then
  mount -t tmpfs -o nosuid,nodev,mode=755,size=64k tmpfs "$IMG_MNT/run"
  mkdir "$IMG_MNT/run/secrets"
  mount --bind "$IMG_SECRETS" "$IMG_MNT/run/secrets"
  mount -o remount,bind,ro "$IMG_MNT/run/secrets"
fi
exec chroot --userspec="$IMG_UID:$IMG_GID" --groups="$IMG_GID" "$IMG_MNT" /usr/bin/env -i -C "$IMG_WORKDIR" "$@"
`;

/**
 * Starts the image's entrypoint as `docker run --read-only -v <volumeSource>:<volume> -e …` would.
 * `env` is added to the image's ENV; `secrets` is a folder mounted read-only at /run/secrets.
 */
export function runImage(rootfs, config, { env = {}, volumeSource, secrets } = {}) {
  const { uid, gid } = resolveUser(rootfs, config.user);
  const mnt = mkdtempSync(join(tmpdir(), "blindcast-image-root-"));
  const volume = config.volumes[0];
  if (volumeSource) {
    // A new named volume takes the ownership of the image's folder at its mount point.
    const owner = statSync(join(rootfs, volume));
    chownSync(volumeSource, owner.uid, owner.gid);
  }
  const merged = new Map(config.env.map((entry) => [entry.slice(0, entry.indexOf("=")), entry]));
  for (const [name, value] of Object.entries(env)) merged.set(name, `${name}=${value}`);
  const argv = [...config.entrypoint, ...config.cmd];
  const child = spawn(
    "unshare",
    ["--mount", "--pid", "--fork", "--", "sh", "-c", SETUP, "setup", ...merged.values(), ...argv],
    {
      env: {
        PATH: process.env.PATH,
        IMG_ROOTFS: rootfs,
        IMG_MNT: mnt,
        IMG_UID: String(uid),
        IMG_GID: String(gid),
        IMG_WORKDIR: config.workingDir,
        IMG_VOLUME: volume ?? "",
        IMG_VOLUME_SRC: volumeSource ?? "",
        IMG_SECRETS: secrets ?? "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  void exited.then(() => rmSync(mnt, { recursive: true, force: true }));
  return {
    child,
    uid,
    gid,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    /** The host pid of the container's PID 1 (unshare's child), once it exists. */
    pid1() {
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim();
      return Number(children.split(" ")[0]);
    },
    /**
     * Runs a command inside the container's namespaces, root and working folder, as its user and
     * with its environment: what Docker does for a HEALTHCHECK (`docker exec`).
     */
    exec(command, extraEnv = {}) {
      const execEnv = new Map(merged);
      for (const [name, value] of Object.entries(extraEnv)) execEnv.set(name, `${name}=${value}`);
      return spawnSync(
        "nsenter",
        [
          "--target",
          String(this.pid1()),
          "--mount",
          "--pid",
          "--root",
          "--wd",
          "--setgid",
          String(gid),
          "--setuid",
          String(uid),
          "--",
          "/usr/bin/env",
          "-i",
          ...execEnv.values(),
          ...command,
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
    },
  };
}

/** The command of a HEALTHCHECK (`CMD` exec form, or `CMD-SHELL`). */
export function healthcheckCommand(healthcheck) {
  const [kind, ...rest] = healthcheck?.Test ?? [];
  if (kind === "CMD") return rest;
  if (kind === "CMD-SHELL") return ["/bin/sh", "-c", rest.join(" ")];
  throw new Error(`the image has no HEALTHCHECK command (${JSON.stringify(healthcheck)})`);
}

export { ensureBaseImage };
