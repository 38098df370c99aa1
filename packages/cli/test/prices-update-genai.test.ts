import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-prices-genai-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("latch prices update --from genai-prices", () => {
  it("builds a catalog from the bundled data with the diff summary, attributed to the package; again changes nothing", async () => {
    const catalog = join(dir, "g.catalog.json");
    const args = ["prices", "update", "--from", "genai-prices", "--catalog", catalog];
    const first = await runCli([...args, "--fetched-at", "2026-12-01T00:00:00Z"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^prices changed: 0, added: \d+, removed: 0, unchanged: 0\n/);
    expect(first.stdout).toMatch(/\n\+ \S/);
    expect(first.stdout).toMatch(/\n\+ … and \d+ more\n/);
    expect(first.stdout).toMatch(/not imported: \d+ \(.*unsupportedUnit \d+/);
    expect(first.stdout).toMatch(/written \(\d+ snapshot\(s\) from 1 source\(s\)\)/);
    const written = await readFile(catalog, "utf8");
    const parsed = JSON.parse(written);
    expect(parsed.sources[0]).toMatchObject({
      name: "genai-prices (Pydantic)",
      package: expect.stringMatching(/^@pydantic\/genai-prices@\d+\.\d+\.\d+/),
      licence: "MIT",
      fetchedAt: "2026-12-01T00:00:00.000Z",
    });
    const gpt4o = parsed.entries.find(
      (e: { snapshot: { model: { billableModel: string } } }) => e.snapshot.model.billableModel === "gpt-4o",
    ).snapshot;
    // Dated from the update: the catalog does not price calls before it.
    expect(gpt4o.effectiveFrom).toBe("2026-12-01T00:00:00.000Z");
    expect(gpt4o.aliases).toContain("gpt-4o-2024-08-06");
    expect(gpt4o.prices.input_tokens).toEqual({ perMillion: "2.5" });

    const again = await runCli([...args, "--fetched-at", "2026-12-02T00:00:00Z"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/prices changed: 0, added: 0, removed: 0, unchanged: \d+/);
    expect(again.stdout).toContain("unchanged, nothing written");
    expect(await readFile(catalog, "utf8")).toBe(written);
  });

  it("refuses --commit and --source-url, which describe a download", async () => {
    const r = await runCli([
      "prices",
      "update",
      "--from",
      "genai-prices",
      "--commit",
      "abc",
      "--catalog",
      join(dir, "x.json"),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--commit and --source-url");
  });
});
