// The key route on bare node:http, by hand (see common.mjs): no framework at all.
import http from "node:http";
import {
  audit,
  corsHeaders,
  createLease,
  KEY_HEADERS,
  keyFor,
  originAllowed,
  PORT_MESSAGE,
} from "./common.mjs";

function json(res, status, value, cors) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...cors });
  res.end(JSON.stringify(value));
}

const server = http.createServer((req, res) => {
  const started = performance.now();
  const origin = req.headers.origin;
  if (originAllowed(origin) === false) {
    audit(req.method, "unmatched", 403, undefined, undefined, started);
    return json(res, 403, { error: "Origin not allowed", code: "origin_not_allowed" }, {});
  }
  const cors = corsHeaders(origin);
  const parts = req.url.split("?")[0].split("/");
  if (req.method === "POST" && req.url === "/keys/leases") {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch {}
      const lease = createLease(parsed);
      const status = Array.isArray(lease) ? lease[0] : 201;
      audit("POST", "lease_create", status, lease.contentId, undefined, started);
      json(res, status, Array.isArray(lease) ? { error: lease[1], code: lease[2] } : lease, cors);
    });
    return;
  }
  if (req.method === "GET" && parts.length === 4 && parts[1] === "keys") {
    const [, , contentId, epoch] = parts;
    const key = keyFor(contentId, epoch, req.headers["x-blindcast-lease"]);
    if (Array.isArray(key)) {
      audit("GET", "epoch_key", key[0], contentId, undefined, started);
      return json(res, key[0], { error: key[1], code: key[2] }, cors);
    }
    audit("GET", "epoch_key", 200, contentId, epoch, started);
    res.writeHead(200, { ...KEY_HEADERS, ...cors, "content-length": 16 });
    return res.end(Buffer.from(key));
  }
  audit(req.method, "unmatched", 404, undefined, undefined, started);
  json(res, 404, { error: "Not found", code: "not_found" }, cors);
});

server.listen(0, "127.0.0.1", () => console.error(PORT_MESSAGE(server.address().port)));
