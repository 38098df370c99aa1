import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

// Hand-written maps in LiteLLM's format, not LiteLLM data: a free model and a priced one.
const JAN = `{
  "free-model": {"mode": "chat", "input_cost_per_token": 0, "output_cost_per_token": 0},
  "paid-model": {"mode": "chat", "input_cost_per_token": 1e-06}
}`;
const FEB = `{
  "free-model": {"mode": "chat", "input_cost_per_token": 0, "output_cost_per_token": 0},
  "paid-model": {"mode": "chat", "input_cost_per_token": 2e-06}
}`;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-include-free-"));
  await writeFile(join(dir, "jan.json"), JAN);
  await writeFile(join(dir, "feb.json"), FEB);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("latch prices update --include-free", () => {
  it("is sticky: a later update without the flag keeps the free models instead of removing them", async () => {
    const catalog = join(dir, "c.catalog.json");
    const jan = await runCli([
      "prices",
      "update",
      "--from",
      join(dir, "jan.json"),
      "--catalog",
      catalog,
      "--fetched-at",
      "2026-01-01T00:00:00Z",
      "--include-free",
    ]);
    expect(jan.code).toBe(0);
    expect(jan.stdout).toContain("added: 2");
    expect(JSON.parse(await readFile(catalog, "utf8")).sources[0].includeFree).toBe(true);

    const feb = await runCli([
      "prices",
      "update",
      "--from",
      join(dir, "feb.json"),
      "--catalog",
      catalog,
      "--fetched-at",
      "2026-02-01T00:00:00Z",
    ]);
    expect(feb.stderr).toBe("");
    expect(feb.code).toBe(0);
    expect(feb.stdout).toContain("--include-free: kept from the catalog's last update\n");
    expect(feb.stdout).toContain(
      "prices changed: 1, added: 0, removed: 0, unchanged: 1\n~ paid-model: input_tokens",
    );
    const written = JSON.parse(await readFile(catalog, "utf8"));
    expect(written.sources[1].includeFree).toBe(true);
    const free = written.entries.filter(
      (e: { snapshot: { model: { billableModel: string }; effectiveUntil?: string } }) =>
        e.snapshot.model.billableModel === "free-model",
    );
    expect(free).toHaveLength(1);
    expect(free[0].snapshot.effectiveUntil).toBeUndefined();
  });
});
