import { execFileSync } from "node:child_process";
import { closeSync, createReadStream, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditRecord } from "@blindcast/keys";
import type { AuditDroppedRecord } from "@blindcast/keys/node";
import { describe, expect, it } from "vitest";
import { pipelinedGets, startCli } from "./support/cli.js";
import { MASTER_KEY_HEX, SALT_HEX } from "./support/fixtures.js";

const BUFFER_BYTES = 64 * 1024;
/** What a pipe holds on Linux (16 pages) before its writer has to wait. */
const PIPE_BYTES = 64 * 1024;
/** A long contentId makes long audit lines (about 370 bytes): fewer requests fill the buffer. */
const CONTENT_ID = "c".repeat(128);
const REQUESTS = 2000;

/** Key requests for epochs `from` to `from + count - 1`, over 4 connections; every one must answer 200. */
async function requestKeys(port: number, from: number, count: number): Promise<void> {
  const paths = Array.from({ length: count }, (_, i) => `/keys/${CONTENT_ID}/${from + i}`);
  const parts = [0, 1, 2, 3].map((n) => paths.filter((_, i) => i % 4 === n));
  const statuses = (await Promise.all(parts.map((part) => pipelinedGets(port, part)))).flat();
  expect(statuses).toHaveLength(count);
  expect(statuses.every((status) => status === 200)).toBe(true);
}

describe("the audit trail when stdout's reader stalls (the blindcast-keys CLI)", () => {
  it("holds a bounded buffer, drops and counts past it, and reports the count once stdout drains", async () => {
    // stdout is a named pipe that nobody reads, as when a log shipper stops reading: the pipe
    // takes 64 KiB, then node would buffer every further line in memory. (A pipe from spawn()
    // is a socket pair, whose size the kernel varies; a FIFO's is fixed.)
    const fifo = join(mkdtempSync(join(tmpdir(), "blindcast-audit-")), "stdout");
    execFileSync("mkfifo", [fifo]);
    // Open for reading and writing: does not wait for a reader, and keeps the pipe open.
    let held = openSync(fifo, "r+");
    const server = await startCli(
      {
        MASTER_KEY: MASTER_KEY_HEX,
        SALT: SALT_HEX,
        CORS_ORIGINS: "*",
        PORT: "0",
        LEASES: "off",
        AUDIT_BUFFER_BYTES: String(BUFFER_BYTES),
      },
      { stdout: held },
    );
    try {
      await requestKeys(server.port, 0, REQUESTS);

      // The reader comes back: what was held arrives, then the count of what was not.
      let text = "";
      const reader = createReadStream(fifo, { encoding: "utf8" });
      reader.on("data", (chunk) => {
        text += chunk;
      });
      const deadline = Date.now() + 10_000;
      while (!text.includes('"blindcast.keys.audit_dropped"') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // The trail goes on after the gap.
      await requestKeys(server.port, REQUESTS, 10);
      expect(await server.stop()).toBe(0);
      // The server has exited: with the last writer gone, the reader sees the end of the pipe.
      closeSync(held);
      held = -1;
      await new Promise((resolve) => reader.once("close", () => resolve(undefined)));

      const delivered = Buffer.byteLength(text);
      const lines = text
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as AuditRecord | AuditDroppedRecord);
      const reports = lines.filter(
        (line): line is AuditDroppedRecord => line.type !== "blindcast.keys.request",
      );
      const records = lines.filter((line): line is AuditRecord => line.type === "blindcast.keys.request");
      // One report: the reader stopped once, and lines were dropped only while it had stopped.
      expect(reports).toHaveLength(1);
      const report = reports[0] as AuditDroppedRecord;
      // Every request is either in the trail or counted: nothing vanishes silently.
      expect(records.length - 10 + report.count).toBe(REQUESTS);
      expect(report.count).toBeGreaterThan(REQUESTS / 2);
      expect(Date.parse(report.since)).toBeLessThanOrEqual(Date.parse(report.time));
      // What waited for the reader was bounded: the pipe's 64 KiB and the server's buffer, plus
      // the lines written after the stall and the report.
      const after = Buffer.byteLength(text.slice(text.indexOf('"blindcast.keys.audit_dropped"')));
      expect(delivered - after).toBeLessThanOrEqual(PIPE_BYTES + BUFFER_BYTES);
      // The report stands where the gap is: after it, only the 10 requests made after the stall.
      expect(
        lines
          .slice(lines.indexOf(report) + 1)
          .map((line) => (line as AuditRecord).epoch)
          .sort((a, b) => (a ?? 0) - (b ?? 0)),
      ).toEqual(Array.from({ length: 10 }, (_, i) => REQUESTS + i));
    } finally {
      await server.stop();
      if (held >= 0) closeSync(held);
    }
  });
});
