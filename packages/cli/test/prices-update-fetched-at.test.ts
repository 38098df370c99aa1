import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

// A hand-written map in LiteLLM's format, not LiteLLM data.
const MAP = `{"m": {"mode": "chat", "input_cost_per_token": 1e-06}}`;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-fetched-at-"));
  await writeFile(join(dir, "map.json"), MAP);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("latch prices update --fetched-at", () => {
  it("refuses a fetch time in the future (it would date the prices ahead and block every honest update)", async () => {
    const nextYear = new Date(Date.now() + 366 * 86_400_000).toISOString();
    const catalog = join(dir, "c.catalog.json");
    const run = await runCli([
      "prices",
      "update",
      "--from",
      join(dir, "map.json"),
      "--catalog",
      catalog,
      "--fetched-at",
      nextYear,
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--fetched-at");
    expect(run.stderr).toContain("in the future");
    expect(await readdir(dir)).toEqual(["map.json"]);
  });

  it("accepts one a minute ahead (another machine's clock)", async () => {
    const soon = new Date(Date.now() + 60_000).toISOString();
    const run = await runCli([
      "prices",
      "update",
      "--from",
      join(dir, "map.json"),
      "--catalog",
      join(dir, "d.catalog.json"),
      "--fetched-at",
      soon,
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
  });
});
