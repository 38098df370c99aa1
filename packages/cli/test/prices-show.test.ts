import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PriceSnapshotInput } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

let dir: string;
let file: string;

const snap = (
  snapshotId: string,
  billableModel: string,
  input: string,
  extra: Partial<PriceSnapshotInput> = {},
): PriceSnapshotInput => ({
  snapshotId,
  model: { billableModel },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: input }, output_tokens: { perMillion: "10" } },
  ...extra,
});

const SNAPSHOTS: PriceSnapshotInput[] = [
  snap("gpt-4o", "gpt-4o", "2.5"),
  snap("gpt-4o:priority", "gpt-4o", "5", {
    model: { billableModel: "gpt-4o", tier: "priority" },
    fallbackTiers: ["scale"],
  }),
  snap("openrouter/openai/gpt-4o", "openrouter/openai/gpt-4o", "2.6"),
  snap("house-a", "claude-sonnet-4-5", "3", { aliases: ["house-model"] }),
  snap("house-b", "gemini-2.5-pro", "1.25", { aliases: ["house-model"] }),
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-prices-show-"));
  file = join(dir, "prices.json");
  await writeFile(file, JSON.stringify({ schema: "latch.price-snapshots.v1", snapshots: SNAPSHOTS }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const show = (...args: string[]) =>
  runCli(["prices", "show", ...args, "--prices", file, "--at", "2026-03-01"]);

describe("latch prices show: model matching and service tiers", () => {
  it("an exact id says so", async () => {
    const run = await show("gpt-4o");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^matched: exact id \(exact\)$/m);
    expect(run.stdout).toMatch(/^service tier: standard$/m);
    expect(run.stdout).toMatch(/snapshot gpt-4o · USD/);
  });

  it("a dated id shows the rule and the matched id", async () => {
    const run = await show("gpt-4o-2024-08-06");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^matched: dated suffix \(dated_suffix\): gpt-4o-2024-08-06 → gpt-4o$/m);
    expect(run.stdout).toMatch(/input_tokens\s+2\.5\s+per million/);
  });

  it("--provider finds the provider's own price", async () => {
    const run = await show("openai/gpt-4o", "--provider", "openrouter");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^matched: provider\/region prefix \(provider_prefix\): openai\/gpt-4o → openrouter\/openai\/gpt-4o$/m,
    );
    expect(run.stdout).toMatch(/input_tokens\s+2\.6\s+per million/);
    // Without it, the prefix is removed instead.
    const plain = await show("openai/gpt-4o");
    expect(plain.stdout).toMatch(/openai\/gpt-4o → gpt-4o$/m);
  });

  it("--tier picks the tier's snapshot, or a declared fallback, and says which", async () => {
    const priority = await show("gpt-4o", "--tier", "priority");
    expect(priority.code).toBe(0);
    expect(priority.stdout).toMatch(/^gpt-4o \[priority\] at /);
    expect(priority.stdout).toMatch(/^service tier: priority$/m);
    expect(priority.stdout).toMatch(/input_tokens\s+5\s+per million/);
    const scale = await show("gpt-4o", "--tier", "scale");
    expect(scale.code).toBe(0);
    expect(scale.stdout).toMatch(
      /^service tier: scale \(priced by the priority snapshot's fallbackTiers\)$/m,
    );
    expect(scale.stdout).toMatch(/snapshot gpt-4o:priority · USD/);
  });

  it("a tier with no snapshot says so, with the tiers that are priced", async () => {
    const run = await show("gpt-4o-2024-08-06", "--tier", "flex");
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /model gpt-4o-2024-08-06 \(dated suffix \(dated_suffix\): gpt-4o-2024-08-06 → gpt-4o\) has no snapshot for service tier flex at 2026-03-01T00:00:00\.000Z/,
    );
    expect(run.stderr).toMatch(
      /stays unpriced \(no_snapshot_for_tier\); priced tiers then: priority, scale, standard/,
    );
  });

  it("an ambiguous id says so, with the candidates", async () => {
    const run = await show("house-model");
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /model house-model is ambiguous at .*: by declared alias \(alias\) it matches 2 priced models: claude-sonnet-4-5, gemini-2\.5-pro/,
    );
  });

  it("a bad --provider is a usage error naming the flag", async () => {
    const run = await show("gpt-4o", "--provider", "");
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--provider: /);
  });
});

describe("latch rate: model matching and service tiers", () => {
  it("rates a dated id with the match on the record, and rejects a tier without a snapshot by its reason", async () => {
    const line = (i: number, billableModel: string, tier?: string) =>
      JSON.stringify({
        eventId: `req-${i}:0:openai`,
        subject: { tenantId: "acme" },
        meters: { input_tokens: 1000, output_tokens: 100 },
        model: tier === undefined ? { billableModel } : { billableModel, tier },
        provider: { providerId: "openai" },
        source: { kind: "provider_reported" },
        outcome: { kind: "success" },
        timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
      });
    const log = join(dir, "tiers.jsonl");
    await writeFile(
      log,
      `${[line(1, "gpt-4o-2024-08-06"), line(2, "gpt-4o", "flex"), line(3, "house-model")].join("\n")}\n`,
    );
    const out = join(dir, "tiers-rated.jsonl");
    const run = await runCli([
      "rate",
      log,
      "--prices",
      file,
      "--out",
      out,
      "--rejects",
      `${out}.rejects.jsonl`,
      "--no-progress",
    ]);
    expect(run.code).toBe(3); // two lines rejected
    const [record] = (await readFile(out, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    // 1,000 × 2.5 + 100 × 10 per million
    expect(record).toMatchObject({
      eventId: "req-1:0:openai",
      total: "0.0035",
      modelMatch: { rule: "dated_suffix", matchedModel: "gpt-4o" },
    });
    const rejects = (await readFile(`${out}.rejects.jsonl`, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rejects).toMatchObject([
      { line: 2, code: "no_snapshot_for_tier", field: "model.tier" },
      { line: 3, code: "ambiguous_model", field: "model.billableModel" },
    ]);
    expect(rejects[1].reason).toContain("claude-sonnet-4-5, gemini-2.5-pro");
  });
});
