import { defineConfig } from "@playwright/test";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../scripts/chromium.mjs";

export const PAGE_PORT = 4173;

/** Debian's Chromium (never a downloaded browser), overridable with CHROMIUM_PATH. */
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
    launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
  },
});
