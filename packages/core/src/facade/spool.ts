import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

/** One spooled observation per line: `{"v":1,"observation":{…}}`. */
const VERSION = 1;

export interface SpoolReadResult {
  /** Parsed payloads, in file order, with their line numbers (1-based). */
  entries: Array<{ line: number; observation: unknown }>;
  /** Lines that are not a complete spool entry (a write torn by a crash), 1-based. */
  torn: number[];
}

/**
 * A local append-only JSONL file where observations wait when the store is down. Each
 * append is written with O_APPEND and flushed to disk before it returns, so an observation the
 * caller was told is spooled survives a crash; a crash mid-write leaves at most one torn line,
 * which replay skips (with a warning) without losing its neighbours.
 *
 * Operations are serialised through one promise chain: appends never interleave with a replay's
 * rewrite of the file.
 */
export class Spool {
  #chain: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(fn, fn);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  append(observation: unknown): Promise<void> {
    return this.#serial(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const handle = await open(this.path, "a");
      try {
        // A line starts on a fresh line even if the previous write was torn.
        await handle.write(`\n${JSON.stringify({ v: VERSION, observation })}\n`);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    });
  }

  /**
   * Reads every entry, hands them to `replay`, and rewrites the spool with only the entries
   * `replay` could not deliver (`keep`). The rewrite goes to a temporary file that replaces the
   * spool atomically, so a crash during replay at worst replays an entry twice — which the
   * store's idempotent append turns into `already_exists`.
   */
  drain(
    replay: (read: SpoolReadResult) => Promise<{ keep: unknown[] }>,
  ): Promise<SpoolReadResult & { kept: number }> {
    return this.#serial(async () => {
      let text: string;
      try {
        text = await readFile(this.path, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return { entries: [], torn: [], kept: 0 };
        throw error;
      }
      const read: SpoolReadResult = { entries: [], torn: [] };
      const lines = text.split("\n");
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] as string;
        if (line.trim() === "") continue;
        try {
          const parsed: unknown = JSON.parse(line);
          if (typeof parsed === "object" && parsed !== null && (parsed as { v?: unknown }).v === VERSION) {
            read.entries.push({ line: i + 1, observation: (parsed as { observation: unknown }).observation });
            continue;
          }
        } catch {
          // fall through: torn or foreign line
        }
        read.torn.push(i + 1);
      }
      const { keep } = await replay(read);
      if (keep.length === 0) {
        await rm(this.path, { force: true });
      } else {
        const tmp = `${this.path}.${process.pid}.tmp`;
        const handle = await open(tmp, "w");
        try {
          await handle.write(
            keep.map((observation) => `${JSON.stringify({ v: VERSION, observation })}\n`).join(""),
          );
          await handle.datasync();
        } finally {
          await handle.close();
        }
        await rename(tmp, this.path);
      }
      return { ...read, kept: keep.length };
    });
  }
}
