// The packages as a user gets them, tested from outside the workspace:
//
//  1. pack every package with npm (the tarballs installed below) and with pnpm, and check that
//     both ways give the same files and the same manifest, one npm can install;
//  2. publint (strict) and @arethetypeswrong/cli (ESM-only profile) on every tarball: clean;
//  3. install the tarballs with npm into a scratch app in a temporary folder outside the
//     workspace, third-party packages from the npm registry, and check that every package
//     resolves inside the scratch app and that it has one hls.js;
//  4. type-check every ```ts block of the README, docs/ and the package READMEs there, strict;
//  5. bundle the keys README's Lambda handler with esbuild and call it (a key with a token, 401
//     without);
//  6. package the demo's clear sample with the installed `blindcast-pack`, build the app with
//     Vite, serve it with `vite preview`, start the installed `blindcast-keys`, and play the
//     stream in Chromium: frames decoded past a key rotation, keys fetched from the key server.
//
// Run by `npm test` (the `check` script); `KEEP_OUTSIDE_IN=1` keeps the scratch folder.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import { gunzipSync } from "node:zlib";
import { bytesToHex, deriveEpochKey, hexToBytes } from "@blindcast/crypto";
import { SignJWT } from "jose";
import { chromium } from "playwright-core";
import { publint } from "publint";
import { formatMessage } from "publint/utils";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../../scripts/chromium.mjs";
import { documentedFiles, extractSnippets, isBrowserSnippet, withPlaceholders } from "../doc-snippets.mjs";

const root = realpathSync(new URL("../..", import.meta.url).pathname);
const here = join(root, "test/outside-in");
const TOTAL_TIMEOUT_MS = 15 * 60_000;
const CONTENT_ID = "outside-in";
// Two 2 s segments per epoch: epochs change at 4, 8 and 12 s of the 16 s sample.
const SEGMENTS_PER_EPOCH = 2;
// Fresh per run: nothing here is a demo or a deployment's value.
const MASTER_KEY = randomBytes(32).toString("hex");
const SALT = randomBytes(16).toString("hex");
const JWT_SECRET = randomBytes(32).toString("hex");

const started = performance.now();
const timings = [];
const children = new Set();
let browser;

const scratch = realpathSync(mkdtempSync(join(tmpdir(), "blindcast-outside-in-")));
const app = join(scratch, "app");
const watchdog = setTimeout(() => {
  console.error(`outside-in: FAILED: still running after ${TOTAL_TIMEOUT_MS / 60_000} minutes`);
  cleanup().finally(() => process.exit(1));
}, TOTAL_TIMEOUT_MS);

