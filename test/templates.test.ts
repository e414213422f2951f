import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { VARIANTS } from "../scripts/build-lambda.mjs";
import { LAMBDA_RUNTIME } from "../scripts/lambda-node.mjs";

// Every CloudFormation template under deploy/ must deploy as written: cfn-lint knows the
// resource schemas and which Lambda runtimes AWS still creates functions on (E2533 refused
// nodejs20.x once its creation was disabled), so any finding of it fails here.

const root = fileURLToPath(new URL("..", import.meta.url));
// Build output and tools' generated folders, not sources.
const GENERATED = new Set(["node_modules", "dist", "cdk.out", ".serverless", ".aws-sam"]);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return GENERATED.has(entry.name) ? [] : filesUnder(path);
    return [path];
  });
}

const deployFiles = filesUnder(join(root, "deploy"));
const templates = deployFiles.filter((file) => {
  if (!/\.(ya?ml|json|template)$/.test(file)) return false;
  const text = readFileSync(file, "utf8");
  return (
    /^AWSTemplateFormatVersion\s*:|^Resources\s*:/m.test(text) || /"AWSTemplateFormatVersion"\s*:/.test(text)
  );
});
const rel = (file: string) => relative(root, file);

interface Finding {
  Filename: string;
  Location: { Start: { LineNumber: number } };
  Rule: { Id: string };
  Message: string;
}

describe("the deployment templates", () => {
  it("are found", () => {
    expect(templates.map(rel)).toEqual(
      expect.arrayContaining([
        "deploy/sam/template.yaml",
        "deploy/sam/template-rest.yaml",
        "deploy/sam/template-postgres.yaml",
      ]),
    );
  });

  it("pass cfn-lint with no finding (errors, warnings and informational)", () => {
    const cfnLint = process.env.CFN_LINT || "cfn-lint";
    const run = spawnSync(cfnLint, ["--format", "json", "--include-checks", "I", "--", ...templates], {
      encoding: "utf8",
      timeout: 120_000,
    });
    if (run.error) {
      throw new Error(
        `could not run ${cfnLint} (${run.error.message}): scripts/setup-system.sh installs it, or set CFN_LINT`,
      );
    }
    let findings: Finding[];
    try {
      findings = JSON.parse(run.stdout) as Finding[];
    } catch {
      throw new Error(`cfn-lint exited ${run.status} without a report: ${run.stderr}`);
    }
    const lines = findings.map(
      (f) => `${rel(f.Filename)}:${f.Location.Start.LineNumber} ${f.Rule.Id} ${f.Message}`,
    );
    expect(lines).toEqual([]);
    expect(run.status).toBe(0);
  }, 120_000);

  it("run every function on the one runtime the bundles are built and tested for", () => {
    // Every runtime named in deploy/, and in the code blocks of the README and docs/ (prose may
    // name others, to say why not them).
    const docs = [
      join(root, "README.md"),
      ...readdirSync(join(root, "docs")).map((f) => join(root, "docs", f)),
    ];
    const sources = [
      ...deployFiles.map((file) => ({ file, text: readFileSync(file, "utf8") })),
      ...docs.map((file) => ({
        file,
        text: [...readFileSync(file, "utf8").matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)]
          .map((m) => m[1])
          .join("\n"),
      })),
    ];
    const named = sources.flatMap(({ file, text }) => [
      ...[...text.matchAll(/\bnodejs\d+\.x\b/g)].map((m) => `${rel(file)}: ${m[0]}`),
      // aws-cdk-lib's Runtime.NODEJS_24_X
      ...[...text.matchAll(/\bNODEJS_(\d+)_X\b/g)].map((m) => `${rel(file)}: nodejs${m[1]}.x`),
    ]);
    expect(named.length).toBeGreaterThanOrEqual(templates.length);
    expect(named.filter((line) => !line.endsWith(`: ${LAMBDA_RUNTIME}`))).toEqual([]);
  });

  it("point the SAM functions at bundles that scripts/build-lambda.mjs builds", () => {
    for (const file of templates.filter((f) => f.includes("/sam/"))) {
      const text = readFileSync(file, "utf8");
      const codeUris = [...text.matchAll(/CodeUri:\s*(\S+)/g)].map((m) => m[1]);
      expect(codeUris.length, rel(file)).toBeGreaterThan(0);
      for (const uri of codeUris)
        expect(
          VARIANTS.map((v) => `../dist/${v}`),
          rel(file),
        ).toContain(uri);
      expect(
        [...text.matchAll(/Handler:\s*(\S+)/g)].map((m) => m[1]),
        rel(file),
      ).toEqual(codeUris.map(() => "index.handler"));
    }
  });
});
