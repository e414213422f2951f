// The Lambda runtime the templates in deploy/ declare, and a Node binary of its major to run the
// bundled handlers on in tests: the Node that runs the tests may be older or newer than Lambda's.
// The binary comes from the npm registry (node-<os>-<arch>, optional dependencies of
// scripts/lambda-node-bin, so pnpm installs only this platform's); LAMBDA_NODE overrides it.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The runtime of every function in deploy/: the newest Node runtime AWS still creates. */
export const LAMBDA_RUNTIME = "nodejs24.x";
/** Its Node major, the target the bundles are built for. */
export const LAMBDA_NODE_MAJOR = 24;

/** The path of a Node binary of the Lambda runtime's major; throws, saying what to do, when there is none. */
export function lambdaNodePath() {
  if (process.env.LAMBDA_NODE) return process.env.LAMBDA_NODE;
  const name = `node-${process.platform}-${process.arch}`;
  const require = createRequire(new URL("./lambda-node-bin/package.json", import.meta.url));
  let binary;
  try {
    binary = join(dirname(require.resolve(`${name}/package.json`)), "bin", "node");
  } catch {
    throw new Error(
      `no Node ${LAMBDA_NODE_MAJOR} binary for ${process.platform}-${process.arch}: run \`sh scripts/pnpm.sh install\` ` +
        `(scripts/lambda-node-bin lists the platforms the npm registry has), or set LAMBDA_NODE to a Node ${LAMBDA_NODE_MAJOR} binary`,
    );
  }
  if (!existsSync(binary)) throw new Error(`${name} is installed but has no ${binary}`);
  return binary;
}
