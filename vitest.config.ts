import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "deploy/*/test/**/*.test.ts"],
    // The container image test builds an image: its own script (test:image, vitest.image.config.ts).
    exclude: [...configDefaults.exclude, "test/image/**"],
    // Tests import packages by name, as users do, so they run against the built dist/.
    testTimeout: 20_000,
  },
});