try {
  checkIsolation();
  const packages = workspacePackages();
  const packed = await step("pack with npm and pnpm, compare", () => packAll(packages));
  await step("publint and attw on every tarball", () => lint(packed));
  await step("npm install the tarballs into a scratch app", () => install(packages, packed));
  await step("type-check the documentation's snippets", () => typecheckSnippets());
  await step("bundle and call the README's Lambda handler", () => lambda());
  await step("blindcast-pack --key-server and blindcast-upload against the installed blindcast-keys", () =>
    publish(),
  );
  await step("blindcast-pack, Vite build, blindcast-keys, play in Chromium", () => play());
  console.error("\noutside-in: tarballs");
  for (const t of packed) {
    console.error(
      `  ${t.name}: ${kb(t.size)} packed, ${kb(t.unpackedSize)} unpacked, ${t.files.size} files (pnpm pack: ${kb(t.pnpmSize)})`,
    );
  }
  console.error(`outside-in: passed in ${seconds(performance.now() - started)}`);
  for (const [name, ms] of timings) console.error(`  ${seconds(ms).padStart(7)}  ${name}`);
} catch (error) {
  console.error(`\noutside-in: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await cleanup();
}

// ---------------------------------------------------------------------------------------------

async function step(name, fn) {
  console.error(`outside-in: ${name}`);
  const t0 = performance.now();
  const result = await fn();
  timings.push([name, performance.now() - t0]);
  return result;
}

/** Nothing above the scratch folder may offer node_modules: every import must resolve inside it. */
function checkIsolation() {
  if (!relative(root, scratch).startsWith("..")) throw new Error(`${scratch} is inside the workspace`);
  for (let dir = dirname(scratch); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "node_modules"))) {
      throw new Error(
        `${join(dir, "node_modules")} would be visible to the scratch app; set TMPDIR elsewhere`,
      );
    }
    if (dirname(dir) === dir) break;
  }
}

function workspacePackages() {
  return readdirSync(join(root, "packages"))
    .map((folder) => join(root, "packages", folder))
    .filter((dir) => existsSync(join(dir, "package.json")))
    .map((dir) => {
      const manifest = readJson(join(dir, "package.json"));
      return {
        dir,
        manifest,
        tarball: `${manifest.name.replace(/^@/, "").replace("/", "-")}-${manifest.version}.tgz`,
      };
    })
    .filter((p) => !p.manifest.private);
}

/**
 * npm pack runs each package's prepack (a fresh build and the manifest checks); pnpm pack then
 * packs the same build without running it again, and must produce the same package.
 */
function packAll(packages) {
  const npmDir = join(scratch, "npm");
  const pnpmDir = join(scratch, "pnpm");
  mkdirSync(npmDir);
  mkdirSync(pnpmDir);
  run("npm", ["pack", ...packages.map((p) => p.dir), "--pack-destination", npmDir], { cwd: root });
  run(
    "sh",
    [
      join(root, "scripts/pnpm.sh"),
      "--recursive",
      "--filter",
      "./packages/*",
      "pack",
      "--pack-destination",
      pnpmDir,
      "--config.ignore-scripts=true",
    ],
    { cwd: root },
  );
  return packages.map(({ manifest, tarball }) => {
    const file = join(npmDir, tarball);
    const npmData = readFileSync(file);
    const pnpmData = readFileSync(join(pnpmDir, tarball));
    const files = untar(npmData);
    const pnpmFiles = untar(pnpmData);
    const problems = [];
    const names = [...files.keys()].sort();
    const pnpmNames = [...pnpmFiles.keys()].sort();
    if (names.join("\n") !== pnpmNames.join("\n")) {
      problems.push(
        `npm and pnpm pack different files:\n  npm:  ${names.join(" ")}\n  pnpm: ${pnpmNames.join(" ")}`,
      );
    }
    for (const name of names) {
      const a = files.get(name)?.data;
      const b = pnpmFiles.get(name)?.data;
      if (!a || !b) continue;
      const same =
        name === "package/package.json"
          ? JSON.stringify(comparableManifest(a)) === JSON.stringify(comparableManifest(b))
          : a.equals(b);
      if (!same) problems.push(`${name} differs between npm pack and pnpm pack`);
    }
    const packedManifest = JSON.parse(files.get("package/package.json")?.data.toString() ?? "{}");
    for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
      for (const [dep, range] of Object.entries(packedManifest[field] ?? {})) {
        if (!/^[\^~]?\d+\.\d+\.\d+$/.test(range))
          problems.push(`${field}.${dep} is "${range}", not a semver range`);
      }
    }
    for (const required of [
      "package/README.md",
      "package/LICENSE",
      "package/dist/index.js",
      "package/dist/index.d.ts",
    ]) {
      if (!files.has(required)) problems.push(`${required} is missing`);
    }
    for (const name of names) {
      if (/(^|\/)(test|tests|__tests__)\/|\.test\.|\.spec\.|tsbuildinfo/.test(name))
        problems.push(`${name} is packed`);
    }
    if (problems.length > 0) throw new Error(`${manifest.name}:\n  ${problems.join("\n  ")}`);
    return {
      name: manifest.name,
      file,
      data: npmData,
      files,
      size: npmData.length,
      pnpmSize: pnpmData.length,
      unpackedSize: [...files.values()].reduce((sum, f) => sum + f.data.length, 0),
    };
  });
}

async function lint(packed) {
  const problems = [];
  const attwManifest = readJson(join(root, "node_modules/@arethetypeswrong/cli/package.json"));
  const attw = join(root, "node_modules/@arethetypeswrong/cli", attwManifest.bin.attw);
  // attw loads TypeScript for each tarball: all at once, while publint reads them here.
  const attwRuns = packed.map((t) =>
    runAsync(
      process.execPath,
      [attw, t.file, "--profile", "esm-only", "--no-definitely-typed", "--format", "ascii"],
      {
        cwd: scratch,
      },
    ),
  );
  for (const t of packed) {
    const tarball = t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength);
    const { messages, pkg } = await publint({ pack: { tarball }, strict: true, level: "suggestion" });
    for (const m of messages)
      problems.push(`publint ${t.name}: ${m.type}: ${formatMessage(m, pkg, { color: false })}`);
  }
  for (const [i, result] of (await Promise.all(attwRuns)).entries()) {
    if (result.status !== 0) problems.push(`attw ${packed[i]?.name}:\n${result.stdout}${result.stderr}`);
  }
  if (problems.length > 0) throw new Error(problems.join("\n"));
}

async function install(packages, packed) {
  cpSync(join(here, "app"), app, { recursive: true });
  const rootManifest = readJson(join(root, "package.json"));
  const e2eManifest = readJson(join(root, "e2e/package.json"));
  const player = packages.find((p) => p.manifest.name === "@blindcast/player")?.manifest;
  const keys = packages.find((p) => p.manifest.name === "@blindcast/keys")?.manifest;
  const keysDev = keys?.devDependencies ?? {};
  writeJson(join(app, "package.json"), {
    name: "blindcast-outside-in",
    private: true,
    type: "module",
    dependencies: {
      ...Object.fromEntries(packed.map((t) => [t.name, `file:${relative(app, t.file)}`])),
      // As the READMEs say: hls.js beside the player, pg (and its types) for the Postgres store,
      // Express (and its types) for @blindcast/keys/express.
      "hls.js": player?.peerDependencies?.["hls.js"],
      pg: keysDev.pg,
      express: keysDev.express,
    },
    devDependencies: {
      "@types/node": rootManifest.devDependencies["@types/node"],
      "@types/pg": keysDev["@types/pg"],
      "@types/express": keysDev["@types/express"],
      esbuild: rootManifest.devDependencies.esbuild,
      typescript: rootManifest.devDependencies.typescript,
      vite: e2eManifest.devDependencies.vite,
      vitest: rootManifest.devDependencies.vitest,
    },
  });
  run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], {
    cwd: app,
    timeoutMs: 8 * 60_000,
  });

  const problems = [];
  for (const t of packed) {
    const dir = join(app, "node_modules", t.name);
    if (!existsSync(dir) || lstatSync(dir).isSymbolicLink())
      problems.push(`${t.name} is not installed as a copy`);
    else if (!inside(realpathSync(dir), app)) problems.push(`${t.name} resolves to ${realpathSync(dir)}`);
  }
  // Resolved the way Node resolves them, from inside the app.
  const resolved = run(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `for (const s of ${JSON.stringify([
        ...packed.map((t) => t.name),
        "@blindcast/keys/lambda",
        "@blindcast/player/light",
        "hls.js",
        "jose",
      ])}) console.log(new URL(import.meta.resolve(s)).pathname)`,
    ],
    { cwd: app },
  ).stdout.trim();
  for (const path of resolved.split("\n"))
    if (!inside(path, app)) problems.push(`an import resolves to ${path}`);
  // One hls.js, the app's, which the player shares as its peer.
  const hlsCopies = findPackages(join(app, "node_modules"), "hls.js");
  if (hlsCopies.length !== 1)
    problems.push(`hls.js installed ${hlsCopies.length} times: ${hlsCopies.join(", ")}`);
  if (problems.length > 0) throw new Error(problems.join("\n"));
}

/**
 * Every ```ts block, as in test/docs-examples.test.ts: player code under the DOM library with
 * bundler resolution (as Vite reads it), the rest as Node ESM. Strict, with the packages' own
 * .d.ts checked too (skipLibCheck off), and exactOptionalPropertyTypes, which decides whether a
 * user's options objects fit our types.
 */
async function typecheckSnippets() {
  const snippets = extractSnippets(root, documentedFiles(root));
  for (const kind of ["node", "browser"]) mkdirSync(join(app, "snippets", kind), { recursive: true });
  for (const s of snippets) {
    const kind = isBrowserSnippet(s.code) ? "browser" : "node";
    writeFileSync(join(app, "snippets", kind, `${s.file}.ts`), withPlaceholders(s.code));
  }
  const strict = {
    target: "ES2022",
    strict: true,
    exactOptionalPropertyTypes: true,
    noImplicitOverride: true,
    noImplicitReturns: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: false,
    noEmit: true,
  };
  writeJson(join(app, "tsconfig.node.json"), {
    compilerOptions: {
      ...strict,
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2022"],
      types: ["node"],
    },
    include: ["snippets/node/*.ts"],
  });
  writeJson(join(app, "tsconfig.json"), {
    compilerOptions: {
      ...strict,
      module: "ESNext",
      moduleResolution: "Bundler",
      lib: ["ES2022", "DOM", "DOM.Iterable"],
      types: [],
    },
    include: ["snippets/browser/*.ts", "src/**/*.ts"],
  });
  const tsc = join(app, "node_modules/typescript/bin/tsc");
  const configs = ["tsconfig.node.json", "tsconfig.json"];
  const results = await Promise.all(
    configs.map((config) => runAsync(process.execPath, [tsc, "-p", config], { cwd: app })),
  );
  const errors = results.flatMap((r, i) =>
    r.status === 0 ? [] : [`${configs[i]}:\n${r.stdout}${r.stderr}`],
  );
  if (errors.length > 0)
    throw new Error(`snippets do not compile against the tarballs:\n${errors.join("\n")}`);
  console.error(`  ${snippets.length} snippets compiled`);
}

/** The keys README's Lambda handler, bundled as its README says, answering as Lambda would. */
async function lambda() {
  const snippet = extractSnippets(root, ["packages/keys-lambda/README.md"]).find((s) =>
    s.code.includes("export const handler"),
  );
  if (!snippet) throw new Error("packages/keys-lambda/README.md has no `export const handler` example");
  writeFileSync(join(app, "handler.ts"), snippet.code);
  run(
    join(app, "node_modules/.bin/esbuild"),
    [
      "handler.ts",
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--target=node20",
      "--outfile=lambda/handler.mjs",
      "--metafile=lambda/meta.json",
      "--log-level=warning",
    ],
    { cwd: app },
  );
  const inputs = Object.keys(readJson(join(app, "lambda/meta.json")).inputs);
  const outside = inputs.filter((input) => !inside(join(app, input), app));
  if (outside.length > 0)
    throw new Error(`the bundle took files from outside the app: ${outside.join(", ")}`);
  if (!inputs.some((input) => input.startsWith("node_modules/@blindcast/keys/dist/"))) {
    throw new Error("the bundle does not contain @blindcast/keys from the tarball");
  }

  const expected = bytesToHex(await deriveEpochKey(hexToBytes(MASTER_KEY), hexToBytes(SALT), CONTENT_ID, 3));
  const env = {
    MASTER_KEY,
    SALT,
    JWT_SECRET,
    CORS_ORIGINS: "https://app.example.com",
    REQUEST_PATH: `/keys/${CONTENT_ID}/3`,
  };
  const call = (extra) => {
    const { stdout } = run(process.execPath, ["invoke-handler.mjs"], { cwd: app, env: { ...env, ...extra } });
    const line = stdout.split("\n").find((l) => l.startsWith("answer: "));
    if (!line) throw new Error(`invoke-handler.mjs printed no answer:\n${stdout}`);
    return JSON.parse(line.slice("answer: ".length));
  };
  const ok = call({ VIEWER_TOKEN: await viewerToken() });
  const key = ok.statusCode === 200 ? bytesToHex(new Uint8Array(Buffer.from(ok.body, "base64"))) : "";
  if (key !== expected)
    throw new Error(`the handler answered ${ok.statusCode} ${ok.body}, not the epoch key`);
  const refused = call({});
  if (refused.statusCode !== 401)
    throw new Error(`without a token the handler answered ${refused.statusCode}`);
}

/** The publisher's tools as installed: keys from the installed server with only a token. */
async function publish() {
  const keys = await start(join(app, "node_modules/.bin/blindcast-keys"), [], {
    cwd: app,
    env: { MASTER_KEY, SALT, JWT_SECRET, CORS_ORIGINS: "*", PORT: "0", PUBLISH: "on" },
    ready: /listening on (http:\/\/\S+)/,
  });
  try {
    const token = await new SignJWT({ scope: "blindcast:publish" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("publisher-1")
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(JWT_SECRET));
    const out = join(scratch, "published");
    const pack = run(
      join(app, "node_modules/.bin/blindcast-pack"),
      [
        join(root, "demo/sample/master.m3u8"),
        out,
        "--content-id",
        CONTENT_ID,
        "--segments-per-epoch",
        "2",
        "--key-server",
        keys.match[1],
      ],
      { cwd: app, env: { BLINDCAST_TOKEN: token } },
    );
    if (!/8 segments, 4 key\(s\)/.test(pack.stderr))
      throw new Error(`blindcast-pack --key-server:\n${pack.stderr}`);
    const help = run(join(app, "node_modules/.bin/blindcast-upload"), ["--help"], { cwd: app });
    if (!/blindcast-upload/.test(help.stdout + help.stderr))
      throw new Error("blindcast-upload --help printed no usage");
    // No bucket configured on this server: the installed uploader reaches it and reports why.
    const upload = run(
      join(app, "node_modules/.bin/blindcast-upload"),
      [out, "--content-id", CONTENT_ID, "--key-server", keys.match[1]],
      { cwd: app, env: { BLINDCAST_TOKEN: token }, allowFailure: true },
    );
    if (upload.status !== 1 || !/not configured|uploads/i.test(upload.stderr)) {
      throw new Error(`blindcast-upload without storage exited ${upload.status}:\n${upload.stderr}`);
    }
    if ((pack.stderr + upload.stderr).includes(token)) throw new Error("a CLI printed the token");
  } finally {
    keys.child.kill("SIGTERM");
  }
}

async function play() {
  const secrets = { MASTER_KEY, SALT };
  const media = join(app, "public/media", CONTENT_ID);
  const pack = run(
    join(app, "node_modules/.bin/blindcast-pack"),
    [
      join(root, "demo/sample/master.m3u8"),
      media,
      "--content-id",
      CONTENT_ID,
      "--segments-per-epoch",
      String(SEGMENTS_PER_EPOCH),
    ],
    { cwd: app, env: secrets },
  );
  if (!/wrote .*master\.m3u8: 8 segments, 4 key\(s\)/.test(pack.stderr)) {
    throw new Error(`blindcast-pack did not report 8 segments and 4 keys:\n${pack.stderr}`);
  }
  run(join(app, "node_modules/.bin/vite"), ["build", "--logLevel", "warn"], { cwd: app });
  if (!existsSync(join(app, "dist/media", CONTENT_ID, "master.m3u8")))
    throw new Error("vite build left out the media");

  const page = await start(process.execPath, ["serve.mjs"], { cwd: app, ready: /serving (http:\/\/\S+)/ });
  const origin = new URL(page.match[1]).origin;
  const keys = await start(join(app, "node_modules/.bin/blindcast-keys"), [], {
    cwd: app,
    env: { ...secrets, JWT_SECRET, CORS_ORIGINS: origin, PORT: "0", LEASE_TTL_SECONDS: "30" },
    ready: /listening on (http:\/\/\S+)/,
  });
  const keysUrl = keys.match[1];

  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 60_000 });
  const tab = await browser.newPage();
  const consoleErrors = [];
  tab.on("pageerror", (error) => consoleErrors.push(error.message));
  const params = new URLSearchParams({
    keyServerUrl: keysUrl,
    src: `/media/${CONTENT_ID}/master.m3u8`,
    contentId: CONTENT_ID,
    token: await viewerToken(),
  });
  await tab.goto(`${origin}/?${params}`, { timeout: 30_000 });
  // Past the first key rotation (epoch 1 starts at 4 s), or an error.
  await tab
    .waitForFunction(
      () => document.querySelector("video").currentTime > 4.5 || window.outsideIn.errors.length > 0,
      undefined,
      { timeout: 45_000, polling: 100 },
    )
    .catch(() => {});
  const state = await tab.evaluate(() => {
    const video = document.querySelector("video");
    return {
      currentTime: video.currentTime,
      frames: video.getVideoPlaybackQuality().totalVideoFrames,
      ...window.outsideIn,
    };
  });
  const audit = keys.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
  const served = new Set([
    ...audit.filter((r) => r.route === "lease_create" && r.status === 201).flatMap((r) => r.keys ?? []),
    ...audit.filter((r) => r.route === "epoch_key" && r.status === 200).map((r) => r.epoch),
    ...audit.filter((r) => r.route === "title_keys" && r.status === 200).flatMap((r) => r.keys ?? []),
  ]);
  const loaded = new Set(state.keys.map((k) => k.epoch));
  const problems = [];
  if (consoleErrors.length > 0) problems.push(`page errors: ${consoleErrors.join("; ")}`);
  if (state.errors.length > 0) problems.push(`player errors: ${JSON.stringify(state.errors)}`);
  if (state.currentTime <= 4.5) problems.push(`played only to ${state.currentTime} s`);
  if (state.frames < 60) problems.push(`only ${state.frames} frames decoded`);
  if (state.leases !== 1) problems.push(`${state.leases} leases created`);
  for (const epoch of [0, 1]) {
    if (!loaded.has(epoch)) problems.push(`the player did not load the key of epoch ${epoch}`);
    if (!served.has(epoch)) problems.push(`the key server did not serve the key of epoch ${epoch}`);
  }
  if (problems.length > 0) {
    throw new Error(
      `playback from the tarballs failed:\n  ${problems.join("\n  ")}\n  key server audit: ${keys.stdout}`,
    );
  }
  console.error(
    `  played to ${state.currentTime.toFixed(1)} s, ${state.frames} frames, keys of epochs ${[...loaded].sort().join(", ")} from ${keysUrl}`,
  );
}

// ---------------------------------------------------------------------------------------------

function viewerToken() {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("viewer-1")
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/**
 * The environment a user's shell would give: without what npm or pnpm put there for the
 * workspace's own scripts (npm_config_*, npm_package_*, the workspace's node_modules/.bin on
 * PATH), so that no child finds a tool or setting of the workspace.
 */
function userEnv(extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM_|INIT_CWD$|NODE_PATH$)/i.test(name)) continue;
    env[name] = value;
  }
  env.PATH = (process.env.PATH ?? "")
    .split(":")
    .filter((entry) => entry && !inside(entry, root))
    .join(":");
  return { ...env, ...extra };
}

