import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "deploy/*/test/**/*.test.ts"],
    // Tests import packages by name, as users do, so they run against the built dist/.
    testTimeout: 20_000,
  },
});
