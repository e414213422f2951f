import { createServer, request } from "node:http";

/**
 * An HTTP proxy on loopback that holds every request `delayMs` before forwarding it to
 * `upstream`: a fixed round-trip time, the same for every kind of request (preflights too).
 * With `seen`, each request is noted there as it arrives: `{ at (ms since epoch), method, url }`.
 */
export function startDelayProxy(upstream, delayMs, seen) {
  const target = new URL(upstream);
  const server = createServer((req, res) => {
    seen?.push({ at: Date.now(), method: req.method, url: req.url });
    setTimeout(() => {
      const forwarded = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forwarded.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(forwarded);
    }, delayMs);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: server.address().port,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
