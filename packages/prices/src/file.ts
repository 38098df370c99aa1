import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { type InMemoryPricingSource, LatchValidationError } from "@latch/core";
import { type PriceCatalog, parsePriceCatalog, pricingSourceOf } from "./catalog.js";

/**
 * Reads and validates a catalog file (see `parsePriceCatalog`). A missing file is an error:
 * use {@link readPriceCatalogIfExists} where "no catalog yet" is expected.
 *
 * @throws LatchValidationError (`invalid_input`) for a file that is not JSON or not a catalog.
 */
export async function loadPriceCatalog(path: string): Promise<PriceCatalog> {
  const text = await readFile(path, "utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw LatchValidationError.at("price catalog", "", "the file is not JSON");
  }
  return parsePriceCatalog(json);
}

/** {@link loadPriceCatalog}, or `undefined` when there is no file at `path` yet. */
export async function readPriceCatalogIfExists(path: string): Promise<PriceCatalog | undefined> {
  try {
    return await loadPriceCatalog(path);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * The pricing of `createLatch()` from a catalog file, in one option:
 *
 * @example
 * const latch = createLatch({ observations, rated, pricing: await priceCatalog("./prices.catalog.json") });
 */
export async function priceCatalog(path: string): Promise<InMemoryPricingSource> {
  return pricingSourceOf(await loadPriceCatalog(path));
}

/**
 * Writes a catalog atomically: a temporary file beside the target, flushed to disk, renamed
 * over it. A reader (or a crash) sees the old file or the new one, never a part. The same
 * catalog always serialises to the same text (2-space JSON, entries in catalog order). The
 * new file keeps the permissions of the one it replaces (a catalog made private stays
 * private); on any failure the temporary file is removed and the target left as it was.
 */
export async function writePriceCatalog(path: string, catalog: PriceCatalog): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.partial`);
  const mode = await modeOf(path);
  try {
    const handle = await open(temp, "wx", mode ?? 0o666);
    try {
      // The umask may have narrowed the mode given to open: set the old file's exactly.
      if (mode !== undefined) await handle.chmod(mode);
      await handle.writeFile(`${JSON.stringify(catalog, null, 2)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined); // the write's own error is the one to report
    throw error;
  }
}

/** The permission bits of the file at `path`, or `undefined` when there is none yet. */
async function modeOf(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.mode & 0o7777 : undefined;
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  }
}
