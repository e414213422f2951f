// A real S3 API for tests: moto's standalone server (`moto_server`, Python) as a child process on
// a free loopback port, with one bucket. moto checks no signatures, so tests can read objects back
// with any Authorization header; presigned URLs from the key server work against it unchanged.
// scripts/setup-system.sh checks that moto is installed; MOTO_SERVER names another moto_server.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

export interface MotoServer {
  /** `http://127.0.0.1:PORT`, the S3 endpoint. */
  endpoint: string;
  bucket: string;
  region: string;
  /** moto accepts any; these are what the key server signs with. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** An object as stored: bytes and content type, or undefined when there is none. */
  getObject(key: string): Promise<{ body: Buffer; contentType: string | null } | undefined>;
  /** Every object key in the bucket, sorted. */
  listKeys(): Promise<string[]>;
  /**
   * Lets anyone read objects (a bucket policy granting s3:GetObject to all) and browsers on
   * `origins` fetch them (bucket CORS for GET and HEAD), as a bucket behind a public CDN is set up.
   */
  allowPublicReads(origins: readonly string[]): Promise<void>;
  /** Stops the server; waits for it to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

export interface MotoOptions {
  bucket?: string;
  /** Longest wait for moto to answer after starting (a Python start-up on a busy machine). */
  readyTimeoutMs?: number;
}

// moto accepts any signature, but an anonymous request is refused (403) for objects that are not
// public: reads carry a syntactically valid, meaningless authorization.
const ANY_AUTHORIZATION =
  "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

export function motoAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("python3", ["-c", "import moto, boto3"], { stdio: "ignore" });
    child.once("error", () => resolve(false));
    child.once("exit", (code) => resolve(code === 0));
  });
}

export async function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  const bucket = options.bucket ?? "blindcast-test";
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  // The free port is found by binding port 0 and closing it; another process can take it before
  // moto binds, so a start that dies is tried again on a new port.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const child = spawn(process.env.MOTO_SERVER || "moto_server", ["-H", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
    });
    let spawnError: Error | undefined;
    child.once("error", (error) => {
      spawnError = error;
    });
    const ready = await waitReady(endpoint, child, deadline, () => spawnError);
    if (ready === "ready") {
      const server = motoServer(endpoint, bucket, child);
      const created = await fetch(`${endpoint}/${bucket}`, {
        method: "PUT",
        headers: { authorization: ANY_AUTHORIZATION },
      });
      if (!created.ok) {
        await server.stop();
        throw new Error(`moto did not create the bucket: HTTP ${created.status}`);
      }
      return server;
    }
    await stopChild(child);
    if (spawnError) {
      throw new Error(
        `cannot run moto_server (${spawnError.message}); install moto[server] (pip) or run scripts/setup-system.sh`,
      );
    }
    if (ready === "timeout" || attempt >= 3) {
      throw new Error(`moto_server did not answer on ${endpoint} (${ready}); its output:\n${log}`);
    }
  }
}

function motoServer(endpoint: string, bucket: string, child: ChildProcess): MotoServer {
  return {
    endpoint,
    bucket,
    region: "us-east-1",
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    async getObject(key) {
      const response = await fetch(
        `${endpoint}/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`,
        {
          headers: { authorization: ANY_AUTHORIZATION },
          signal: AbortSignal.timeout(10_000),
        },
      );
      if (response.status === 404) {
        await response.arrayBuffer();
        return undefined;
      }
      if (!response.ok) throw new Error(`moto GET ${key}: HTTP ${response.status}`);
      return {
        body: Buffer.from(await response.arrayBuffer()),
        contentType: response.headers.get("content-type"),
      };
    },
    async listKeys() {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const query = `list-type=2${token ? `&continuation-token=${encodeURIComponent(token)}` : ""}`;
        const response = await fetch(`${endpoint}/${bucket}?${query}`, {
          headers: { authorization: ANY_AUTHORIZATION },
          signal: AbortSignal.timeout(10_000),
        });
        const xml = await response.text();
        if (!response.ok) throw new Error(`moto list: HTTP ${response.status}`);
        for (const match of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(unescapeXml(match[1] ?? ""));
        token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
      } while (token);
      return keys.sort();
    },
    async allowPublicReads(origins) {
      const policy = JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` },
        ],
      });
      const cors = `<CORSConfiguration><CORSRule>${origins
        .map((origin) => `<AllowedOrigin>${origin}</AllowedOrigin>`)
        .join(
          "",
        )}<AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>`;
      for (const [query, body] of [
        ["policy", policy],
        ["cors", cors],
      ] as const) {
        const response = await fetch(`${endpoint}/${bucket}?${query}`, {
          method: "PUT",
          headers: { authorization: ANY_AUTHORIZATION },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        if (!response.ok)
          throw new Error(`moto PUT ?${query}: HTTP ${response.status} ${await response.text()}`);
        await response.arrayBuffer().catch(() => undefined);
      }
    },
    stop: () => stopChild(child),
  };
}

async function waitReady(
  endpoint: string,
  child: ChildProcess,
  deadline: number,
  spawnError: () => Error | undefined,
): Promise<"ready" | "exited" | "timeout"> {
  while (Date.now() < deadline) {
    if (spawnError() || child.exitCode !== null || child.signalCode !== null) return "exited";
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.ok) return "ready";
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return "timeout";
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}
