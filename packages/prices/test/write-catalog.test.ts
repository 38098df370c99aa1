import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  loadPriceCatalog,
  PRICE_CATALOG_FORMAT,
  type PriceCatalog,
  writePriceCatalog,
} from "../src/index.js";

const catalog: PriceCatalog = { format: PRICE_CATALOG_FORMAT, sources: [], entries: [] };
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-prices-write-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writePriceCatalog", () => {
  it("keeps the permissions of the catalog it replaces", async () => {
    const path = join(dir, "private.catalog.json");
    await writeFile(path, "{}");
    await chmod(path, 0o600);
    await writePriceCatalog(path, catalog);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await loadPriceCatalog(path)).toEqual(catalog);
    await chmod(path, 0o640);
    await writePriceCatalog(path, catalog);
    expect((await stat(path)).mode & 0o777).toBe(0o640);
  });

  it("leaves no .partial file and the target as it was when the write fails", async () => {
    // The target is a directory: the rename over it fails after the temporary file was written.
    const sub = join(dir, "fails");
    await mkdir(sub);
    const target = join(sub, "catalog.json");
    await mkdir(target);
    await expect(writePriceCatalog(target, catalog)).rejects.toMatchObject({ code: expect.any(String) });
    expect(await readdir(sub)).toEqual(["catalog.json"]);
    expect((await stat(target)).isDirectory()).toBe(true);
  });
});