function run(command, args, { cwd, env = {}, timeoutMs = 5 * 60_000, allowFailure = false }) {
  const result = spawnSync(command, args, {
    cwd,
    env: userEnv(env),
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw new Error(`${command} ${args.join(" ")}: ${result.error.message}`);
  if (result.status !== 0 && !allowFailure) {
    throw new Error(
      `${relative(root, command) || command} ${args.join(" ")} exited with ${result.status ?? result.signal}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result;
}

/** Runs a command to its end (bounded), without blocking: { status, stdout, stderr }. */
function runAsync(command, args, { cwd, env = {}, timeoutMs = 5 * 60_000 }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: userEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    const output = { stdout: "", stderr: "" };
    for (const stream of ["stdout", "stderr"]) {
      child[stream].setEncoding("utf8");
      child[stream].on("data", (chunk) => {
        if (output[stream].length < 4 * 1024 * 1024) output[stream] += chunk;
      });
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Error(`${command} ${args.join(" ")}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ status: code ?? `${signal} (after ${timeoutMs / 1000} s at most)`, ...output });
    });
  });
}

/** Starts a long-running process and waits (bounded) for a line on stdout or stderr matching `ready`. */
function start(command, args, { cwd, env = {}, ready, timeoutMs = 60_000 }) {
  const child = spawn(command, args, { cwd, env: userEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const output = { stdout: "", stderr: "" };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs / 1000} s`), timeoutMs);
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${why}:\n${output.stdout}${output.stderr}`));
    };
    const check = () => {
      const match = ready.exec(output.stdout) ?? ready.exec(output.stderr);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        match,
        child,
        get stdout() {
          return output.stdout;
        },
      });
    };
    for (const stream of ["stdout", "stderr"]) {
      child[stream].setEncoding("utf8");
      child[stream].on("data", (chunk) => {
        // Bounded: a server's output past 4 MB is not kept.
        if (output[stream].length < 4 * 1024 * 1024) output[stream] += chunk;
        check();
      });
    }
    child.on("error", (error) => fail(error.message));
    child.on("exit", (code, signal) => {
      children.delete(child);
      fail(`exited with ${code ?? signal}`);
    });
  });
}

