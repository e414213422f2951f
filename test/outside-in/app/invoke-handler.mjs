// Calls the esbuild bundle of the README's Lambda handler with the event API Gateway (HTTP API,
// payload 2.0) would send, and prints its answer as one line, after the audit lines it writes.
const { handler } = await import(new URL("./lambda/handler.mjs", import.meta.url).href);
const token = process.env.VIEWER_TOKEN;
const answer = await handler({
  version: "2.0",
  routeKey: "$default",
  rawPath: process.env.REQUEST_PATH,
  rawQueryString: "",
  headers: token ? { authorization: `Bearer ${token}` } : {},
  requestContext: { http: { method: "GET", path: process.env.REQUEST_PATH }, stage: "$default" },
  isBase64Encoded: false,
});
console.log(`answer: ${JSON.stringify(answer)}`);
