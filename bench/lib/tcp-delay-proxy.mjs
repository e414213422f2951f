import { connect, createServer } from "node:net";

/**
 * A TCP proxy on loopback that delays every chunk `delayMs` in each direction: a network round
 * trip of about 2 × delayMs between a client and a server on the same machine.
 */
export function startTcpDelayProxy(targetPort, delayMs) {
  const sockets = new Set();
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    const relay = (from, to) =>
      from.on("data", (chunk) => setTimeout(() => to.writable && to.write(chunk), delayMs));
    relay(client, upstream);
    relay(upstream, client);
    client.on("end", () => setTimeout(() => upstream.end(), delayMs));
    upstream.on("end", () => setTimeout(() => client.end(), delayMs));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: server.address().port,
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}
