import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { LambdaHttpResult } from "@blindcast/keys/lambda";

const HARNESS = fileURLToPath(new URL("./lambda-invoke.mjs", import.meta.url));

type Message = (
  | { type: "loaded"; node: string }
  | { type: "load_error"; message: string }
  | { type: "result"; result: LambdaHttpResult }
  | { type: "invocation_error"; message: string }
) & {
  /** Bytes the function had written to stdout when it sent this. */
  logged: number;
};

export interface LambdaProcessOptions {
  /** The Node binary to run on. */
  node: string;
  /** The bundled handler. */
  bundle: string;
  /** The function's environment; nothing else of the test's environment is passed on. */
  env: Record<string, string>;
  /** Longest wait for one invocation (or the module's load), like the function's timeout. */
  timeoutMs: number;
}

/**
 * One Lambda execution environment in a child process: the bundle loaded once, then invoked
 * event after event, so module state (a database pool) lives across invocations as when warm.
 */
export class LambdaProcess {
  readonly node: string;
  /** `process.version` in the child. */
  version = "";
  /** What the function printed on stdout (its log: the audit trail), up to the last answer at least. */
  log = "";
  /** What it printed on stderr. */
  errors = "";
  private logBytes = 0;
  private logWaiter: (() => void) | undefined;
  private readonly child: ChildProcess;
  private readonly messages: Message[] = [];
  private waiting: ((message: Message | undefined) => void) | undefined;
  private exited = false;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(child: ChildProcess, node: string) {
    this.child = child;
    this.node = node;
  }

  static async start(options: LambdaProcessOptions): Promise<LambdaProcess> {
    const child = spawn(options.node, [HARNESS, options.bundle], {
      env: { PATH: process.env.PATH ?? "", ...options.env },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
    });
    const lambda = new LambdaProcess(child, options.node);
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      lambda.log += chunk;
      lambda.logBytes += Buffer.byteLength(chunk);
      lambda.logWaiter?.();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      lambda.errors += chunk.toString();
    });
    // Writing to a process that died fails with EPIPE; its exit is reported to the caller instead.
    child.stdin?.on("error", () => {});
    const replies = createInterface({
      input: child.stdio[3] as Readable,
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    replies.on("line", (line) => lambda.deliver(JSON.parse(line) as Message));
    child.once("exit", () => {
      lambda.exited = true;
      lambda.deliver(undefined);
    });
    const first = await lambda.next(options.timeoutMs, "loading the bundle");
    if (first.type !== "loaded") {
      lambda.close();
      throw new Error(`the bundle did not load: ${"message" in first ? first.message : first.type}`);
    }
    lambda.version = first.node;
    return lambda;
  }

  /** Invokes the handler with one event, after any earlier invocation has answered. */
  invoke(event: unknown, timeoutMs = 10_000): Promise<LambdaHttpResult> {
    const run = this.queue.then(async () => {
      this.child.stdin?.write(`${JSON.stringify(event)}\n`);
      const message = await this.next(timeoutMs, "an invocation");
      await this.logReaches(message.logged, timeoutMs);
      if (message.type !== "result") {
        throw new Error(`invocation failed: ${"message" in message ? message.message : message.type}`);
      }
      return message.result;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  close(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }

  /** Waits until `bytes` of the function's stdout have arrived: what it logged before answering. */
  private logReaches(bytes: number, timeoutMs: number): Promise<void> {
    if (this.logBytes >= bytes) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.logWaiter = undefined;
        reject(new Error(`the function's log stopped short of ${bytes} bytes`));
      }, timeoutMs);
      this.logWaiter = () => {
        if (this.logBytes < bytes) return;
        clearTimeout(timer);
        this.logWaiter = undefined;
        resolve();
      };
    });
  }

  private deliver(message: Message | undefined): void {
    if (message) this.messages.push(message);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(message);
  }

  private next(timeoutMs: number, what: string): Promise<Message> {
    const queued = this.messages.shift();
    if (queued) return Promise.resolve(queued);
    if (this.exited)
      return Promise.reject(new Error(`the function's process exited before ${what}: ${this.errors}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        // As Lambda ends an environment that timed out: a late answer must not reach the next caller.
        this.close();
        reject(new Error(`no answer within ${timeoutMs} ms to ${what}`));
      }, timeoutMs);
      this.waiting = (message) => {
        clearTimeout(timer);
        const taken = message ? this.messages.shift() : undefined;
        if (taken) resolve(taken);
        else reject(new Error(`the function's process exited before ${what}: ${this.errors}`));
      };
    });
  }
}
