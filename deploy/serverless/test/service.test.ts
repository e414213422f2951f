import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bytesToHex } from "@blindcast/crypto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cfnLint, GENERATED_TEMPLATE_STYLE } from "../../../test/support/cfn-lint.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const serviceDir = join(root, "deploy/serverless");
// osls, installed as `serverless` (see package.json): the open-source v3 line of the framework.
const serverlessCli = join(serviceDir, "node_modules/serverless/bin/serverless.js");
// The Node that runs the framework, and serverless-offline's handler with it (in a worker thread).
// LAMBDA_NODE, when set, names a Node binary of the Lambda runtime's major (24 for nodejs24.x).
const node = process.env.LAMBDA_NODE ?? process.execPath;
const SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"];
const SECURITY_GROUP = "sg-0123456789abcdef0";

const vectors = JSON.parse(readFileSync(join(root, "test/vectors/key-derivation-vectors.json"), "utf8")) as {
  masterKey: string;
  salt: string;
  contentId: string;
  epoch?: number;
  key: string;
}[];
const vector = vectors.find((v) => v.contentId === "movie-42" && v.epoch === 7)!;

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the framework's CLI to completion, bounded in time. */
async function serverless(args: string[], cwd: string, timeout = 90_000): Promise<Run> {
  const child = spawn(node, [serverlessCli, ...args], { cwd, timeout, env: testEnv() });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const [status] = (await once(child, "close")) as [number | null];
  return { status, stdout, stderr };
}

// No AWS credentials or profile reach the framework: packaging and offline runs must not need them.
function testEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("AWS_")) delete env[name];
  return { ...env, AWS_CONFIG_FILE: "/nonexistent", AWS_SHARED_CREDENTIALS_FILE: "/nonexistent" };
}

