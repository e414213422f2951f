import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_BODY_BYTES } from "../core/options.js";
import type { LambdaKeyServerHandler } from "../lambda/index.js";
import { toApiGatewayEvent } from "./to-event.js";

/** Past this many body bytes the connection is dropped rather than drained. */
const HARD_BODY_LIMIT = 1024 * 1024;

export type NodeRequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Wraps a Lambda key server handler as a node:http request listener. Bodies are read only up to
 * one byte past the limit, which is enough for the handler to refuse them with its usual reason.
 */
export function toNodeListener(handler: LambdaKeyServerHandler): NodeRequestListener {
  const respond = (req: IncomingMessage, res: ServerResponse, body: Uint8Array | undefined) => {
    handler(toApiGatewayEvent(req, body)).then(
      (result) => {
        const payload = result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body;
        res.writeHead(result.statusCode, result.headers);
        res.end(payload);
      },
      () => {
        // The handler answers every error itself; reaching here means a bug, never a secret.
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
        res.end('{"error":"Internal server error"}');
      },
    );
  };
  return (req, res) => {
    // Most requests (every key request) have no body: answer at once rather than a tick later,
    // after the stream's "end".
    if (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined) {
      req.resume();
      respond(req, res, undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let kept = 0;
    let seen = 0;
    req.on("data", (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > HARD_BODY_LIMIT) {
        req.destroy();
        return;
      }
      if (kept <= MAX_BODY_BYTES) {
        const part = chunk.subarray(0, MAX_BODY_BYTES + 1 - kept);
        chunks.push(part);
        kept += part.length;
      }
    });
    req.on("error", () => res.destroy());
    req.on("end", () => respond(req, res, chunks.length > 0 ? Buffer.concat(chunks) : undefined));
  };
}
