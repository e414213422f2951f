export const CACHE: string;
export const BASE_IMAGE: string;
export function podmanArgs(...args: string[]): string[];
export function podman(args: string[], options?: { inheritStderr?: boolean }): string;
export function debianRootfs(): string;
export function ensureBaseImage(): { image: string; nodeVersion: string; rootfs: string; imported: boolean };
