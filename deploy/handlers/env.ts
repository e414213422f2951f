// Reads the handlers' configuration from the environment. A missing or malformed variable throws
// at cold start with its name, so a misconfigured deployment fails its first invocation loudly
// (in the function's log) instead of serving.

export function requiredEnv(name: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new Error(`${name} is not set: the function's environment needs it`);
  return value;
}

/** An optional whole number; the key server checks its range. */
export function optionalIntegerEnv(name: string): number | undefined {
  const value = process.env[name]?.trim();
  if (!value) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`${name} must be a whole number, got "${value}"`);
  return Number(value);
}
