// A CDK construct for the Blindcast key server: one Lambda function, from the prebuilt bundle in
// deploy/dist/<variant> (node scripts/build-lambda.mjs), behind an API Gateway HTTP API. The same
// shape as deploy/sam/template.yaml (and template-postgres.yaml with `postgres`).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_LEASE_TTL_SECONDS, MAX_LEASE_TTL_SECONDS, MIN_LEASE_TTL_SECONDS } from "@blindcast/keys";
import { Duration, SecretValue, Token } from "aws-cdk-lib";
import { HttpApi, HttpMethod } from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type { ISecurityGroup, IVpc, SubnetSelection } from "aws-cdk-lib/aws-ec2";
import { Architecture, Code, Function as LambdaFunction, Runtime } from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";

/** The Lambda runtime of every template in deploy/ (the newest Node runtime AWS still creates). */
export const KEY_SERVER_RUNTIME = Runtime.NODEJS_24_X;

/** The bundles `node scripts/build-lambda.mjs` writes, one folder each under deploy/dist/. */
export type KeyServerVariant = "keys" | "keys-postgres";

/** Where `node scripts/build-lambda.mjs` puts a variant's bundle (index.mjs and its chunks/). */
export function defaultCodeDirectory(variant: KeyServerVariant): string {
  return fileURLToPath(new URL(`../../dist/${variant}`, import.meta.url));
}

export interface BlindcastPostgresProps {
  /** The VPC the database is reachable in; the function runs in it. */
  readonly vpc: IVpc;
  /** Subnets for the function's network interfaces. Default: the VPC's private subnets. */
  readonly vpcSubnets?: SubnetSelection;
  /** Security groups of the function; the database's group must admit one of them on its port. */
  readonly securityGroups: ISecurityGroup[];
  /**
   * The Secrets Manager secret with the connection string,
   * postgres://user:password@host:5432/db?sslmode=require (host: your RDS Proxy endpoint).
   */
  readonly databaseSecret: ISecret;
  /** Its JSON field holding the connection string. Default `url`, as deploy/sam/template-postgres.yaml. */
  readonly databaseUrlField?: string;
  /** Live leases (streams) one viewer may hold at once (MAX_CONCURRENT_LEASES). Default 2. */
  readonly maxConcurrentLeases?: number;
  /** Lease lifetime in seconds (LEASE_TTL_SECONDS); the player renews before it ends. Default 60. */
  readonly leaseTtlSeconds?: number;
}

export interface BlindcastKeyServerProps {
  /**
   * The Secrets Manager secret with the JSON fields masterKey, salt (hex) and jwtSecret. Its
   * values reach the function as CloudFormation dynamic references, resolved at deploy time:
   * never plaintext in the template or the cloud assembly.
   */
  readonly secret: ISecret;
  /** Origins of the pages that play your video (scheme://host[:port]), or ["*"] (not recommended). */
  readonly corsOrigins: readonly string[];
  /** Leases in PostgreSQL (the keys-postgres bundle): the function runs in your VPC. */
  readonly postgres?: BlindcastPostgresProps;
  /** Folder holding the bundle's index.mjs. Default: deploy/dist/keys, or deploy/dist/keys-postgres with `postgres`. */
  readonly codeDirectory?: string;
  /** How long the function's log group keeps the audit lines. Default one month. */
  readonly logRetention?: RetentionDays;
  /** Default 256 MB. */
  readonly memorySize?: number;
  /** Default 10 seconds. */
  readonly timeout?: Duration;
}

/** The key server: a Lambda function and the HTTP API that routes `ANY /keys/{proxy+}` to it. */
export class BlindcastKeyServer extends Construct {
  readonly function: LambdaFunction;
  readonly api: HttpApi;
  readonly logGroup: LogGroup;
  /** The player's `keyServerUrl`: https://<api id>.execute-api.<region>.amazonaws.com/keys. */
  readonly keyServerUrl: string;

