// Every presigned URL the server makes, checked against AWS's own presigner (botocore) for the
// same inputs and the same time: moto and MinIO accept any signature, real S3 and R2 do not, so
// botocore is the oracle for correctness. Runs the python that has boto3 (the machine image's).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { S3StorageOptions } from "@blindcast/keys";
import { createJwtAuthenticator } from "@blindcast/keys/jwt";
import { createLambdaKeyServer } from "@blindcast/keys/lambda";
import { beforeAll, describe, expect, it } from "vitest";
import { masterKey, salt } from "./support/fixtures.js";
import { bearer, PUBLISH_SECRET } from "./support/publish.js";
import { pythonWithBoto3 } from "./support/python.js";

const ORACLE = fileURLToPath(new URL("./support/botocore-presign.py", import.meta.url));

interface Storage {
  name: string;
  storage: S3StorageOptions;
  /** What botocore is told: the endpoint (null for AWS) and the addressing style. */
  endpoint: string | null;
  pathStyle: boolean;
}

const secret = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
// Temporary credentials (a Lambda role): the token holds / + = that must be encoded exactly.
const temporary = { ...secret, sessionToken: "IQoJb3JpZ2luX2VjE/+Zm9vYmFy==" };

const STORAGES: Storage[] = [
  {
    name: "AWS S3, us-east-1, virtual-hosted",
    storage: { bucket: "media", region: "us-east-1", credentials: secret },
    endpoint: null,
    pathStyle: false,
  },
  {
    name: "AWS S3, eu-west-1, virtual-hosted, temporary credentials, prefix",
    storage: { bucket: "my-media-bucket", prefix: "streams/v1", region: "eu-west-1", credentials: temporary },
    endpoint: null,
    pathStyle: false,
  },
  {
    name: "AWS S3, ap-southeast-2, path-style",
    storage: { bucket: "media", region: "ap-southeast-2", forcePathStyle: true, credentials: secret },
    endpoint: null,
    pathStyle: true,
  },
  {
    name: "Cloudflare R2 (region auto)",
    storage: {
      bucket: "media",
      region: "auto",
      endpoint: "https://0123456789abcdef.r2.cloudflarestorage.com",
      credentials: secret,
    },
    endpoint: "https://0123456789abcdef.r2.cloudflarestorage.com",
    pathStyle: true,
  },
  {
    name: "MinIO on a port, path-style",
    storage: {
      bucket: "videos",
      prefix: "pub",
      region: "us-east-1",
      endpoint: "http://127.0.0.1:9000",
      credentials: temporary,
    },
    endpoint: "http://127.0.0.1:9000",
    pathStyle: true,
  },
  {
    name: "S3-compatible endpoint, virtual-hosted",
    storage: {
      bucket: "videos",
      region: "eu-central-1",
      endpoint: "https://storage.example.com",
      forcePathStyle: false,
      credentials: secret,
    },
    endpoint: "https://storage.example.com",
    pathStyle: false,
  },
];

const FILES = [
  { path: "index.m3u8", size: 412 },
  { path: "v0/index.m3u8", size: 9_001 },
  { path: "v0/segment_00000.ts", size: 1_880_000 },
  { path: "v1/init.mp4", size: 1_234 },
  { path: "v1/seg-0.m4s", size: 0 },
  { path: "audio/en_stereo.aac", size: 5 * 1024 ** 3 },
  { path: "subs/en-1.vtt", size: 77 },
];

interface OracleCase {
  bucket: string;
  key: string;
  region: string;
  endpoint: string | null;
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string | null;
  method: "PUT" | "HEAD";
  contentType?: string;
  contentLength?: number;
  expires: number;
  amzDate: string;
}

function botocore(cases: OracleCase[]): string[] {
  const out = execFileSync(pythonWithBoto3(), [ORACLE], {
    input: JSON.stringify(cases),
    encoding: "utf8",
    timeout: 60_000,
  });
  return JSON.parse(out) as string[];
}

/** What the server answered for one storage, and the cases botocore is asked for the same URLs. */
async function presignThroughServer({
  storage,
  endpoint,
  pathStyle,
}: Storage): Promise<{ ours: string[]; cases: OracleCase[] }> {
  const ttl = 900;
  const handler = createLambdaKeyServer({
    masterKey,
    salt,
    corsOrigins: "*",
    authenticate: createJwtAuthenticator({ secret: PUBLISH_SECRET, publisherScope: "blindcast:publish" }),
    publish: { storage, uploadUrlTtlSeconds: ttl },
    audit: false,
  });
  const result = (await handler({
    version: "2.0",
    rawPath: "/keys/publish/movie~1.v2/uploads",
    routeKey: "$default",
    headers: {
      authorization: await bearer("p", { scope: "blindcast:publish" }),
      "content-type": "application/json",
    },
    body: JSON.stringify({ files: FILES, head: true }),
    isBase64Encoded: false,
    requestContext: {
      http: { method: "POST", path: "/keys/publish/movie~1.v2/uploads" },
      stage: "$default",
    },
  } as never)) as { statusCode: number; body: string };
  expect(result.statusCode).toBe(200);
  const uploads = JSON.parse(result.body).uploads as {
    path: string;
    url: string;
    head: string;
    headers: Record<string, string>;
  }[];
  const amzDate = new URL(uploads[0]?.url ?? "").searchParams.get("X-Amz-Date") ?? "";
  expect(amzDate).toMatch(/^\d{8}T\d{6}Z$/);
  const credentials = storage.credentials as {
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
  };
  const common = {
    bucket: storage.bucket,
    region: storage.region,
    endpoint,
    pathStyle,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken ?? null,
    expires: ttl,
    amzDate,
  };
  const key = (path: string) => `${storage.prefix ? `${storage.prefix}/` : ""}movie~1.v2/${path}`;
  const cases: OracleCase[] = uploads.flatMap((upload) => [
    {
      ...common,
      key: key(upload.path),
      method: "PUT" as const,
      contentType: upload.headers["content-type"],
      contentLength: Number(upload.headers["content-length"]),
    },
    { ...common, key: key(upload.path), method: "HEAD" as const },
  ]);
  return { ours: uploads.flatMap((upload) => [upload.url, upload.head]), cases };
}

describe("presigned upload URLs equal botocore's", () => {
  const answers: { ours: string[]; cases: OracleCase[] }[] = [];
  let expected: string[] = [];
  beforeAll(async () => {
    for (const storage of STORAGES) answers.push(await presignThroughServer(storage));
    // One python process for every case: boto3 takes seconds to start.
    expected = botocore(answers.flatMap((answer) => answer.cases));
  }, 120_000);

  it.each(STORAGES.map((s, i) => [s.name, i] as const))("%s", (_, index) => {
    const before = answers.slice(0, index).reduce((n, answer) => n + answer.cases.length, 0);
    const answer = answers[index] as { ours: string[]; cases: OracleCase[] };
    expect(answer.ours).toHaveLength(FILES.length * 2);
    expect(answer.ours).toEqual(expected.slice(before, before + answer.cases.length));
  });
});
