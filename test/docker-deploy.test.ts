import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

// deploy/docker/compose.yaml and the README's container section, checked against each other and
// against what the CLI reads. This machine has no Docker to run compose; test/image runs the image
// itself with the README's `docker run` variables.
const root = new URL("..", import.meta.url).pathname;
const composeDir = join(root, "deploy/docker");
const readme = readFileSync(join(root, "README.md"), "utf8");

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  secrets?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  read_only?: boolean;
  stop_grace_period?: string;
  volumes?: string[];
}
const compose = parse(readFileSync(join(composeDir, "compose.yaml"), "utf8")) as {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
};
const keys = compose.services.keys as Service;
const postgres = compose.services.postgres as Service;

/** The variables of the README's table under "In a container". */
function documentedVariables(): string[] {
  const section = readme.slice(readme.indexOf("### In a container"));
  const table = section.slice(
    section.indexOf("| variable | meaning |"),
    section.indexOf("\n\n", section.indexOf("| variable | meaning |")),
  );
  return [...table.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] ?? "");
}

/** What the CLI's code names as environment variables (its compiled modules). */
function cliSource(): string {
  const dir = join(root, "packages/keys-lambda/dist/node");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".js"))
    .map((f) => readFileSync(join(dir, f), "utf8"))
    .join("\n");
}

describe("deploy/docker/compose.yaml", () => {
  it("builds the Dockerfile from the repository root", () => {
    const context = join(composeDir, keys.build?.context ?? "");
    expect(existsSync(join(context, "pnpm-workspace.yaml"))).toBe(true);
    expect(existsSync(join(context, keys.build?.dockerfile ?? ""))).toBe(true);
  });

  it("starts the key server once PostgreSQL is healthy", () => {
    expect(keys.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    expect(postgres.healthcheck?.test[0]).toBe("CMD");
    expect(postgres.healthcheck?.test).toContain("pg_isready");
  });

  it("hands every secret over as a file the server reads, none in the environment", () => {
    const env = keys.environment ?? {};
    for (const [name, value] of Object.entries(env)) {
      expect(name).not.toMatch(/^(MASTER_KEY|SALT|JWT_SECRET|DATABASE_URL)$/);
      if (!name.endsWith("_FILE")) continue;
      const secret = /^\/run\/secrets\/([a-z_]+)$/.exec(value)?.[1];
      expect(secret, name).toBeDefined();
      expect(keys.secrets).toContain(secret);
      expect(compose.secrets[secret ?? ""]?.file).toBe(`./secrets/${secret}`);
    }
    expect(readFileSync(join(root, ".gitignore"), "utf8")).toContain("deploy/docker/secrets/");
    // PostgreSQL's password is a file too, and the README writes the URL with the same user,
    // database and service name.
    expect(postgres.environment?.POSTGRES_PASSWORD_FILE).toBe("/run/secrets/postgres_password");
    const user = postgres.environment?.POSTGRES_USER;
    const db = postgres.environment?.POSTGRES_DB;
    expect(readme).toContain(`postgres://${user}:%s@postgres:5432/${db}`);
  });

  it("runs read-only, published on loopback, stopped within Docker's grace", () => {
    expect(keys.read_only).toBe(true);
    expect(keys.ports).toEqual(["127.0.0.1:8787:8787"]);
    // SHUTDOWN_TIMEOUT_MS defaults to 5000 ms: SIGKILL must come later.
    expect(Number.parseInt(keys.stop_grace_period ?? "0", 10)).toBeGreaterThan(5);
  });

  it("sets only variables the README documents", () => {
    const documented = documentedVariables();
    for (const name of Object.keys(keys.environment ?? {})) expect(documented).toContain(name);
  });
});

describe("the README's container variables", () => {
  it("are each read by the CLI", () => {
    const source = cliSource();
    const documented = documentedVariables();
    expect(documented.length).toBeGreaterThan(15);
    for (const name of documented) {
      const base = name.replace(/_FILE$/, "");
      expect(
        source.includes(`"${name}"`) ||
          source.includes(`.${name}`) ||
          source.includes(`"${base}"`) ||
          source.includes(`  ${name}: `),
        name,
      ).toBe(true);
    }
  });
});
