// The key route on Hono with @hono/node-server, written the obvious way (see common.mjs).
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import {
  audit,
  corsHeaders,
  createLease,
  KEY_HEADERS,
  keyFor,
  originAllowed,
  PORT_MESSAGE,
} from "./common.mjs";

const app = new Hono();

app.use(async (c, next) => {
  const origin = c.req.header("origin");
  if (originAllowed(origin) === false) {
    audit(c.req.method, "unmatched", 403, undefined, undefined, performance.now());
    return c.json({ error: "Origin not allowed", code: "origin_not_allowed" }, 403);
  }
  await next();
  for (const [name, value] of Object.entries(corsHeaders(origin))) c.res.headers.set(name, value);
});

app.post("/keys/leases", async (c) => {
  const started = performance.now();
  const lease = createLease(await c.req.json().catch(() => undefined));
  if (Array.isArray(lease)) {
    audit("POST", "lease_create", lease[0], undefined, undefined, started);
    return c.json({ error: lease[1], code: lease[2] }, lease[0]);
  }
  audit("POST", "lease_create", 201, lease.contentId, undefined, started);
  return c.json(lease, 201);
});

app.get("/keys/:contentId/:epoch", (c) => {
  const started = performance.now();
  const { contentId, epoch } = c.req.param();
  const key = keyFor(contentId, epoch, c.req.header("x-blindcast-lease"));
  if (Array.isArray(key)) {
    audit("GET", "epoch_key", key[0], contentId, undefined, started);
    return c.json({ error: key[1], code: key[2] }, key[0]);
  }
  audit("GET", "epoch_key", 200, contentId, epoch, started);
  return c.body(new Uint8Array(key), 200, KEY_HEADERS);
});

serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => console.error(PORT_MESSAGE(info.port)));
