import { vi } from "vitest";

/** Lets pending promise chains (msw, fetch, our handlers) run without moving the fake clock. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await vi.advanceTimersByTimeAsync(0);
}
