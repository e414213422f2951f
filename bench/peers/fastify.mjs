// The key route on Fastify 5, written the obvious way (see common.mjs).
import Fastify from "fastify";
import {
  audit,
  corsHeaders,
  createLease,
  KEY_HEADERS,
  keyFor,
  originAllowed,
  PORT_MESSAGE,
} from "./common.mjs";

const app = Fastify();

app.addHook("onRequest", (req, reply, done) => {
  const origin = req.headers.origin;
  if (originAllowed(origin) === false) {
    audit(req.method, "unmatched", 403, undefined, undefined, performance.now());
    return reply.code(403).send({ error: "Origin not allowed", code: "origin_not_allowed" });
  }
  reply.headers(corsHeaders(origin));
  done();
});

app.post("/keys/leases", (req, reply) => {
  const started = performance.now();
  const lease = createLease(req.body);
  if (Array.isArray(lease)) {
    audit("POST", "lease_create", lease[0], undefined, undefined, started);
    return reply.code(lease[0]).send({ error: lease[1], code: lease[2] });
  }
  audit("POST", "lease_create", 201, lease.contentId, undefined, started);
  reply.code(201).send(lease);
});

app.get("/keys/:contentId/:epoch", (req, reply) => {
  const started = performance.now();
  const { contentId, epoch } = req.params;
  const key = keyFor(contentId, epoch, req.headers["x-blindcast-lease"]);
  if (Array.isArray(key)) {
    audit("GET", "epoch_key", key[0], contentId, undefined, started);
    return reply.code(key[0]).send({ error: key[1], code: key[2] });
  }
  audit("GET", "epoch_key", 200, contentId, epoch, started);
  reply.headers(KEY_HEADERS).send(Buffer.from(key));
});

await app.listen({ port: 0, host: "127.0.0.1" });
console.error(PORT_MESSAGE(app.server.address().port));
