// The key route on Express 5, written the obvious way (see common.mjs).
import express from "express";
import {
  audit,
  corsHeaders,
  createLease,
  KEY_HEADERS,
  keyFor,
  originAllowed,
  PORT_MESSAGE,
} from "./common.mjs";

const app = express();
// Keys are no-store: an ETag (a hash of every body) would be wasted work.
app.set("etag", false);
app.disable("x-powered-by");

app.use((req, res, next) => {
  const origin = req.get("origin");
  if (originAllowed(origin) === false) {
    audit(req.method, "unmatched", 403, undefined, undefined, performance.now());
    return res.status(403).json({ error: "Origin not allowed", code: "origin_not_allowed" });
  }
  res.set(corsHeaders(origin));
  next();
});

app.post("/keys/leases", express.json(), (req, res) => {
  const started = performance.now();
  const lease = createLease(req.body);
  if (Array.isArray(lease)) {
    audit("POST", "lease_create", lease[0], undefined, undefined, started);
    return res.status(lease[0]).json({ error: lease[1], code: lease[2] });
  }
  audit("POST", "lease_create", 201, lease.contentId, undefined, started);
  res.status(201).json(lease);
});

app.get("/keys/:contentId/:epoch", (req, res) => {
  const started = performance.now();
  const { contentId, epoch } = req.params;
  const key = keyFor(contentId, epoch, req.get("x-blindcast-lease"));
  if (Array.isArray(key)) {
    audit("GET", "epoch_key", key[0], contentId, undefined, started);
    return res.status(key[0]).json({ error: key[1], code: key[2] });
  }
  audit("GET", "epoch_key", 200, contentId, epoch, started);
  res.set(KEY_HEADERS).send(Buffer.from(key));
});

const server = app.listen(0, "127.0.0.1", () => console.error(PORT_MESSAGE(server.address().port)));
