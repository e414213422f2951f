/**
 * Keys held in memory for one player, by (contentId, epoch). Concurrent requests for one key
 * share a single fetch; a failed fetch is forgotten so a later request can try again. Never
 * persisted anywhere.
 */
export class KeyCache {
  private readonly entries = new Map<string, Promise<Uint8Array>>();
  private readonly settled: Uint8Array[] = [];

  get(name: string, fetchKey: () => Promise<Uint8Array>): { key: Promise<Uint8Array>; fresh: boolean } {
    const existing = this.entries.get(name);
    if (existing) return { key: existing, fresh: false };
    const key = fetchKey().then(
      (bytes) => {
        this.settled.push(bytes);
        return bytes;
      },
      (error: unknown) => {
        if (this.entries.get(name) === key) this.entries.delete(name);
        throw error;
      },
    );
    this.entries.set(name, key);
    return { key, fresh: true };
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Overwrites every key held, then forgets them. */
  wipe(): void {
    for (const bytes of this.settled) bytes.fill(0);
    this.settled.length = 0;
    this.entries.clear();
  }
}
