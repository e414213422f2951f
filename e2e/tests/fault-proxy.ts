import { createServer, request } from "node:http";

export type Fault = { status: number } | { delayMs: number } | { redirect: string } | "pass";

/**
 * A proxy on loopback in front of a key server that answers some requests itself with an error
 * or a redirect, or holds them, as `decide` says: a key server with intermittent faults. Error answers carry
 * the CORS headers a real key server sends, so the page sees the status, not a network error.
 */
export async function startFaultProxy(upstreamPort: number, decide: (method: string, path: string) => Fault) {
  const seen: { method: string; path: string; fault: Fault }[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const fault = req.method === "OPTIONS" ? "pass" : decide(req.method ?? "GET", path);
    seen.push({ method: req.method ?? "GET", path, fault });
    const forward = () => {
      const upstream = request(
        { host: "127.0.0.1", port: upstreamPort, method: req.method, path, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    };
    if (fault !== "pass" && "redirect" in fault) {
      // As a key server behind a redirecting gateway would: CORS headers on the redirect too.
      req.resume();
      res.writeHead(307, {
        location: fault.redirect,
        "access-control-allow-origin": String(req.headers.origin ?? "*"),
        vary: "Origin",
      });
      res.end();
      return;
    }
    if (fault !== "pass" && "status" in fault) {
      req.resume();
      res.writeHead(fault.status, {
        "content-type": "application/json",
        "access-control-allow-origin": String(req.headers.origin ?? "*"),
        vary: "Origin",
      });
      res.end(JSON.stringify({ error: "Injected fault", code: "internal" }));
      return;
    }
    if (fault !== "pass" && "delayMs" in fault) setTimeout(forward, fault.delayMs);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    keysUrl: `http://127.0.0.1:${port}/keys`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
