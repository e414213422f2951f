import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { App, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { SecurityGroup, Subnet, Vpc } from "aws-cdk-lib/aws-ec2";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cfnLint, GENERATED_TEMPLATE_STYLE } from "../../../test/support/cfn-lint.js";
import { BlindcastKeyServer, type BlindcastKeyServerProps, defaultCodeDirectory } from "../lib/key-server.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const cdkDir = join(root, "deploy/cdk");
const SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"];
const SECURITY_GROUP = "sg-0123456789abcdef0";

function withoutAws(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("AWS_")));
}

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

describe("the CDK construct and app (deploy/cdk)", () => {
  const dir = mkdtempSync(join(tmpdir(), "blindcast-cdk-"));
  // The bundles the construct deploys, built as a user builds them (scripts/build-lambda.mjs).
  const bundles = { keys: join(dir, "dist/keys"), "keys-postgres": join(dir, "dist/keys-postgres") };
  beforeAll(() => {
    for (const [variant, folder] of Object.entries(bundles)) {
      execFileSync(process.execPath, [
        join(root, "scripts/build-lambda.mjs"),
        join(root, `deploy/handlers/${variant}.ts`),
        join(folder, "index.mjs"),
      ]);
    }
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let apps = 0;
  function synth(props: (stack: Stack) => Partial<BlindcastKeyServerProps>) {
    // cfn-lint checks the templates below; CDK's own built-in validation (WASM, about 9 s of CPU per
    // synth) would only repeat it.
    const app = new App({ outdir: join(dir, `cdk.out.${apps++}`), builtinCloudFormationValidation: false });
    const stack = new Stack(app, "Test");
    const keyServer = new BlindcastKeyServer(stack, "KeyServer", {
      secret: Secret.fromSecretNameV2(stack, "Secret", "blindcast/keys"),
      corsOrigins: ["https://app.example.com"],
      codeDirectory: bundles.keys,
      ...props(stack),
    });
    const template = Template.fromStack(stack);
    return { app, stack, keyServer, template, resources: template.toJSON().Resources as Resources };
  }
  function only(resources: Resources, type: string) {
    const found = Object.entries(resources).filter(([, r]) => r.Type === type);
    expect(found).toHaveLength(1);
    return { id: found[0]![0], properties: found[0]![1].Properties };
  }
  /** The bytes of the code asset the function points at, from the synthesized cloud assembly. */
  function assetBytes(app: App, properties: Record<string, unknown>): Buffer {
    const key = (properties.Code as { S3Key: string }).S3Key;
    return readFileSync(join(app.outdir, `asset.${key.replace(/\.zip$/, "")}`, "index.mjs"));
  }

  it("deploys the bundle on nodejs24.x, arm64, index.handler, logs kept a month", () => {
    const { app, resources, template } = synth(() => ({}));
    const fn = only(resources, "AWS::Lambda::Function");
    expect(fn.properties).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 256,
      Timeout: 10,
    });
    expect(fn.properties.VpcConfig).toBeUndefined();
    expect(assetBytes(app, fn.properties).equals(readFileSync(join(bundles.keys, "index.mjs")))).toBe(true);

    const logs = only(resources, "AWS::Logs::LogGroup");
    expect(logs.properties.RetentionInDays).toBe(30);
    expect(fn.properties.LoggingConfig).toEqual({ LogGroup: { Ref: logs.id } });
    template.resourceCountIs("AWS::Lambda::Function", 1);
  });

  it("takes the secrets as Secrets Manager dynamic references, never values", () => {
    const { resources } = synth(() => ({}));
    const env = (only(resources, "AWS::Lambda::Function").properties.Environment as { Variables: object })
      .Variables;
    expect(env).toEqual({
      CORS_ORIGINS: "https://app.example.com",
      MASTER_KEY: "{{resolve:secretsmanager:blindcast/keys:SecretString:masterKey::}}",
      SALT: "{{resolve:secretsmanager:blindcast/keys:SecretString:salt::}}",
      JWT_SECRET: "{{resolve:secretsmanager:blindcast/keys:SecretString:jwtSecret::}}",
    });

    // A secret given by its complete ARN is referenced by it.
    const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:blindcast/keys-AbCdEf";
    const byArn = synth((stack) => ({ secret: Secret.fromSecretCompleteArn(stack, "ByArn", arn) }));
    const envByArn = (
      only(byArn.resources, "AWS::Lambda::Function").properties.Environment as {
        Variables: Record<string, string>;
      }
    ).Variables;
    expect(envByArn.MASTER_KEY).toBe(`{{resolve:secretsmanager:${arn}:SecretString:masterKey::}}`);
  });

  it("routes ANY /keys/{proxy+} of an HTTP API to the function, with no API Gateway CORS", () => {
    const { resources, template, stack, keyServer } = synth(() => ({}));
    const api = only(resources, "AWS::ApiGatewayV2::Api");
    expect(api.properties.ProtocolType).toBe("HTTP");
    expect(api.properties).not.toHaveProperty("CorsConfiguration");

    const route = only(resources, "AWS::ApiGatewayV2::Route");
    const integration = only(resources, "AWS::ApiGatewayV2::Integration");
    const fn = only(resources, "AWS::Lambda::Function");
    expect(route.properties).toMatchObject({
      ApiId: { Ref: api.id },
      RouteKey: "ANY /keys/{proxy+}",
      AuthorizationType: "NONE",
      Target: { "Fn::Join": ["", ["integrations/", { Ref: integration.id }]] },
    });
    expect(integration.properties).toMatchObject({
      IntegrationType: "AWS_PROXY",
      PayloadFormatVersion: "2.0",
      IntegrationUri: { "Fn::GetAtt": [fn.id, "Arn"] },
    });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "apigateway.amazonaws.com",
      FunctionName: { "Fn::GetAtt": [fn.id, "Arn"] },
    });
    template.hasResourceProperties("AWS::ApiGatewayV2::Stage", { StageName: "$default", AutoDeploy: true });
    expect(stack.resolve(keyServer.keyServerUrl)).toEqual({
      "Fn::Join": ["", [{ "Fn::GetAtt": [api.id, "ApiEndpoint"] }, "/keys"]],
    });
  });

  it("with postgres, deploys the keys-postgres bundle in the VPC with DATABASE_URL from a secret", () => {
    const { app, resources, template } = synth((stack) => {
      const vpc = Vpc.fromVpcAttributes(stack, "Vpc", {
        vpcId: "vpc-0123456789abcdef0",
        availabilityZones: stack.availabilityZones,
      });
      return {
        codeDirectory: bundles["keys-postgres"],
        postgres: {
          vpc,
          vpcSubnets: { subnets: SUBNETS.map((id) => Subnet.fromSubnetId(stack, id, id)) },
          securityGroups: [SecurityGroup.fromSecurityGroupId(stack, "Sg", SECURITY_GROUP)],
          databaseSecret: Secret.fromSecretNameV2(stack, "Db", "blindcast/database"),
          databaseUrlField: "connectionString",
          maxConcurrentLeases: 2,
          leaseTtlSeconds: 120,
        },
      };
    });
    const fn = only(resources, "AWS::Lambda::Function");
    // The Postgres bundle (its lease table named in its SQL), not the plain one.
    expect(assetBytes(app, fn.properties).toString()).toContain("blindcast_leases");
    expect(fn.properties.VpcConfig).toEqual({ SubnetIds: SUBNETS, SecurityGroupIds: [SECURITY_GROUP] });
    expect((fn.properties.Environment as { Variables: object }).Variables).toEqual({
      CORS_ORIGINS: "https://app.example.com",
      MASTER_KEY: "{{resolve:secretsmanager:blindcast/keys:SecretString:masterKey::}}",
      SALT: "{{resolve:secretsmanager:blindcast/keys:SecretString:salt::}}",
      JWT_SECRET: "{{resolve:secretsmanager:blindcast/keys:SecretString:jwtSecret::}}",
      DATABASE_URL: "{{resolve:secretsmanager:blindcast/database:SecretString:connectionString::}}",
      MAX_CONCURRENT_LEASES: "2",
      LEASE_TTL_SECONDS: "120",
    });
    // A function in a VPC needs the managed policy that lets it create network interfaces.
    template.hasResourceProperties("AWS::IAM::Role", {
      ManagedPolicyArns: Match.arrayWith([
        {
          "Fn::Join": [
            "",
            [
              "arn:",
              { Ref: "AWS::Partition" },
              ":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
            ],
          ],
        },
      ]),
    });
  });

  it("defaults to the bundles of node scripts/build-lambda.mjs, by variant", () => {
    expect(defaultCodeDirectory("keys")).toBe(join(root, "deploy/dist/keys"));
    expect(defaultCodeDirectory("keys-postgres")).toBe(join(root, "deploy/dist/keys-postgres"));
  });

  it("with postgres, defaults as deploy/sam/template-postgres.yaml: field url, 2 leases, 60 s", () => {
    const { resources } = synth((stack) => ({
      codeDirectory: bundles["keys-postgres"],
      postgres: {
        vpc: Vpc.fromVpcAttributes(stack, "Vpc", {
          vpcId: "vpc-0123456789abcdef0",
          availabilityZones: stack.availabilityZones,
        }),
        vpcSubnets: { subnets: SUBNETS.map((id) => Subnet.fromSubnetId(stack, id, id)) },
        securityGroups: [SecurityGroup.fromSecurityGroupId(stack, "Sg", SECURITY_GROUP)],
        databaseSecret: Secret.fromSecretNameV2(stack, "Db", "blindcast/db"),
      },
    }));
    const fn = only(resources, "AWS::Lambda::Function");
    expect((fn.properties.Environment as { Variables: Record<string, string> }).Variables).toMatchObject({
      DATABASE_URL: "{{resolve:secretsmanager:blindcast/db:SecretString:url::}}",
      MAX_CONCURRENT_LEASES: "2",
      LEASE_TTL_SECONDS: "60",
    });
  });

  it.each([
    [{ corsOrigins: [] }, /corsOrigins is empty/],
    [{ corsOrigins: ["https://app.example.com/"] }, /"https:\/\/app\.example\.com\/" must be just scheme/],
    [{ corsOrigins: ["app.example.com"] }, /"app\.example\.com" must be just scheme/],
    [{ corsOrigins: ["*", "https://app.example.com"] }, /'\*' cannot be combined/],
    [
      { codeDirectory: "/nonexistent/blindcast" },
      /no index\.mjs in \/nonexistent\/blindcast; build the bundles/,
    ],
  ])("refuses bad props at synth: %j", (props, message) => {
    expect(() => synth(() => props)).toThrow(message);
  });

  it.each([
    [{ leaseTtlSeconds: 5 }, /leaseTtlSeconds must be a whole number from 10 to 86400, got 5/],
    [{ maxConcurrentLeases: 0 }, /maxConcurrentLeases must be a whole number from 1/],
    [{ maxConcurrentLeases: 1.5 }, /maxConcurrentLeases must be a whole number from 1/],
  ])("refuses bad postgres props at synth: %j", (postgres, message) => {
    expect(() =>
      synth((stack) => ({
        codeDirectory: bundles["keys-postgres"],
        postgres: {
          vpc: Vpc.fromVpcAttributes(stack, "Vpc", {
            vpcId: "vpc-0123456789abcdef0",
            availabilityZones: stack.availabilityZones,
          }),
          securityGroups: [SecurityGroup.fromSecurityGroupId(stack, "Sg", SECURITY_GROUP)],
          databaseSecret: Secret.fromSecretNameV2(stack, "Db", "blindcast/db"),
          ...postgres,
        },
      })),
    ).toThrow(message);
  });

  // The app as the cdk CLI runs it (cdk.json's "app" command, context in CDK_CONTEXT_JSON and the
  // output folder in CDK_OUTDIR), without the CLI itself.
  async function runApp(context: Record<string, string>) {
    const outdir = join(dir, `app.out.${apps++}`);
    const app = JSON.parse(readFileSync(join(cdkDir, "cdk.json"), "utf8")) as { app: string };
    const [command, ...args] = app.app.split(" ");
    expect(command).toBe("node");
    const child = spawn(process.execPath, args, {
      cwd: cdkDir,
      timeout: 90_000,
      env: {
        ...withoutAws(process.env),
        // No AWS account, credentials or network: synth must need none.
        AWS_CONFIG_FILE: "/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
        CDK_OUTDIR: outdir,
        CDK_CONTEXT_JSON: JSON.stringify(context),
        CDK_VALIDATION: "false",
      },
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const [status] = (await once(child, "close")) as [number | null];
    return { status, stderr, outdir };
  }
  const template = (outdir: string, stack: string) =>
    JSON.parse(readFileSync(join(outdir, `${stack}.template.json`), "utf8")) as { Resources: Resources };

  // Two synths (about 3 s of CPU each) and cfn-lint (about 3 s).
  it("the app synthesizes both variants, and cfn-lint finds nothing in either", {
    timeout: 120_000,
  }, async () => {
    const [plain, withPostgres] = await Promise.all([
      runApp({ corsOrigins: "https://app.example.com", codeDirectory: bundles.keys }),
      runApp({
        corsOrigins: "https://app.example.com,https://www.example.com",
        codeDirectory: bundles["keys-postgres"],
        vpcId: "vpc-0123456789abcdef0",
        subnetIds: SUBNETS.join(","),
        securityGroupIds: SECURITY_GROUP,
        maxConcurrentLeases: "3",
      }),
    ]);
    expect(plain.stderr).toBe("");
    expect(plain.status).toBe(0);
    expect(withPostgres.stderr).toBe("");
    expect(withPostgres.status).toBe(0);

    const plainTemplate = template(plain.outdir, "BlindcastKeys");
    const postgresTemplate = template(withPostgres.outdir, "BlindcastKeysPostgres");
    const postgresFn = only(postgresTemplate.Resources, "AWS::Lambda::Function").properties;
    expect(postgresFn.VpcConfig).toEqual({ SubnetIds: SUBNETS, SecurityGroupIds: [SECURITY_GROUP] });
    expect(postgresFn.Environment).toMatchObject({
      Variables: {
        CORS_ORIGINS: "https://app.example.com,https://www.example.com",
        DATABASE_URL: "{{resolve:secretsmanager:blindcast/db:SecretString:url::}}",
        MAX_CONCURRENT_LEASES: "3",
        LEASE_TTL_SECONDS: "60",
      },
    });
    expect(only(plainTemplate.Resources, "AWS::Lambda::Function").properties.VpcConfig).toBeUndefined();
    // No warnings for the CLI to print (it shows these annotations; this run has no CLI).
    for (const [outdir, stack] of [
      [plain.outdir, "BlindcastKeys"],
      [withPostgres.outdir, "BlindcastKeysPostgres"],
    ] as const) {
      const metadata = readFileSync(join(outdir, `${stack}.metadata.json`), "utf8");
      expect(metadata).not.toMatch(/"aws:cdk:(warning|error)"/);
    }

    const functionId = only(plainTemplate.Resources, "AWS::Lambda::Function").id;
    const findings = cfnLint({ BlindcastKeys: plainTemplate, BlindcastKeysPostgres: postgresTemplate }, [
      GENERATED_TEMPLATE_STYLE,
      {
        rule: "W3005",
        resource: functionId,
        reason:
          "aws-cdk-lib's Function always adds DependsOn its role, which the GetAtt of the role already implies: redundant, harmless, and not the construct's to change",
      },
    ]);
    expect(findings).toEqual([]);
  });

  it("the app says what is missing", { timeout: 120_000 }, async () => {
    const [noOrigins, partialNetwork] = await Promise.all([
      runApp({ codeDirectory: bundles.keys }),
      runApp({
        corsOrigins: "https://app.example.com",
        codeDirectory: bundles["keys-postgres"],
        vpcId: "vpc-0123456789abcdef0",
      }),
    ]);
    expect(noOrigins.status).not.toBe(0);
    expect(noOrigins.stderr).toContain("-c corsOrigins=https://your-app.com");
    expect(partialNetwork.status).not.toBe(0);
    expect(partialNetwork.stderr).toContain("needs all of -c vpcId, -c subnetIds and -c securityGroupIds");
    expect(existsSync(join(partialNetwork.outdir, "BlindcastKeysPostgres.template.json"))).toBe(false);
  });
});
