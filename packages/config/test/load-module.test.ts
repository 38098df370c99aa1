import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { load } from "../src/open.js";

// Real module resolution: a package that is not installed, and a module that imports one.
let dir: string;
let adapter: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-config-load-"));
  const file = join(dir, "adapter.mjs");
  await writeFile(file, 'import "latch-missing-driver-7f3a/lib/client.js";\nexport const x = 1;\n');
  adapter = pathToFileURL(file).href;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loading a backend's module", () => {
  it("names the variable and the package to install when the adapter itself is missing", async () => {
    await expect(load("@latch/not-installed-7f3a", "LATCH_STORE")).rejects.toThrow(
      "LATCH_STORE: install @latch/not-installed-7f3a to use this backend",
    );
  });

  it("names the missing driver, not the adapter that imports it", async () => {
    await expect(load(adapter, "LATCH_DATABASE_URL")).rejects.toThrow(
      `LATCH_DATABASE_URL: install latch-missing-driver-7f3a (${adapter} needs it) to use this backend`,
    );
  });

  it("passes any other import error through unchanged", async () => {
    const broken = join(dir, "broken.mjs");
    await writeFile(broken, "throw new RangeError('adapter failed at start-up');\n");
    await expect(load(pathToFileURL(broken).href, "LATCH_STORE")).rejects.toThrow(
      new RangeError("adapter failed at start-up"),
    );
  });
});
