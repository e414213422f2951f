import { defineConfig } from "vitest/config";

// The container image test (test/image): builds deploy/docker/Dockerfile with podman and runs the
// image. The first run on a machine makes the base image and builds every layer (minutes); later
// runs reuse both (see scripts/container-base.mjs).
export default defineConfig({
  test: {
    include: ["test/image/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 40 * 60_000,
  },
});
