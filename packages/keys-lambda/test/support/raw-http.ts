import { once } from "node:events";
import { connect } from "node:net";

export interface RawResponse {
  /** 0 when the server dropped the connection without answering. */
  status: number;
  /** Lowercase names; repeats joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Sends exact bytes over TCP (repeated headers, any body, any framing), as a browser, a proxy
 * or an attacker could, and reads the answer until the server closes the connection. A body is
 * sent with its Content-Length unless `headers` frame it (Content-Length, Transfer-Encoding).
 */
export async function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: readonly (readonly [string, string])[] = [],
  body?: string | Buffer,
): Promise<RawResponse> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  const lines = [`${method} ${path} HTTP/1.1`, "host: 127.0.0.1", "connection: close"];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  // A body goes with its length unless the caller frames it itself.
  const framed = headers.some(([name]) => /^(content-length|transfer-encoding)$/i.test(name));
  if (body !== undefined && !framed) lines.push(`content-length: ${Buffer.byteLength(body)}`);
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  socket.on("error", () => {});
  // Written, not ended: a client that half-closes its side is not what browsers do, and Node
  // tears such a connection down early on some paths (a body parser inflating a body).
  socket.write(body === undefined ? head : Buffer.concat([head, Buffer.from(body)]));
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of socket) chunks.push(chunk as Buffer);
  } catch {
    // A reset: whatever arrived before it is the answer, or there was none.
  }
  const text = Buffer.concat(chunks);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers: {}, body: Buffer.alloc(0) };
  const [statusLine = "", ...headerLines] = text.subarray(0, end).toString("latin1").split("\r\n");
  const received: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    received[name] = received[name] === undefined ? value : `${received[name]}, ${value}`;
  }
  return {
    status: Number(/^HTTP\/1\.1 (\d+)/.exec(statusLine)?.[1] ?? 0),
    headers: received,
    body: text.subarray(end + 4),
  };
}
