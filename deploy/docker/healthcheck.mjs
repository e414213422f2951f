// The image's HEALTHCHECK: exits 0 when the server in this container answers its liveness route.
// Node's fetch, as the slim base has no curl; bounded, so a hung server fails the check rather
// than stacking checks up.
const port = process.env.PORT || "8787";
const host = process.env.HOST?.trim() || "127.0.0.1";
// A wildcard bind is reached on loopback; a specific address, on that address.
const target =
  host === "0.0.0.0"
    ? "127.0.0.1"
    : host === "::" || host === "[::]"
      ? "[::1]"
      : host.includes(":") && !host.startsWith("[")
        ? `[${host}]`
        : host;
try {
  const response = await fetch(`http://${target}:${port}/healthz`, { signal: AbortSignal.timeout(3000) });
  process.exitCode = response.status === 200 ? 0 : 1;
} catch (error) {
  console.error(`healthcheck: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
