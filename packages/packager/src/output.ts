import type { Stats } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { PackagerError } from "./errors.js";
import { reason } from "./files.js";
import { LOCK_FILE, STATE_FILE } from "./live-state.js";

/** The output folder, checked against the input: where files can be written without harm. */
export interface OutputCheck {
  /** The input's folder with links resolved. */
  realInput: string;
  /** The output folder with links resolved (as given when it does not exist yet). */
  realOutput: string;
  /** The folder exists already. */
  exists: boolean;
  /** The folder holds a live state file: a run continues what an earlier one published. */
  continuing: boolean;
}

/**
 * Refuses an output that is a file, that is the input's folder, whose files would overwrite
 * input files, or that is not empty (unless `overwrite`, or `allowState` and the folder holds a
 * live run's state file: then the run continues it).
 */
export async function checkOutput(
  outputDir: string,
  inputDir: string,
  inputFiles: Iterable<string>,
  overwrite: boolean,
  allowState = false,
): Promise<OutputCheck> {
  let realInput: string;
  try {
    realInput = await realpath(inputDir);
  } catch (error) {
    throw new PackagerError(
      "INPUT_UNREADABLE",
      `cannot read the input's folder ${inputDir}: ${reason(error)}`,
    );
  }
  const unusable = (why: string) => new PackagerError("OUTPUT_UNUSABLE", `output ${outputDir}: ${why}`);
  let stats: Stats | undefined;
  try {
    stats = await stat(outputDir);
  } catch (error) {
    // A missing folder is created; anything else in the way (a file on its path, a link loop) is not.
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw unusable(reason(error));
  }
  let realOutput = outputDir;
  let continuing = false;
  if (stats) {
    if (!stats.isDirectory()) throw unusable("it exists and is not a folder");
    let entries: string[];
    try {
      realOutput = await realpath(outputDir);
      entries = await readdir(outputDir);
    } catch (error) {
      throw unusable(reason(error));
    }
    // Written files keep their relative paths, so they collide with inputs exactly when the folders match.
    if (realOutput === realInput) {
      throw new PackagerError(
        "WOULD_OVERWRITE_INPUT",
        "output folder is the input's folder: the packager never overwrites its input",
      );
    }
    continuing = allowState && entries.includes(STATE_FILE);
    const others = entries.filter((entry) => entry !== LOCK_FILE);
    if (others.length > 0 && !overwrite && !continuing) {
      throw new PackagerError(
        "OUTPUT_NOT_EMPTY",
        `output folder ${outputDir} is not empty (pass overwrite / --force to write into it)`,
      );
    }
  }
  const check = { realInput, realOutput, exists: stats !== undefined, continuing };
  const files = new Set(inputFiles);
  for (const file of files) refuseOverwritingInput(check, file, files);
  return check;
}

/** Refuses to write `file` (relative) into the output when that would replace one of `inputFiles`. */
export function refuseOverwritingInput(
  check: Pick<OutputCheck, "realInput" | "realOutput">,
  file: string,
  inputFiles: ReadonlySet<string>,
): void {
  const target = join(check.realOutput, file);
  if (target.startsWith(check.realInput + sep) && inputFiles.has(relative(check.realInput, target))) {
    throw new PackagerError("WOULD_OVERWRITE_INPUT", `writing ${file} would overwrite an input file`);
  }
}
