#!/usr/bin/env node
import { parseArgs } from "node:util";
import { UploadError, type UploadProgress, uploadStream } from "./upload/index.js";

const USAGE = `usage: blindcast-upload <folder> --content-id <id> --key-server <url> [--concurrency <n>] [--retries <n>] [--no-resume]

Uploads a packaged HLS folder (what blindcast-pack wrote) to the key server's storage, through
presigned URLs: segments first, playlists last. The publisher's token comes from the environment
variable BLINDCAST_TOKEN, never from a flag. Files already in storage with the same bytes are
skipped unless --no-resume is given.

Exit status: 0 when every file is in storage, 1 when some did not upload, 2 for a usage error.`;

const NAME = "blindcast-upload";

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (error) {
    return usage((error as Error).message);
  }
  if (args.values.help) {
    console.log(USAGE);
    return 0;
  }
  const [dir, extra] = args.positionals;
  if (!dir || extra !== undefined) return usage("give exactly one folder");
  const contentId = args.values["content-id"];
  if (!contentId) return usage("--content-id is required");
  const keyServerUrl = args.values["key-server"];
  if (!keyServerUrl) return usage("--key-server is required (the key server's URL)");
  const concurrency = count(args.values.concurrency, "--concurrency");
  const retries = count(args.values.retries, "--retries");
  if (concurrency === null || retries === null) return 2;
  const token = process.env.BLINDCAST_TOKEN?.trim();
  if (!token) return usage("BLINDCAST_TOKEN is not set (a publisher's bearer token)");

  const started = Date.now();
  let lastReport = 0;
  const progress = (p: UploadProgress) => {
    const now = Date.now();
    const settled = p.filesUploaded + p.filesSkipped + p.filesFailed;
    if (now - lastReport < 1000 && settled !== p.filesTotal) return;
    lastReport = now;
    console.error(
      `${NAME}: ${settled}/${p.filesTotal} files, ${mb(p.bytesUploaded + p.bytesSkipped)}/${mb(p.bytesTotal)}` +
        `${p.filesSkipped ? ` (${p.filesSkipped} already there)` : ""}${p.filesFailed ? `, ${p.filesFailed} failed` : ""}`,
    );
  };
  try {
    const result = await uploadStream({
      dir,
      contentId,
      keyServerUrl,
      token,
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(retries !== undefined ? { retries } : {}),
      resume: args.values["no-resume"] !== true,
      onProgress: progress,
      onRetry: (r) =>
        console.error(
          `${NAME}: ${r.path ?? "upload URLs"}: ${r.reason}; attempt ${r.attempt + 1} in ${(r.delayMs / 1000).toFixed(1)} s`,
        ),
    });
    if (result.ignored.length > 0) {
      console.error(
        `${NAME}: left out ${result.ignored.length} file(s): ${result.ignored
          .slice(0, 5)
          .map((f) => `${f.path} (${f.reason})`)
          .join(", ")}${result.ignored.length > 5 ? ", …" : ""}`,
      );
    }
    console.error(
      `${NAME}: done: ${result.uploaded.length} uploaded (${mb(result.bytesUploaded)}), ${result.skipped.length} already there, ` +
        `in ${((Date.now() - started) / 1000).toFixed(1)} s; play ${result.entryPlaylists.join(", ")} of content ${contentId}`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof UploadError)) {
      console.error(`${NAME}: failed: ${(error as Error)?.message ?? String(error)}`);
      return 1;
    }
    if (error.code === "INVALID_OPTIONS" || error.code === "INVALID_FOLDER") return usage(error.message);
    console.error(`${NAME}: failed (${error.code}): ${error.message}`);
    for (const line of failureLines(error.failed)) console.error(line);
    if (error.uploaded.length + error.skipped.length > 0) {
      console.error(
        `${NAME}: ${error.uploaded.length} uploaded and ${error.skipped.length} already there; run again to resume`,
      );
    }
    return 1;
  }
}

/**
 * One line per failed file, or per reason shared by several (a refused token fails them all
 * alike); at most 20 lines, for a folder of thousands.
 */
function failureLines(failed: readonly { path: string; reason: string }[]): string[] {
  const byReason = new Map<string, string[]>();
  for (const { path, reason } of failed) byReason.set(reason, [...(byReason.get(reason) ?? []), path]);
  const lines = [...byReason].map(([reason, paths]) =>
    paths.length === 1
      ? `  ${paths[0]}: ${reason}`
      : `  ${paths.length} files (${paths.slice(0, 3).join(", ")}${paths.length > 3 ? ", …" : ""}): ${reason}`,
  );
  return lines.length > 20 ? [...lines.slice(0, 20), `  … and ${lines.length - 20} more`] : lines;
}

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      "content-id": { type: "string" },
      "key-server": { type: "string" },
      concurrency: { type: "string" },
      retries: { type: "string" },
      "no-resume": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/** A whole number flag: undefined when absent, null (after printing why) when malformed. */
function count(text: string | undefined, flag: string): number | undefined | null {
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,5})$/.test(text)) {
    usage(`${flag} must be a whole number`);
    return null;
  }
  return Number(text);
}

function usage(message: string): number {
  console.error(`${NAME}: ${message}\n${USAGE}`);
  return 2;
}

function mb(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

process.exitCode = await main();
