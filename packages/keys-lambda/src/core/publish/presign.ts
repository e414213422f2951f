import { AwsV4Signer } from "aws4fetch";
import type { ResolvedStorage } from "./storage.js";

export interface PresignInput {
  method: "PUT" | "HEAD";
  /** The object key, already validated (plain URL-safe characters and `/`). */
  key: string;
  /** Headers the client must send, signed with the URL (lowercase names). */
  headers?: Record<string, string>;
  expiresInSeconds: number;
  /** `YYYYMMDDTHHMMSSZ`; the same for every URL of one answer. */
  amzDate: string;
}

/**
 * A SigV4 presigned URL (query-string authentication) as AWS's SDKs make it: aws4fetch computes
 * the signature (WebCrypto, 2.6 KB gzipped); the query is then laid out in botocore's order so the
 * URL is the same string AWS's own presigner gives for the same inputs (tested against botocore).
 */
export async function presignUrl(storage: ResolvedStorage, input: PresignInput): Promise<string> {
  const credentials = await storage.credentials();
  const url = new URL(storage.base + input.key.split("/").map(encodeSegment).join("/"));
  url.searchParams.set("X-Amz-Expires", String(input.expiresInSeconds));
  const signer = new AwsV4Signer({
    url: url.toString(),
    method: input.method,
    headers: input.headers ?? {},
    // Content-Type and Content-Length are signed too, as botocore does: S3 then refuses a body of
    // another size or type than the one asked for.
    allHeaders: true,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    service: "s3",
    region: storage.region,
    datetime: input.amzDate,
    signQuery: true,
  });
  const signed = (await signer.sign()).url;
  const query = signed.searchParams;
  const ordered: [string, string][] = [
    ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
    ["X-Amz-Credential", query.get("X-Amz-Credential") ?? ""],
    ["X-Amz-Date", input.amzDate],
    ["X-Amz-Expires", String(input.expiresInSeconds)],
    ["X-Amz-SignedHeaders", query.get("X-Amz-SignedHeaders") ?? ""],
  ];
  if (credentials.sessionToken !== undefined)
    ordered.push(["X-Amz-Security-Token", credentials.sessionToken]);
  ordered.push(["X-Amz-Signature", query.get("X-Amz-Signature") ?? ""]);
  return `${signed.origin}${signed.pathname}?${ordered.map(([k, v]) => `${k}=${encodeSegment(v)}`).join("&")}`;
}

/** SigV4's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ percent-encoded. */
function encodeSegment(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** SigV4's timestamp format for `date`. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[:-]|\.\d{3}/g, "");
}
