import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-prices-skips-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// A LiteLLM map with one entry of each kind the summary groups: a priced model with batch
// prices (the batch tier has no cache-read price), a whisper model priced per second, a
// placeholder whose every price is 0, and an exponent bomb.
const MAP = `{
  "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2.5e-06,
    "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06,
    "input_cost_per_token_batches": 1.25e-06, "output_cost_per_token_batches": 5e-06},
  "whisper-1": {"litellm_provider": "openai", "mode": "audio_transcription",
    "input_cost_per_second": 0.0001, "output_cost_per_second": 0.0001},
  "codestral/codestral-latest": {"litellm_provider": "codestral", "mode": "chat",
    "input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
  "bomb": {"mode": "chat", "input_cost_per_token": 1e99999999}
}`;

describe("latch prices import: skips per reason", () => {
  it("prints how many LiteLLM fields were not imported, per reason, and lists them in --json", async () => {
    await writeFile(join(dir, "map.json"), MAP);
    const file = join(dir, "prices.json");
    const env = { LATCH_PRICES_FILE: file };

    const run = await runCli(["prices", "import", join(dir, "map.json"), "--effective-from", "2026-01-01"], {
      env,
    });
    expect(run.code).toBe(0);
    // gpt-4o standard + gpt-4o batch
    expect(run.stdout).toMatch(/LiteLLM cost map\): 2 snapshot\(s\) added, 0 unchanged/);
    const lines = run.stdout.split("\n");
    expect(lines).toContain("7 LiteLLM field(s) not imported, by reason (--json lists each one):");
    expect(lines).toContain("  2  noPrice: no price that maps to a Latch meter; no snapshot produced");
    expect(lines).toContain("  2  perSecond: priced per second of audio or video; Latch has no time meter");
    expect(lines.some((l) => /^ {2}1 {2}allZero: every price is 0/.test(l))).toBe(true);
    expect(
      lines.some((l) => /^ {2}1 {2}serviceTierMissing: no price for this meter in this service tier/.test(l)),
    ).toBe(true);
    expect(lines.some((l) => /^ {2}1 {2}tooManyDigits: /.test(l))).toBe(true);

    const stored = JSON.parse(await readFile(file, "utf8"));
    expect(stored.snapshots.map((s: { snapshotId: string }) => s.snapshotId)).toEqual([
      "litellm:gpt-4o:2026-01-01T00:00:00.000Z",
      "litellm:gpt-4o:batch:2026-01-01T00:00:00.000Z",
    ]);
    expect(stored.snapshots[1].model).toEqual({ billableModel: "gpt-4o", vendor: "openai", tier: "batch" });

    const json = await runCli(
      ["prices", "import", join(dir, "map.json"), "--effective-from", "2026-01-01", "--json"],
      {
        env,
      },
    );
    expect(json.code).toBe(0);
    const result = JSON.parse(json.stdout);
    expect(result).toMatchObject({ source: "litellm", added: 0, unchanged: 2 });
    expect(result.skipCounts.map((c: { code: string; count: number }) => [c.code, c.count])).toEqual([
      ["noPrice", 2],
      ["perSecond", 2],
      ["allZero", 1],
      ["serviceTierMissing", 1],
      ["tooManyDigits", 1],
    ]);
    expect(result.skipCounts[0]).toMatchObject({ kind: "notAModel" });
    expect(result.skipped).toContainEqual({
      model: "gpt-4o",
      field: "cache_read_input_token_cost",
      code: "serviceTierMissing",
      tier: "batch",
      reason:
        "no price for this meter in this service tier; the tier's snapshot leaves it unpriced (never the standard price)",
    });
  });

  it("--include-free imports all-zero entries as free models", async () => {
    await writeFile(join(dir, "map.json"), MAP);
    const file = join(dir, "free.json");
    const run = await runCli(
      ["prices", "import", join(dir, "map.json"), "--prices", file, "--include-free", "--json"],
      {},
    );
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.added).toBe(3);
    expect(result.skipCounts.map((c: { code: string }) => c.code)).not.toContain("allZero");
    const stored = JSON.parse(await readFile(file, "utf8"));
    const free = stored.snapshots.find(
      (s: { model: { billableModel: string } }) => s.model.billableModel === "codestral/codestral-latest",
    );
    expect(free.prices).toEqual({
      input_tokens: { perMillion: "0" },
      output_tokens: { perMillion: "0" },
      reasoning_tokens: { as: "output_tokens" },
    });
  });
});
