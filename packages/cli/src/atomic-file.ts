import { randomBytes } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { open, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** `<dir>/.<name>.<random>.partial`: beside the target, so the final rename is atomic. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(4).toString("hex")}.partial`);
}

/** Writes a whole file atomically: temp file, fsync, rename over the target. */
export async function writeFileAtomic(target: string, data: string): Promise<void> {
  const temp = tempPathFor(target);
  try {
    await writeFile(temp, data, { flag: "wx" });
    const handle = await open(temp, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * A file written through a temporary sibling and renamed into place by {@link commit}, so a
 * reader never sees a partial file and an interrupted run leaves none behind ({@link discard}).
 * Writes are buffered into large chunks and honour back-pressure.
 */
export class AtomicOutput {
  readonly target: string;
  readonly temp: string;
  readonly #stream: WriteStream;
  #buffer = "";
  #failed: Error | undefined;
  #bytes = 0;

  constructor(target: string) {
    this.target = target;
    this.temp = tempPathFor(target);
    this.#stream = createWriteStream(this.temp, { flags: "wx" });
    this.#stream.on("error", (error) => {
      this.#failed = error;
    });
  }

  /** Bytes handed to {@link write} so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends text; resolves at once unless the buffer is full and the disk is behind. */
  async write(text: string): Promise<void> {
    this.#buffer += text;
    this.#bytes += Buffer.byteLength(text);
    if (this.#buffer.length >= 1 << 16) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#buffer === "") return;
    const chunk = this.#buffer;
    this.#buffer = "";
    if (!this.#stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.#stream.off("error", onError);
          resolve();
        };
        const onError = (error: Error) => {
          this.#stream.off("drain", onDrain);
          reject(error);
        };
        this.#stream.once("drain", onDrain);
        this.#stream.once("error", onError);
      });
    }
  }

  async #close(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      if (this.#stream.closed) {
        resolve();
        return;
      }
      this.#stream.once("error", reject);
      this.#stream.end(() => resolve());
    });
    if (this.#failed) throw this.#failed;
  }

  /** Flushes, fsyncs and renames the temporary file over the target. */
  async commit(): Promise<void> {
    await this.#flush();
    await this.#close();
    const handle = await open(this.temp, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(this.temp, this.target);
  }

  /** Closes and deletes the temporary file; the target is left as it was. */
  async discard(): Promise<void> {
    this.#buffer = "";
    try {
      await this.#close();
    } catch {
      // Discarding anyway.
    }
    await rm(this.temp, { force: true });
  }
}
