import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  EnvConfigError,
  keyServerOptionsFromEnv,
  MAX_SECRET_FILE_BYTES,
  withFileVariables,
} from "@blindcast/keys/node";
import { describe, expect, it } from "vitest";
import { MASTER_KEY_HEX, masterKey, SALT_HEX, salt } from "./support/fixtures.js";

// Docker and Kubernetes secrets: MASTER_KEY_FILE=/run/secrets/master_key and so on.
const dir = mkdtempSync(join(tmpdir(), "blindcast-env-files-"));
function secret(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const base = { CORS_ORIGINS: "*", LEASES: "off" };

describe("*_FILE variables", () => {
  it("read MASTER_KEY, SALT, JWT_SECRET and DATABASE_URL from files, less one trailing newline", async () => {
    const jwtSecret = "a-test-secret-that-is-at-least-32-bytes-long";
    const env = withFileVariables({
      MASTER_KEY_FILE: secret("master_key", `${MASTER_KEY_HEX}\n`),
      SALT_FILE: secret("salt", `${SALT_HEX}\r\n`),
      JWT_SECRET_FILE: secret("jwt_secret", jwtSecret),
      DATABASE_URL_FILE: secret("database_url", "postgres://u:p@db.internal:5432/keys\n\n"),
      OTHER: "kept",
    });
    expect(env).toEqual({
      MASTER_KEY: MASTER_KEY_HEX,
      SALT: SALT_HEX,
      JWT_SECRET: jwtSecret,
      // One newline only: the content is otherwise exactly the file's.
      DATABASE_URL: "postgres://u:p@db.internal:5432/keys\n",
      OTHER: "kept",
    });

    const config = await keyServerOptionsFromEnv({
      ...base,
      MASTER_KEY_FILE: secret("master_key", `${MASTER_KEY_HEX}\n`),
      SALT_FILE: secret("salt", `${SALT_HEX}\n`),
      JWT_SECRET_FILE: secret("jwt_secret", `${jwtSecret}\n`),
    });
    expect(config.options.masterKey).toEqual(masterKey);
    expect(config.options.salt).toEqual(salt);
    expect(config.summary).toContain("auth: bearer JWT (HS256, JWT_SECRET); the viewer is the token's sub");
    await config.close();
  });

  it("leave an environment without them as it is", () => {
    const env = { MASTER_KEY: MASTER_KEY_HEX, SALT_FILE: "  " };
    expect(withFileVariables(env)).toBe(env);
  });

  it.each([
    [
      "both NAME and NAME_FILE",
      () => ({ MASTER_KEY: MASTER_KEY_HEX, MASTER_KEY_FILE: secret("mk", MASTER_KEY_HEX) }),
      "set MASTER_KEY or MASTER_KEY_FILE, not both",
    ],
    [
      "a missing file",
      () => ({ SALT_FILE: join(dir, "nope") }),
      `SALT_FILE: cannot read ${join(dir, "nope")} (ENOENT)`,
    ],
    ["a folder", () => ({ JWT_SECRET_FILE: dir }), `JWT_SECRET_FILE: ${dir} is not a regular file`],
    [
      "an empty file",
      () => ({ DATABASE_URL_FILE: secret("empty", "\n") }),
      `DATABASE_URL_FILE: ${join(dir, "empty")} is empty`,
    ],
    [
      "a file too large to be a secret",
      () => ({ MASTER_KEY_FILE: secret("large", Buffer.alloc(MAX_SECRET_FILE_BYTES + 1, 0x61)) }),
      `MASTER_KEY_FILE: ${join(dir, "large")} is larger than ${MAX_SECRET_FILE_BYTES} bytes`,
    ],
  ])("refuse %s, saying which variable and why", (_, env, message) => {
    expect(() => withFileVariables(env())).toThrow(new EnvConfigError(message));
  });

  it("refuse a FIFO at once instead of waiting for a writer", () => {
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    expect(() => withFileVariables({ MASTER_KEY_FILE: fifo })).toThrow(`${fifo} is not a regular file`);
  });

  it("never put a file's content in a message", () => {
    const path = secret("not-hex", "zz-this-is-secret-zz\n");
    const failure = keyServerOptionsFromEnv({ ...base, MASTER_KEY_FILE: path, SALT: SALT_HEX });
    return expect(failure).rejects.toSatisfy(
      (error: Error) => error instanceof EnvConfigError && !error.message.includes("this-is-secret"),
    );
  });
});

describe("blindcast-keys with *_FILE variables", () => {
  const cli = new URL("../dist/node/cli.js", import.meta.url).pathname;

  async function run(env: Record<string, string>) {
    const child = spawn(process.execPath, [cli], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const [code] = await once(child, "exit");
    return { code: code as number | null, stderr };
  }

  it("exits 2 naming the variable when a secret file cannot be read", async () => {
    const path = secret("private", `${MASTER_KEY_HEX}\n`);
    // Root reads any file whatever its mode, and running the CLI as another user would depend on
    // that user reaching this checkout: as root, a path through a file fails to open instead.
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) chmodSync(path, 0o000);
    const unreadable = asRoot ? `${path}/inside` : path;
    const { code, stderr } = await run({ ...base, SALT: SALT_HEX, MASTER_KEY_FILE: unreadable });
    expect(code).toBe(2);
    expect(stderr).toContain(
      `blindcast-keys: MASTER_KEY_FILE: cannot read ${unreadable} (${asRoot ? "ENOTDIR" : "EACCES"})`,
    );
    expect(stderr).not.toContain(MASTER_KEY_HEX);
  });
});
