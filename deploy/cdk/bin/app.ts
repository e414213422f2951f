// The CDK app of docs/deploy-cdk.md: one stack with the key server, configured by context values.
//   cdk deploy -c corsOrigins=https://your-app.com
//   cdk deploy -c corsOrigins=https://your-app.com -c vpcId=vpc-… -c subnetIds=subnet-…,subnet-… -c securityGroupIds=sg-…
// The second form deploys the Postgres variant (leases in PostgreSQL, the function in your VPC).
import { Annotations, App, CfnOutput, Stack } from "aws-cdk-lib";
import { SecurityGroup, Subnet, Vpc } from "aws-cdk-lib/aws-ec2";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { BlindcastKeyServer, type BlindcastPostgresProps } from "../lib/key-server.js";

const app = new App();

function text(name: string): string | undefined {
  const value: unknown = app.node.tryGetContext(name);
  return value === undefined || value === null || String(value).trim() === ""
    ? undefined
    : String(value).trim();
}
function list(name: string): string[] | undefined {
  return text(name)
    ?.split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}
function wholeNumber(name: string): number | undefined {
  const value = text(name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`context ${name} must be a whole number, got "${value}"`);
  return Number(value);
}

const corsOrigins = list("corsOrigins");
if (!corsOrigins) {
  throw new Error("set the origins of the pages that play your video: -c corsOrigins=https://your-app.com");
}
const vpcId = text("vpcId");
const subnetIds = list("subnetIds");
const securityGroupIds = list("securityGroupIds");
const network = [vpcId, subnetIds, securityGroupIds].filter((value) => value !== undefined).length;
if (network !== 0 && network !== 3) {
  throw new Error("the Postgres variant needs all of -c vpcId, -c subnetIds and -c securityGroupIds");
}

const stack = new Stack(app, network ? "BlindcastKeysPostgres" : "BlindcastKeys", {
  description: `Blindcast key server (API Gateway HTTP API + Lambda${network ? ", leases in PostgreSQL" : ""})`,
});
const secret = Secret.fromSecretNameV2(stack, "Secret", text("secretName") ?? "blindcast/keys");

function importSubnet(id: string) {
  const subnet = Subnet.fromSubnetId(stack, id, id);
  // CDK warns that an imported subnet has no route table id; a function needs only its id.
  Annotations.of(subnet).acknowledgeWarning(
    "@aws-cdk/aws-ec2:noSubnetRouteTableId",
    "a Lambda function in a VPC needs only the subnet's id",
  );
  return subnet;
}

let postgres: BlindcastPostgresProps | undefined;
if (vpcId && subnetIds && securityGroupIds) {
  postgres = {
    // Imported by id, so synth needs no AWS lookups (and no credentials). The function is placed
    // by its subnets; the zones are only there because an imported VPC must name some.
    vpc: Vpc.fromVpcAttributes(stack, "Vpc", { vpcId, availabilityZones: stack.availabilityZones }),
    vpcSubnets: { subnets: subnetIds.map((id) => importSubnet(id)) },
    securityGroups: securityGroupIds.map((id) => SecurityGroup.fromSecurityGroupId(stack, id, id)),
    // A secret whose `url` field is the connection string, as for deploy/sam/template-postgres.yaml.
    databaseSecret: Secret.fromSecretNameV2(
      stack,
      "DatabaseSecret",
      text("databaseSecretName") ?? "blindcast/db",
    ),
    maxConcurrentLeases: wholeNumber("maxConcurrentLeases"),
    leaseTtlSeconds: wholeNumber("leaseTtlSeconds"),
  };
}

const keyServer = new BlindcastKeyServer(stack, "KeyServer", {
  secret,
  corsOrigins,
  postgres,
  codeDirectory: text("codeDirectory"),
});
new CfnOutput(stack, "KeyServerUrl", {
  value: keyServer.keyServerUrl,
  description: "The player's keyServerUrl.",
});
