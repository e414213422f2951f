import { readFileSync } from "node:fs";
import { hexToBytes } from "@blindcast/crypto";
import type { KeyServerLogger } from "@blindcast/keys";

export interface Vector {
  masterKey: string;
  salt: string;
  contentId: string;
  epoch?: number;
  key: string;
}

export const vectors: Vector[] = JSON.parse(
  readFileSync(new URL("../../../../test/vectors/key-derivation-vectors.json", import.meta.url), "utf8"),
);

// Test values only; the contract's vectors use the same master key and salt.
export const MASTER_KEY_HEX = vectors[0]?.masterKey ?? "";
export const SALT_HEX = vectors[0]?.salt ?? "";
export const masterKey = hexToBytes(MASTER_KEY_HEX);
export const salt = hexToBytes(SALT_HEX);

export function vectorFor(contentId: string, epoch?: number): string {
  const vector = vectors.find(
    (v) =>
      v.masterKey === MASTER_KEY_HEX && v.salt === SALT_HEX && v.contentId === contentId && v.epoch === epoch,
  );
  if (!vector) throw new Error(`no vector for ${contentId}/${epoch}`);
  return vector.key;
}

/** A logger that records instead of printing, so tests can assert on warnings. */
export function recordingLogger(): KeyServerLogger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  return {
    warnings,
    errors,
    warn: (message) => warnings.push(message),
    error: (message) => errors.push(message),
  };
}
