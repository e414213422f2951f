import type { ChildProcessByStdio, SpawnSyncReturns } from "node:child_process";
import type { Readable } from "node:stream";

export { ensureBaseImage } from "./container-base.mjs";
export const IMAGE: string;
export function buildImage(): { seconds: number; log: string; cachedSteps: number };
export interface ImageConfig {
  id: string;
  size: number;
  user: string;
  workingDir: string;
  env: string[];
  entrypoint: string[];
  cmd: string[];
  healthcheck: { Test?: string[] } | undefined;
  volumes: string[];
  exposedPorts: string[];
}
export function inspectImage(): ImageConfig;
export function mountImage(): string;
export function unmountImage(): void;
export function resolveUser(rootfs: string, user: string): { uid: number; gid: number };
export interface RunningImage {
  child: ChildProcessByStdio<null, Readable, Readable>;
  uid: number;
  gid: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  pid1(): number;
  exec(command: string[], extraEnv?: Record<string, string>): SpawnSyncReturns<string>;
}
export function runImage(
  rootfs: string,
  config: ImageConfig,
  options?: { env?: Record<string, string>; volumeSource?: string; secrets?: string },
): RunningImage;
export function healthcheckCommand(healthcheck: { Test?: string[] } | undefined): string[];