describe("the Serverless Framework service files (deploy/serverless)", () => {
  const dir = mkdtempSync(join(tmpdir(), "blindcast-serverless-"));
  const zips = { keys: join(dir, "dist/keys.zip"), "keys-postgres": join(dir, "dist/keys-postgres.zip") };
  // The bundles, built and zipped as a user does (scripts/build-lambda.mjs, then zip-bundle.mjs).
  beforeAll(() => {
    const keys = join(dir, "dist/keys");
    const postgres = join(dir, "dist/keys-postgres");
    for (const [variant, folder] of [
      ["keys", keys],
      ["keys-postgres", postgres],
    ] as const) {
      execFileSync(process.execPath, [
        join(root, "scripts/build-lambda.mjs"),
        join(root, `deploy/handlers/${variant}.ts`),
        join(folder, "index.mjs"),
      ]);
    }
    for (const [folder, zip] of [
      [keys, zips.keys],
      [postgres, zips["keys-postgres"]],
    ] as const) {
      execFileSync(process.execPath, [join(serviceDir, "zip-bundle.mjs"), folder, zip]);
    }
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * `serverless package` of one service file, unchanged, from a folder of its own: packaging
   * deletes the service folder's .serverless/, so runs side by side (or a user's own package in
   * deploy/serverless) must not share one.
   */
  function packageService(file: string, params: string[], out: string): Promise<Run> {
    const copy = mkdtempSync(join(dir, "service-"));
    copyFileSync(join(serviceDir, file), join(copy, file));
    return serverless(
      ["package", "--config", file, ...params.map((p) => `--param=${p}`), "--package", out],
      copy,
    );
  }

  function packaged(out: string) {
    const template = JSON.parse(
      readFileSync(join(out, "cloudformation-template-update-stack.json"), "utf8"),
    ) as {
      Resources: Resources;
      Outputs: Record<string, { Value: unknown }>;
    };
    const only = (type: string) => {
      const found = Object.entries(template.Resources).filter(([, r]) => r.Type === type);
      expect(found).toHaveLength(1);
      return { id: found[0]![0], properties: found[0]![1].Properties };
    };
    return { template, only };
  }

  // Two packagings (about 2 s of CPU each) and cfn-lint (about 3 s).
  it("package into templates that deploy the zipped bundle as specified, and cfn-lint passes", {
    timeout: 180_000,
  }, async () => {
    const plainOut = join(dir, "package-plain");
    const postgresOut = join(dir, "package-postgres");
    const [plain, postgres] = await Promise.all([
      packageService(
        "serverless.yml",
        ["corsOrigins=https://app.example.com", `artifact=${zips.keys}`],
        plainOut,
      ),
      packageService(
        "serverless-postgres.yml",
        [
          "corsOrigins=https://app.example.com,https://www.example.com",
          `artifact=${zips["keys-postgres"]}`,
          `subnetIds=${SUBNETS.join(",")}`,
          `securityGroupIds=${SECURITY_GROUP}`,
          "maxConcurrentLeases=3",
        ],
        postgresOut,
      ),
    ]);
    expect(plain.status, plain.stdout + plain.stderr).toBe(0);
    expect(plain.stdout + plain.stderr).toContain("Service packaged");
    expect(postgres.status, postgres.stdout + postgres.stderr).toBe(0);
    expect(postgres.stdout + postgres.stderr).toContain("Service packaged");

    const p = packaged(plainOut);
    const fn = p.only("AWS::Lambda::Function");
    expect(fn.properties).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 256,
      Timeout: 10,
      Code: { S3Key: expect.stringMatching(/\/keys\.zip$/) },
    });
    expect(fn.properties.VpcConfig).toBeUndefined();
    expect((fn.properties.Environment as { Variables: object }).Variables).toEqual({
      CORS_ORIGINS: "https://app.example.com",
      MASTER_KEY: "{{resolve:secretsmanager:blindcast/keys:SecretString:masterKey}}",
      SALT: "{{resolve:secretsmanager:blindcast/keys:SecretString:salt}}",
      JWT_SECRET: "{{resolve:secretsmanager:blindcast/keys:SecretString:jwtSecret}}",
    });
    expect(p.only("AWS::Logs::LogGroup").properties.RetentionInDays).toBe(30);
    const api = p.only("AWS::ApiGatewayV2::Api");
    expect(api.properties.ProtocolType).toBe("HTTP");
    expect(api.properties).not.toHaveProperty("CorsConfiguration");
    expect(p.only("AWS::ApiGatewayV2::Route").properties.RouteKey).toBe("ANY /keys/{proxy+}");
    expect(p.only("AWS::ApiGatewayV2::Integration").properties).toMatchObject({
      IntegrationType: "AWS_PROXY",
      PayloadFormatVersion: "2.0",
      IntegrationUri: { "Fn::GetAtt": [fn.id, "Arn"] },
    });
    expect(Object.values(p.template.Resources).filter((r) => r.Type === "AWS::Lambda::Version")).toEqual([]);
    expect(p.template.Outputs.KeyServerUrl?.Value).toEqual({ "Fn::Sub": `\${${api.id}.ApiEndpoint}/keys` });

    const pg = packaged(postgresOut);
    const pgFn = pg.only("AWS::Lambda::Function");
    expect(pgFn.properties).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      Code: { S3Key: expect.stringMatching(/\/keys-postgres\.zip$/) },
      VpcConfig: {
        SubnetIds: { "Fn::Split": [",", SUBNETS.join(",")] },
        SecurityGroupIds: { "Fn::Split": [",", SECURITY_GROUP] },
      },
    });
    expect((pgFn.properties.Environment as { Variables: object }).Variables).toEqual({
      CORS_ORIGINS: "https://app.example.com,https://www.example.com",
      MASTER_KEY: "{{resolve:secretsmanager:blindcast/keys:SecretString:masterKey}}",
      SALT: "{{resolve:secretsmanager:blindcast/keys:SecretString:salt}}",
      JWT_SECRET: "{{resolve:secretsmanager:blindcast/keys:SecretString:jwtSecret}}",
      DATABASE_URL: "{{resolve:secretsmanager:blindcast/db:SecretString:url}}",
      MAX_CONCURRENT_LEASES: "3",
      LEASE_TTL_SECONDS: "60",
    });
    expect(pg.only("AWS::ApiGatewayV2::Route").properties.RouteKey).toBe("ANY /keys/{proxy+}");
    expect(pg.template.Outputs.KeyServerUrl?.Value).toEqual({
      "Fn::Sub": `\${${pg.only("AWS::ApiGatewayV2::Api").id}.ApiEndpoint}/keys`,
    });
    expect(pg.only("AWS::ApiGatewayV2::Api").properties).not.toHaveProperty("CorsConfiguration");
    expect(JSON.stringify(pg.only("AWS::IAM::Role").properties)).toContain(
      ":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    );

    const route = p.only("AWS::ApiGatewayV2::Route").id;
    const logGroup = p.only("AWS::Logs::LogGroup").id;
    const findings = cfnLint({ plain: p.template, postgres: pg.template }, [
      GENERATED_TEMPLATE_STYLE,
      {
        rule: "I3011",
        resource: logGroup,
        reason:
          "no explicit DeletionPolicy on the framework's log group: CloudFormation's default (Delete) is the one that works, since the group has a fixed name and a retained one would block creating the stack again",
      },
      {
        rule: "W3005",
        resource: route,
        reason:
          "the framework gives the route a DependsOn its integration, which the route's Target reference already implies: redundant, harmless, generated",
      },
    ]);
    expect(findings).toEqual([]);
  });

  it("refuse to package without the required params, naming them", { timeout: 120_000 }, async () => {
    const [noOrigins, noSubnets] = await Promise.all([
      packageService("serverless.yml", [`artifact=${zips.keys}`], join(dir, "package-bad-1")),
      packageService(
        "serverless-postgres.yml",
        [
          "corsOrigins=https://app.example.com",
          `artifact=${zips["keys-postgres"]}`,
          `securityGroupIds=${SECURITY_GROUP}`,
        ],
        join(dir, "package-bad-2"),
      ),
    ]);
    expect(noOrigins.status).not.toBe(0);
    expect(noOrigins.stdout + noOrigins.stderr).toMatch(
      /Cannot resolve variable at "functions\.keys\.environment\.CORS_ORIGINS"/,
    );
    expect(noSubnets.status).not.toBe(0);
    expect(noSubnets.stdout + noSubnets.stderr).toMatch(
      /Cannot resolve variable at "functions\.keys\.vpc\.subnetIds/,
    );
  });

  it("serve keys under serverless-offline: 401 without a token, the contract's key with one", {
    timeout: 180_000,
  }, async () => {
    // A copy of the service in a folder beside the real one (so the plugin resolves from its
    // node_modules), with the three Secrets Manager references replaced by test values (what
    // CloudFormation does at deploy time, and what serverless-offline cannot) and the plugin
    // added (the service file does not name it, so deploying needs no plugin installed).
    const copy = mkdtempSync(join(serviceDir, ".offline-test-"));
    const jwtSecret = "test-only-jwt-secret-0123456789abcdef";
    let service = readFileSync(join(serviceDir, "serverless.yml"), "utf8");
    for (const [field, value] of [
      ["masterKey", vector.masterKey],
      ["salt", vector.salt],
      ["jwtSecret", jwtSecret],
    ] as const) {
      const reference = `{{resolve:secretsmanager:\${param:secretName}:SecretString:${field}}}`;
      expect(service.split(reference)).toHaveLength(2);
      service = service.replace(reference, value);
    }
    expect(service).not.toMatch(/^plugins:/m);
    writeFileSync(join(copy, "serverless.yml"), `${service}\nplugins:\n  - serverless-offline\n`);

    const [httpPort, lambdaPort] = await Promise.all([freePort(), freePort()]);
    const child = spawn(
      node,
      [
        serverlessCli,
        "offline",
        "--param=corsOrigins=https://app.example.com",
        `--param=artifact=${zips.keys}`,
        "--host",
        "127.0.0.1",
        "--httpPort",
        String(httpPort),
        "--lambdaPort",
        String(lambdaPort),
      ],
      { cwd: copy, env: testEnv() },
    );
    let output = "";
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`serverless offline not ready after 90 s:\n${output}`)),
        90_000,
      );
      const collect = (chunk: Buffer) => {
        output += chunk.toString("utf8");
        if (output.includes("Server ready:")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on("data", collect);
      child.stderr.on("data", collect);
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`serverless offline exited (${code}):\n${output}`));
      });
    });
    try {
      await ready;
      const url = `http://127.0.0.1:${httpPort}/keys/movie-42/7`;
      const get = (headers: Record<string, string> = {}) =>
        fetch(url, { headers, signal: AbortSignal.timeout(15_000) });

      const missing = await get();
      expect(missing.status).toBe(401);
      expect(await missing.json()).toEqual({ error: "Missing token" });

      const sign = (secret: string) =>
        new SignJWT({})
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("viewer-1")
          .setExpirationTime("5m")
          .sign(new TextEncoder().encode(secret));
      const forged = await get({
        authorization: `Bearer ${await sign("another-secret-0123456789abcdef0123")}`,
      });
      expect(forged.status).toBe(401);
      await forged.arrayBuffer();

      const ok = await get({ authorization: `Bearer ${await sign(jwtSecret)}` });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("content-type")).toBe("application/octet-stream");
      expect(bytesToHex(new Uint8Array(await ok.arrayBuffer()))).toBe(vector.key);
    } finally {
      child.kill("SIGTERM");
      const exited = once(child, "exit");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      if (child.exitCode === null && child.signalCode === null) await exited;
      clearTimeout(killer);
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

/** A port free on loopback now (the OS hands out a fresh one; the race is harmless in tests). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}
