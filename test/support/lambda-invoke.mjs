// Loads a bundled Lambda handler and invokes it as the Lambda runtime would, one execution
// environment: the module is imported once, then each event read from stdin (one JSON per line)
// is passed to `handler(event)` in turn and its result written to fd 3 as one JSON line. stdout
// stays the function's log, as on Lambda, where the audit trail goes; each message says how many
// bytes the log holds by then, so the reader can wait for them (two pipes keep no common order).
//   node lambda-invoke.mjs <bundle.mjs>   (spawned with a pipe as fd 3)
import { writeSync } from "node:fs";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

let logged = 0;
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  logged +=
    typeof chunk === "string"
      ? Buffer.byteLength(chunk, typeof rest[0] === "string" ? rest[0] : "utf8")
      : chunk.length;
  return write(chunk, ...rest);
};
const reply = (message) => writeSync(3, `${JSON.stringify({ ...message, logged })}\n`);

let handler;
try {
  ({ handler } = await import(pathToFileURL(process.argv[2]).href));
  if (typeof handler !== "function") throw new Error("the bundle exports no handler function");
} catch (error) {
  reply({ type: "load_error", message: String(error) });
  process.exit(1);
}
reply({ type: "loaded", node: process.version });

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  try {
    reply({ type: "result", result: await handler(JSON.parse(line), {}) });
  } catch (error) {
    // On Lambda a thrown error becomes an invocation error (API Gateway answers 502).
    reply({ type: "invocation_error", message: String(error) });
  }
}