  constructor(scope: Construct, id: string, props: BlindcastKeyServerProps) {
    super(scope, id);
    const postgres = props.postgres;
    const codeDirectory = props.codeDirectory ?? defaultCodeDirectory(postgres ? "keys-postgres" : "keys");
    // Without this check a missing build deploys a function that fails on every request.
    if (!existsSync(join(codeDirectory, "index.mjs"))) {
      throw new Error(
        `BlindcastKeyServer: no index.mjs in ${codeDirectory}; build the bundles first (node scripts/build-lambda.mjs)`,
      );
    }

    const environment: Record<string, string> = {
      CORS_ORIGINS: checkCorsOrigins(props.corsOrigins),
      MASTER_KEY: secretField(props.secret, "masterKey"),
      SALT: secretField(props.secret, "salt"),
      JWT_SECRET: secretField(props.secret, "jwtSecret"),
    };
    if (postgres) {
      environment.DATABASE_URL = secretField(postgres.databaseSecret, postgres.databaseUrlField ?? "url");
      environment.MAX_CONCURRENT_LEASES = String(
        checkInteger("maxConcurrentLeases", postgres.maxConcurrentLeases ?? 2, 1, Number.MAX_SAFE_INTEGER),
      );
      environment.LEASE_TTL_SECONDS = String(
        checkInteger(
          "leaseTtlSeconds",
          postgres.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS,
          MIN_LEASE_TTL_SECONDS,
          MAX_LEASE_TTL_SECONDS,
        ),
      );
    }

    // An explicit log group, so its retention is part of the stack (Lambda's implicit one keeps
    // logs forever).
    this.logGroup = new LogGroup(this, "Logs", { retention: props.logRetention ?? RetentionDays.ONE_MONTH });

    this.function = new LambdaFunction(this, "Function", {
      runtime: KEY_SERVER_RUNTIME,
      architecture: Architecture.ARM_64,
      handler: "index.handler",
      code: Code.fromAsset(codeDirectory),
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(10),
      logGroup: this.logGroup,
      environment,
      ...(postgres
        ? { vpc: postgres.vpc, vpcSubnets: postgres.vpcSubnets, securityGroups: postgres.securityGroups }
        : {}),
    });

    // No corsPreflight: the handler answers CORS (preflights included) from CORS_ORIGINS, and API
    // Gateway's own CORS would add conflicting Access-Control-Allow-Origin headers.
    this.api = new HttpApi(this, "Api", { description: "Blindcast key server" });
    this.api.addRoutes({
      path: "/keys/{proxy+}",
      methods: [HttpMethod.ANY],
      integration: new HttpLambdaIntegration("Keys", this.function),
    });
    this.keyServerUrl = `${this.api.apiEndpoint}/keys`;
  }
}

/**
 * A `{{resolve:secretsmanager:…}}` dynamic reference to one field of the secret. A secret imported
 * by name is referenced by its name, as in the SAM templates: its partial ARN (what CDK would
 * use) is not a form the dynamic reference documentation names.
 */
function secretField(secret: ISecret, field: string): string {
  const id = secret.secretFullArn ?? secret.secretName;
  return SecretValue.secretsManager(id, { jsonField: field }).unsafeUnwrap();
}

// The key server's own rules for corsOrigins (it refuses to start otherwise), checked at synth so
// a typo fails `cdk synth` instead of every request after deployment.
function checkCorsOrigins(origins: readonly string[]): string {
  const entries = origins.map((origin) => origin.trim());
  if (entries.length === 0 || entries.every((entry) => entry === "")) {
    throw new Error(
      'BlindcastKeyServer: corsOrigins is empty; give origins such as "https://app.example.com"',
    );
  }
  if (entries.includes("*") && entries.length > 1) {
    throw new Error("BlindcastKeyServer: corsOrigins: '*' cannot be combined with origins");
  }
  for (const entry of entries) {
    if (entry === "*" || Token.isUnresolved(entry)) continue;
    if (!isBareOrigin(entry)) {
      throw new Error(
        `BlindcastKeyServer: corsOrigins: "${entry}" must be just scheme://host[:port], with no path or trailing slash`,
      );
    }
  }
  return entries.join(",");
}

function isBareOrigin(entry: string): boolean {
  if (entry.includes(",")) return false; // the function's environment separates origins by commas
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return false;
  }
  const bare = url.pathname === "/" && !url.search && !url.hash && !url.username && !url.password;
  return (url.protocol === "https:" || url.protocol === "http:") && bare && !entry.endsWith("/");
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`BlindcastKeyServer: ${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}
