import { existsSync } from "node:fs";

/**
 * The python that has boto3 (botocore is the presign oracle): BLINDCAST_PYTHON, else the
 * virtualenv scripts/setup-system.sh makes when the system's python3 lacks it, else python3.
 */
export function pythonWithBoto3(): string {
  if (process.env.BLINDCAST_PYTHON) return process.env.BLINDCAST_PYTHON;
  const venv = "/opt/blindcast-moto/bin/python";
  return existsSync(venv) ? venv : "python3";
}
