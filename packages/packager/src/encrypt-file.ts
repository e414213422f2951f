import { createCipheriv } from "node:crypto";
import { type FileHandle, mkdir, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PackagerError, shown } from "./errors.js";
import { reason } from "./files.js";

/**
 * Bytes read (and encrypted) at a time. Large enough that the per-call cost of a read, a cipher
 * update and a write is small beside the AES work; small enough that memory does not grow with
 * the segment, let alone the stream.
 */
export const ENCRYPT_CHUNK_BYTES = 1024 * 1024;

/**
 * Encrypts the media file at `inputPath` into `path` (relative) in the output folder with
 * AES-128-CBC and PKCS#7 padding: the same bytes as `encryptSegment` from @blindcast/crypto,
 * but streamed through node's cipher a chunk at a time, instead of the whole file read into
 * memory and handed to WebCrypto (which copies it, and runs on the thread pool).
 */
export async function encryptFileInto(
  inputPath: string,
  fullName: string,
  outputDir: string,
  path: string,
  key: Uint8Array,
  iv: Uint8Array,
): Promise<void> {
  const target = join(outputDir, path);
  const cannotRead = (error: unknown) =>
    new PackagerError("INPUT_UNREADABLE", `cannot read ${shown(fullName)}: ${reason(error)}`);
  const cannotWrite = (error: unknown) =>
    new PackagerError("OUTPUT_UNUSABLE", `cannot write ${shown(target)}: ${reason(error)}`);

  let source: FileHandle;
  try {
    source = await open(inputPath, "r");
  } catch (error) {
    throw cannotRead(error);
  }
  try {
    let sink: FileHandle;
    try {
      await mkdir(dirname(target), { recursive: true });
      sink = await open(target, "w");
    } catch (error) {
      throw cannotWrite(error);
    }
    try {
      const cipher = createCipheriv("aes-128-cbc", key, iv);
      const chunk = Buffer.allocUnsafe(ENCRYPT_CHUNK_BYTES);
      const write = async (bytes: Uint8Array) => {
        try {
          if (bytes.length > 0) await sink.write(bytes);
        } catch (error) {
          throw cannotWrite(error);
        }
      };
      for (;;) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await source.read(chunk, 0, chunk.length, null));
        } catch (error) {
          throw cannotRead(error);
        }
        if (bytesRead === 0) break;
        await write(cipher.update(chunk.subarray(0, bytesRead)));
      }
      await write(cipher.final());
    } finally {
      await sink.close().catch(() => undefined);
    }
  } finally {
    await source.close().catch(() => undefined);
  }
}
