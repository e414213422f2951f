import { connect, createServer, type Socket } from "node:net";

/**
 * A TCP proxy on loopback whose connections can go silent, the way they do when a database fails
 * over or a stateful firewall forgets them: bytes stop flowing in both directions, yet neither
 * end hears a close or a reset. A silenced connection swallows what either end sends, forever.
 */
export interface BlackholeProxy {
  readonly port: number;
  /** Silences every open connection and every connection accepted from now on. */
  blackhole(): void;
  /**
   * Connections accepted from now on are relayed again (and a pending `blackholeOnClientBytes`
   * is dropped); the silenced ones stay silent.
   */
  restore(): void;
  /**
   * Silences a connection as soon as its client sends `marker` (the chunk holding it is dropped):
   * cuts a conversation at a chosen point, e.g. in the middle of a transaction.
   */
  blackholeOnClientBytes(marker: string): void;
  /** Silenced connections whose client has not closed its end (the client still holds them). */
  openSilenced(): number;
  /** How many connections were accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  silenced: boolean;
  clientOpen: boolean;
}

export function startBlackholeProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<BlackholeProxy> {
  const pairs = new Set<Pair>();
  let silentMode = false;
  let marker: Buffer | undefined;
  let acceptedCount = 0;

  const server = createServer((client) => {
    acceptedCount++;
    const pair: Pair = { client, upstream: undefined, silenced: silentMode, clientOpen: true };
    pairs.add(pair);
    client.on("error", () => {});
    client.on("close", () => {
      pair.clientOpen = false;
      // A silenced connection's close never reaches the server either: its end lingers, as a
      // server's does when a firewall forgot the connection (until close() below).
      if (pair.silenced) return;
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    // A silenced connection's bytes are read and dropped: the client sees no backpressure, no
    // error, no answer. One accepted while everything is silent never reaches the server at all.
    client.on("data", (chunk: Buffer) => {
      if (!pair.silenced && marker && chunk.includes(marker)) {
        marker = undefined;
        pair.silenced = true;
      }
      if (pair.silenced) return;
      pair.upstream?.write(chunk);
    });
    if (pair.silenced) return;
    const upstream = connect(targetPort, targetHost);
    pair.upstream = upstream;
    upstream.on("error", () => {
      if (!pair.silenced) client.destroy();
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!pair.silenced) client.write(chunk);
    });
    // A close relayed from a silenced connection would reveal it: the server's end is simply lost.
    upstream.on("close", () => {
      if (!pair.silenced) client.destroy();
    });
    client.on("end", () => {
      if (!pair.silenced) upstream.end();
    });
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no TCP address");
      resolve({
        port: address.port,
        blackhole() {
          silentMode = true;
          for (const pair of pairs) pair.silenced = true;
        },
        restore() {
          silentMode = false;
          marker = undefined;
        },
        blackholeOnClientBytes(text: string) {
          marker = Buffer.from(text);
        },
        openSilenced: () => [...pairs].filter((p) => p.silenced && p.clientOpen).length,
        accepted: () => acceptedCount,
        close: () =>
          new Promise<void>((done) => {
            for (const pair of pairs) {
              pair.client.destroy();
              pair.upstream?.destroy();
            }
            server.close(() => done());
          }),
      });
    });
  });
}
