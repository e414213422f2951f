import type { IncomingMessage, ServerResponse } from "node:http";
import { bodyLimitFor } from "../core/body.js";

/** Past this many body bytes the connection is dropped rather than drained. */
export const HARD_BODY_LIMIT = 1024 * 1024;

/** Without either header an HTTP/1.1 request has no body. */
export function declaresBody(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers["content-length"] !== undefined || headers["transfer-encoding"] !== undefined;
}

/**
 * Reads a request body, keeping only one byte past the route's limit (enough for the core to refuse
 * it with its usual reason) and dropping the connection past HARD_BODY_LIMIT. The same reader as
 * the node:http listener's: the two adapters refuse the same bodies the same way.
 */
export function readBoundedBody(
  req: IncomingMessage,
  res: ServerResponse,
  then: (body: Uint8Array | undefined) => void,
): void {
  const limit = bodyLimitFor(req.url ?? "");
  const chunks: Buffer[] = [];
  let kept = 0;
  let seen = 0;
  req.on("data", (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > HARD_BODY_LIMIT) {
      req.destroy();
      return;
    }
    if (kept <= limit) {
      const part = chunk.subarray(0, limit + 1 - kept);
      chunks.push(part);
      kept += part.length;
    }
  });
  req.on("error", () => res.destroy());
  req.on("end", () => then(chunks.length > 0 ? Buffer.concat(chunks) : undefined));
}
