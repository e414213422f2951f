import { closeSync, openSync, readSync, statSync } from "node:fs";
import { EnvConfigError, type KeyServerEnv } from "./env.js";

/**
 * The secrets that may come from a file instead (`MASTER_KEY_FILE=/run/secrets/master_key`): the
 * way Docker and Kubernetes hand secrets to a container, keeping them out of `docker inspect` and
 * the process environment of everything the container starts.
 */
export const FILE_VARIABLES = [
  "MASTER_KEY",
  "SALT",
  "JWT_SECRET",
  "DATABASE_URL",
  "AWS_SECRET_ACCESS_KEY",
] as const;

/** A secret file is small; past this it is the wrong file (a disk image, /dev/zero). */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * The environment with each `NAME_FILE` replaced by `NAME` holding the file's content, less one
 * trailing newline (`echo` and most editors add one; `openssl rand -hex 32 > file` too). Setting
 * both `NAME` and `NAME_FILE` is refused, as is a file that cannot be read, is not a regular file,
 * is empty or is larger than {@link MAX_SECRET_FILE_BYTES}. Messages name the variable and the
 * path, never the content.
 */
export function withFileVariables(env: KeyServerEnv): KeyServerEnv {
  let resolved: Record<string, string | undefined> | undefined;
  for (const name of FILE_VARIABLES) {
    const fileName = `${name}_FILE`;
    const path = env[fileName]?.trim();
    if (!path) continue;
    if (env[name]?.trim()) throw new EnvConfigError(`set ${name} or ${fileName}, not both`);
    resolved ??= { ...env };
    resolved[name] = readSecretFile(fileName, path);
    delete resolved[fileName];
  }
  return resolved ?? env;
}

function readSecretFile(variable: string, path: string): string {
  let content: Buffer;
  try {
    // Checked before opening: opening a FIFO would wait for a writer, for ever.
    if (!statSync(path).isFile()) throw new EnvConfigError(`${variable}: ${path} is not a regular file`);
    const fd = openSync(path, "r");
    try {
      const buffer = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
      let length = 0;
      for (;;) {
        const read = readSync(fd, buffer, length, buffer.length - length, null);
        if (read === 0) break;
        length += read;
        if (length > MAX_SECRET_FILE_BYTES) {
          throw new EnvConfigError(`${variable}: ${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
        }
      }
      content = buffer.subarray(0, length);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if (error instanceof EnvConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).name;
    throw new EnvConfigError(`${variable}: cannot read ${path} (${code})`);
  }
  const text = content.toString("utf8").replace(/\r?\n$/, "");
  if (text.trim() === "") throw new EnvConfigError(`${variable}: ${path} is empty`);
  return text;
}
