// Runs cfn-lint (the CloudFormation linter; pip install cfn-lint, or CFN_LINT=/path/to/cfn-lint) on
// templates and returns all its findings, informational ones included, minus exceptions each named
// with the rule, the resource and why it is accepted.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CfnLintFinding {
  file: string;
  rule: string;
  level: string;
  message: string;
  /** Path in the template, e.g. ["Resources", "Fn", "Properties", "Runtime"]. */
  path: (string | number)[];
}

export interface AcceptedFinding {
  rule: string;
  /** The logical id of the one resource it is accepted on; "*" for anywhere in the template. */
  resource: string;
  reason: string;
}

/**
 * I1022 (informational: "prefer Fn::Sub over Fn::Join with an empty delimiter") throughout the
 * templates that aws-cdk-lib and the Serverless Framework generate: both write every ARN and URL
 * with Fn::Join. The two are equivalent; the style is the generator's, not ours to change.
 */
export const GENERATED_TEMPLATE_STYLE: AcceptedFinding = {
  rule: "I1022",
  resource: "*",
  reason: "the generator's way of writing ARNs and URLs; Fn::Join and Fn::Sub are equivalent",
};

interface RawFinding {
  Filename: string;
  Level: string;
  Message: string;
  Rule: { Id: string };
  Location: { Path: (string | number)[] };
}

/** Lints each template (name → parsed template) in one cfn-lint run; bounded to two minutes. */
export function cfnLint(
  templates: Record<string, unknown>,
  accepted: readonly AcceptedFinding[] = [],
): CfnLintFinding[] {
  const dir = mkdtempSync(join(tmpdir(), "blindcast-cfn-lint-"));
  try {
    const files = Object.entries(templates).map(([name, template]) => {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(template, null, 1));
      return file;
    });
    const cfnLint = process.env.CFN_LINT || "cfn-lint";
    const run = spawnSync(cfnLint, ["--format", "json", "--include-checks", "I", "--", ...files], {
      encoding: "utf8",
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    if (run.error) {
      throw new Error(`cannot run ${cfnLint} (pip install cfn-lint, or set CFN_LINT): ${run.error.message}`);
    }
    // Exit status: 0 clean, else a bit mask of finding levels (2 error, 4 warning, 8 info); 1 is a crash.
    if (run.status === 1 || run.status === null) {
      throw new Error(`cfn-lint failed (status ${run.status}): ${run.stderr}`);
    }
    const raw = JSON.parse(run.stdout || "[]") as RawFinding[];
    return raw
      .map((finding) => ({
        file: finding.Filename.slice(dir.length + 1),
        rule: finding.Rule.Id,
        level: finding.Level,
        message: finding.Message,
        path: finding.Location.Path,
      }))
      .filter(
        (finding) =>
          !accepted.some(
            (a) =>
              a.rule === finding.rule &&
              (a.resource === "*" || (finding.path[0] === "Resources" && finding.path[1] === a.resource)),
          ),
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
