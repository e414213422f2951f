// The ```ts blocks of the documentation, shared by the tests that compile them: in the workspace
// (test/docs-examples.test.ts) and against the packed tarballs in a scratch app
// (test/outside-in/run.mjs).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The documents whose ```ts blocks must compile, relative to the repository root. */
export function documentedFiles(root) {
  const docs = readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  const packageReadmes = readdirSync(join(root, "packages"))
    .map((folder) => `packages/${folder}/README.md`)
    .filter((f) => existsSync(join(root, f)));
  return ["README.md", ...docs, ...packageReadmes];
}

/** Every ```ts block of `documents`, each with a file name unique across them. */
export function extractSnippets(root, documents) {
  return documents.flatMap((doc) => {
    const text = readFileSync(join(root, doc), "utf8");
    return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((match, i) => ({
      name: `${doc} example ${i + 1}`,
      doc,
      file: `${doc.replace(/[/.]/g, "_")}_${i + 1}`,
      code: match[1] ?? "",
    }));
  });
}

// Names the documentation leaves to the reader, declared only where a block uses them.
export const PLACEHOLDERS = {
  videoElement: "declare const videoElement: HTMLVideoElement;",
  outputFolder: "declare const outputFolder: string;",
};

/** The placeholders a snippet uses and does not define itself. */
export function placeholdersOf(code) {
  return Object.keys(PLACEHOLDERS).filter(
    (name) => code.includes(name) && !new RegExp(`(function|const|let) ${name}\\b`).test(code),
  );
}

/** The snippet as a compilable module: the declarations of its placeholders, then its code. */
export function withPlaceholders(code) {
  return [...placeholdersOf(code).map((name) => PLACEHOLDERS[name]), code].join("\n");
}

/** Browser code (the player): compiled with the DOM library, never run in Node. */
export function isBrowserSnippet(code) {
  return /from "@blindcast\/player(\/light)?"/.test(code);
}
