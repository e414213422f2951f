// Every package's `prepack` (npm pack, pnpm pack, npm/pnpm publish): builds the package from its
// sources into a fresh dist/, then refuses to pack a manifest that would not install or work.
//
// - dist/ and the build info are removed first: a tarball packed before a build (or after a
//   source file was deleted) gets exactly what the sources compile to, never a stale or missing
//   dist/. (tsc -b alone trusts tsconfig.tsbuildinfo and skips the build when only dist/ is gone.)
// - Dependencies must be ranges any package manager installs. "workspace:*" is pnpm's alone:
//   pnpm pack rewrites it, npm pack copies it as is and npm then fails with EUNSUPPORTEDPROTOCOL.
//   So our packages name each other by plain semver ranges ("^0.1.0"); pnpm-workspace.yaml's
//   overrides keep pnpm linking them from the workspace. A range the workspace's own version does
//   not satisfy would publish a package that installs another version of its sibling: refused.
// - Every file the manifest points at (exports, bin) must exist after the build, and README.md
//   and LICENSE must be there to go into the tarball.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const dir = process.cwd();
const manifest = readJson(join(dir, "package.json"));
const problems = [];

rmSync(join(dir, "dist"), { recursive: true, force: true });
rmSync(join(dir, "tsconfig.tsbuildinfo"), { force: true });
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b", dir], {
  stdio: "inherit",
});

const workspaceVersions = new Map(
  readdirSync(join(root, "packages")).flatMap((folder) => {
    const file = join(root, "packages", folder, "package.json");
    if (!existsSync(file)) return [];
    const { name, version } = readJson(file);
    return [[name, version]];
  }),
);

for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
  for (const [name, range] of Object.entries(manifest[field] ?? {})) {
    if (/^(workspace|link|file|catalog|portal):/.test(range)) {
      problems.push(`${field}.${name} is "${range}": npm cannot install that; use a semver range`);
    } else if (workspaceVersions.has(name) && !caretSatisfies(range, workspaceVersions.get(name))) {
      problems.push(
        `${field}.${name} is "${range}", which ${name}@${workspaceVersions.get(name)} in this workspace ` +
          `does not satisfy; use "^${workspaceVersions.get(name)}"`,
      );
    }
  }
}

const bins = typeof manifest.bin === "string" ? [manifest.bin] : Object.values(manifest.bin ?? {});
for (const target of [...exportTargets(manifest.exports), ...bins]) {
  if (!existsSync(join(dir, target))) problems.push(`${target} (named in package.json) was not built`);
}
for (const file of ["README.md", "LICENSE"]) {
  if (!existsSync(join(dir, file))) problems.push(`${file} is missing`);
}
const license = existsSync(join(dir, "LICENSE")) ? readFileSync(join(dir, "LICENSE"), "utf8") : "";
if (manifest.license !== "MIT" || !license.startsWith("MIT License")) {
  problems.push(`license is "${manifest.license}" but LICENSE is not the MIT text`);
}

if (problems.length > 0) {
  console.error(`prepack: ${manifest.name} (${relative(root, dir)}) cannot be packed:`);
  for (const problem of problems) console.error(`  - ${problem}`);
  process.exit(1);
}

function readJson(file) {
  return JSON.parse(readFileSync(file, "utf8"));
}

/** The file paths of an `exports` map, at any depth of conditions. */
function exportTargets(value) {
  if (typeof value === "string") return [value];
  if (value && typeof value === "object") return Object.values(value).flatMap(exportTargets);
  return [];
}

/**
 * Whether `version` satisfies `range`, for the only form our packages use for each other:
 * "^x.y.z" (npm's caret: same major, or same minor below 1.0.0, or same patch below 0.1.0).
 */
function caretSatisfies(range, version) {
  const wanted = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range)?.slice(1).map(Number);
  const have = /^(\d+)\.(\d+)\.(\d+)$/.exec(version)?.slice(1).map(Number);
  if (!wanted || !have) return false;
  const [major, minor, patch] = wanted;
  if (have[0] !== major) return false;
  if (major > 0) return have[1] > minor || (have[1] === minor && have[2] >= patch);
  if (have[1] !== minor) return false;
  return minor > 0 ? have[2] >= patch : have[2] === patch;
}
