import { defineConfig } from "@playwright/test";

export const PAGE_PORT = 4173;

/**
 * Debian's Chromium (never a downloaded browser), overridable with CHROMIUM_PATH. The flags keep
 * it from reaching for the network, which this sandbox does not have.
 */
export default defineConfig({
  testDir: "tests",
  timeout: 60_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  reporter: [["list"]],
  webServer: {
    command: "node serve-page.mjs",
    url: `http://localhost:${PAGE_PORT}/`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: "pipe",
  },
  use: {
    browserName: "chromium",
    baseURL: `http://localhost:${PAGE_PORT}`,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
      ],
    },
  },
});
