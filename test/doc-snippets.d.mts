export interface Snippet {
  /** "README.md example 3" */
  name: string;
  /** The document, relative to the repository root. */
  doc: string;
  /** A file name (no extension) unique across documents. */
  file: string;
  code: string;
}
export function documentedFiles(root: string): string[];
export function extractSnippets(root: string, documents: string[]): Snippet[];
export const PLACEHOLDERS: Record<string, string>;
export function placeholdersOf(code: string): string[];
export function withPlaceholders(code: string): string;
export function isBrowserSnippet(code: string): boolean;
