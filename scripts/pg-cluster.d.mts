export interface Cluster {
  url: string;
  bin: string;
  pgCtl: string[];
  log: string;
  start(): void;
  stop(): void;
  destroy(): void;
}
export function startCluster(): Promise<Cluster>;
export function findPostgresBin(): string;
