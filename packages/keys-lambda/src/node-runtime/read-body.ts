import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_BODY_BYTES } from "../core/options.js";

/** Past this many body bytes the connection is dropped rather than drained. */
export const HARD_BODY_LIMIT = 1024 * 1024;

/** Without either header an HTTP/1.1 request has no body. */
export function declaresBody(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers["content-length"] !== undefined || headers["transfer-encoding"] !== undefined;
}

/**
 * Reads a request body, keeping only one byte past MAX_BODY_BYTES (enough for the core to refuse
 * it with its usual reason) and dropping the connection past HARD_BODY_LIMIT. The same reader as
 * the node:http listener's: the two adapters refuse the same bodies the same way.
 */
export function readBoundedBody(
  req: IncomingMessage,
  res: ServerResponse,
  then: (body: Uint8Array | undefined) => void,
): void {
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
  req.on("end", () => then(chunks.length > 0 ? Buffer.concat(chunks) : undefined));
}
