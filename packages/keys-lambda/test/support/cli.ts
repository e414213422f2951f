import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:net";
import type { Readable } from "node:stream";

/** The built `blindcast-keys` CLI, as npm installs it. */
export const CLI = new URL("../../dist/node/cli.js", import.meta.url).pathname;

export interface CliOptions {
  /** Runs the CLI with at most this many open files (soft and hard), through `ulimit -n`. */
  openFiles?: number;
  /** A file descriptor to give the CLI as its stdout, instead of a pipe read into `stdout()`. */
  stdout?: number;
}

export interface RunningCli {
  url: string;
  port: number;
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the CLI with only `vars` (and PATH) and resolves once it listens, with what it printed. */
export async function startCli(vars: Record<string, string>, options: CliOptions = {}): Promise<RunningCli> {
  const command =
    options.openFiles === undefined
      ? [process.execPath, CLI]
      : ["sh", "-c", `ulimit -n ${options.openFiles} && exec "$0" "$@"`, process.execPath, CLI];
  const child = spawn(command[0] as string, command.slice(1), {
    env: { PATH: process.env.PATH ?? "", ...vars },
    stdio: ["ignore", options.stdout ?? "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  const childStderr = child.stderr as Readable;
  childStderr.setEncoding("utf8");
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    childStderr.on("data", (chunk: string) => {
      stderr += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  return {
    url,
    port: Number(new URL(url).port),
    child,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      return code as number | null;
    },
  };
}

/** Runs the CLI to its exit (a refused configuration, --help), with its exit code and output. */
export async function runCliToExit(
  vars: Record<string, string>,
  args: readonly string[] = [],
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", ...vars },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  // A CLI that starts instead of refusing would never exit: stop it, and the test sees code null.
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stderr, stdout };
}

/**
 * GETs `paths` over one connection, pipelined (all requests written at once, answers read in
 * order): thousands of real requests in well under a second, where one fetch each would take
 * seconds on a busy machine. Resolves with each answer's status.
 */
export async function pipelinedGets(port: number, paths: readonly string[]): Promise<number[]> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.end(paths.map((path) => `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`).join(""));
  let buffered = Buffer.alloc(0);
  for await (const chunk of socket) buffered = Buffer.concat([buffered, chunk as Buffer]);
  const statuses: number[] = [];
  let at = 0;
  while (at < buffered.length) {
    const headEnd = buffered.indexOf("\r\n\r\n", at);
    if (headEnd < 0) break;
    const head = buffered.toString("latin1", at, headEnd);
    statuses.push(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]));
    at = headEnd + 4 + Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
  }
  return statuses;
}
