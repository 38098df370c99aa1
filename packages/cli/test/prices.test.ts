import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";
import { PRICE_FILE } from "./support/usage-log.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-prices-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Numbers as LiteLLM writes them: per token, in exponent notation.
const litellm = (input: string, output: string) =>
  `{"gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": ${input}, "output_cost_per_token": ${output}, "cache_read_input_token_cost": 1.25e-06}}`;

describe("latch prices", () => {
  it("imports a LiteLLM cost map exactly, re-imports as a no-op, and a newer sheet takes over from its date", async () => {
    const file = join(dir, "prices.json");
    await writeFile(join(dir, "litellm-jan.json"), litellm("2.5e-06", "1e-05"));
    await writeFile(join(dir, "litellm-apr.json"), litellm("2e-06", "8e-06"));
    const env = { LATCH_PRICES_FILE: file };

    const first = await runCli(
      ["prices", "import", join(dir, "litellm-jan.json"), "--effective-from", "2026-01-01"],
      { env },
    );
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/LiteLLM cost map\): 1 snapshot\(s\) added, 0 unchanged/);
    const stored = JSON.parse(await readFile(file, "utf8"));
    expect(stored.schema).toBe("latch.price-snapshots.v1");
    expect(stored.snapshots[0].prices.input_tokens).toEqual({ perMillion: "2.5" });

    const again = await runCli(
      ["prices", "import", join(dir, "litellm-jan.json"), "--effective-from", "2026-01-01"],
      { env },
    );
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 snapshot\(s\) added, 1 unchanged, 0 earlier one\(s\) closed; 1 in/);

    const conflict = await runCli(
      ["prices", "import", join(dir, "litellm-apr.json"), "--effective-from", "2026-01-01"],
      { env },
    );
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(
      /snapshot litellm:gpt-4o:2026-01-01T00:00:00\.000Z is already stored with other prices/,
    );

    const april = await runCli(
      [
        "prices",
        "import",
        join(dir, "litellm-apr.json"),
        "--effective-from",
        "2026-04-01T00:00:00Z",
        "--json",
      ],
      { env },
    );
    expect(april.code).toBe(0);
    expect(JSON.parse(april.stdout)).toMatchObject({ added: 1, closed: 1, total: 2, source: "litellm" });

    const march = await runCli(["prices", "show", "gpt-4o", "--at", "2026-03-15"], { env });
    expect(march.code).toBe(0);
    expect(march.stdout).toMatch(
      /snapshot litellm:gpt-4o:2026-01-01T00:00:00\.000Z · USD · from .* until 2026-04-01T00:00:00\.000Z/,
    );
    expect(march.stdout).toMatch(/input_tokens\s+2\.5\s+per million/);
    expect(march.stdout).toMatch(/other snapshots of gpt-4o:/);

    const may = await runCli(["prices", "show", "gpt-4o", "--at", "2026-05-01T00:00:00Z", "--json"], { env });
    expect(may.code).toBe(0);
    expect(JSON.parse(may.stdout).prices).toMatchObject({
      input_tokens: { perMillion: "2" },
      output_tokens: { perMillion: "8" },
    });
  });

  it("imports Latch snapshot files, and fails with the model or flag named", async () => {
    const file = join(dir, "latch-prices.json");
    await writeFile(join(dir, "sheet.json"), JSON.stringify(PRICE_FILE));
    const imported = await runCli(["prices", "import", join(dir, "sheet.json"), "--prices", file]);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/Latch snapshots\): 3 snapshot\(s\) added/);

    const tiers = await runCli(["prices", "show", "gemini-2.5-pro", "--prices", file, "--at", "2026-03-01"]);
    expect(tiers.code).toBe(0);
    expect(tiers.stdout).toMatch(/tier 0: volume, per request, baseline prompt_tokens/);
    expect(tiers.stdout).toMatch(/> 200,000: input_tokens 2\.5 per million/);

    const unknown = await runCli(["prices", "show", "gpt-9", "--prices", file]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no price snapshot for model gpt-9 at .* \(the model has no snapshot\)/);

    const early = await runCli(["prices", "show", "gpt-4o", "--prices", file, "--at", "2025-12-31"]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/its snapshots: test:gpt-4o:2026-01/);

    const badAt = await runCli(["prices", "show", "gpt-4o", "--prices", file, "--at", "soon"]);
    expect(badAt.code).toBe(2);
    expect(badAt.stderr).toMatch(/--at: expected an ISO 8601 time/);

    await writeFile(
      join(dir, "bad.json"),
      JSON.stringify({ snapshots: [{ ...PRICE_FILE.snapshots[0], currency: "XXY" }] }),
    );
    const bad = await runCli(["prices", "import", join(dir, "bad.json"), "--prices", file]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/snapshots\.0\.currency/);

    const help = await runCli(["prices", "import", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--effective-from <time>/);
  });
});