async function cleanup() {
  await browser?.close().catch(() => {});
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise((resolve) => {
          const kill = setTimeout(() => {
            child.kill("SIGKILL");
            resolve();
          }, 5_000);
          child.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
  if (process.env.KEEP_OUTSIDE_IN) console.error(`outside-in: scratch folder kept: ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
}

/** The files of a .tgz, by path: a ustar reader for what npm and pnpm write. */
function untar(gz) {
  const tar = gunzipSync(gz);
  const files = new Map();
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start, length) => header.toString("latin1", start, start + length).replace(/\0.*$/s, "");
    const name = [field(345, 155), field(0, 100)].filter(Boolean).join("/");
    const size = Number.parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1);
    const data = tar.subarray(offset + 512, offset + 512 + size);
    if (type === "0" || type === "")
      files.set(name, { data, mode: Number.parseInt(field(100, 8).trim(), 8) });
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

function findPackages(nodeModules, name) {
  const found = [];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir)) {
      if (entry.startsWith(".")) continue;
      const path = join(dir, entry);
      if (entry.startsWith("@")) {
        for (const scoped of readdirSync(path)) visit(join(path, scoped), `${entry}/${scoped}`);
      } else {
        visit(path, entry);
      }
    }
  };
  const visit = (path, packageName) => {
    if (packageName === name) found.push(path);
    walk(join(path, "node_modules"));
  };
  walk(nodeModules);
  return found;
}

function inside(path, dir) {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/** A packed manifest, keys sorted, without `prepack` (pnpm leaves it out of what it packs; npm keeps it). */
function comparableManifest(data) {
  const manifest = JSON.parse(data.toString());
  delete manifest.scripts?.prepack;
  if (manifest.scripts && Object.keys(manifest.scripts).length === 0) delete manifest.scripts;
  return sortKeys(manifest);
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

function readJson(file) {
  return JSON.parse(readFileSync(file, "utf8"));
}

function writeJson(file, value) {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function kb(bytes) {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}
