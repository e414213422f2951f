// A viewer's view of a live output folder, in a worker thread so that it reads while the watcher
// writes (truly at the same time, not between the watcher's awaits): reads the playlists over and
// over, keeps every distinct version it read, and checks at once that every file a version names
// is on disk (for a media playlist: a whole encrypted segment, a positive multiple of 16 bytes).
// Stops when the main thread sets the shared flag.
import { readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";

const { dir, playlists, flag } = workerData;
const stop = new Int32Array(flag);
/** playlist -> distinct texts read, in order */
const versions = Object.fromEntries(playlists.map((p) => [p.name, []]));
const violations = [];
let reads = 0;

while (Atomics.load(stop, 0) === 0) {
  for (const { name, media } of playlists) {
    let text;
    try {
      text = readFileSync(join(dir, name), "utf8");
    } catch (error) {
      if (error.code !== "ENOENT") violations.push(`${name}: ${error.code}`);
      continue;
    }
    reads++;
    const seen = versions[name];
    if (seen.length > 0 && seen[seen.length - 1] === text) continue;
    if (seen.includes(text)) continue;
    seen.push(text);
    if (!text.startsWith("#EXTM3U\n") || !text.endsWith("\n")) {
      violations.push(`${name} read as ${JSON.stringify(text.slice(0, 40))}…: not a whole playlist`);
    }
    for (const raw of text.split("\n")) {
      // Init sections are named by EXT-X-MAP and stay clear (any size); segments are encrypted.
      const map = /^#EXT-X-MAP:URI="([^"]+)"/.exec(raw)?.[1];
      if (map !== undefined) {
        try {
          statSync(join(dir, dirname(name), map));
        } catch {
          violations.push(`${name} named ${map}, which was not on disk`);
        }
        continue;
      }
      const line = raw;
      if (line === "" || line.startsWith("#")) continue;
      let size;
      try {
        size = statSync(join(dir, dirname(name), line)).size;
      } catch {
        violations.push(`${name} named ${line}, which was not on disk`);
        continue;
      }
      if (media && (size === 0 || size % 16 !== 0)) {
        violations.push(`${name} named ${line}, ${size} bytes: not a whole encrypted segment`);
      }
    }
  }
}
parentPort.postMessage({ versions, violations, reads });
