import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";
import { PRICE_FILE, writeUsageLog } from "./support/usage-log.js";

let dir: string;
let rated: string;
let totals: Record<string, string>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-reports-"));
  await writeFile(join(dir, "prices.json"), JSON.stringify(PRICE_FILE));
  await writeUsageLog(join(dir, "log.jsonl"), 3_000);
  rated = join(dir, "rated.jsonl");
  const run = await runCli([
    "rate",
    join(dir, "log.jsonl"),
    "--prices",
    join(dir, "prices.json"),
    "-o",
    rated,
    "--json",
  ]);
  totals = (JSON.parse(run.stdout) as { totals: Record<string, string> }).totals;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("latch summary and lines", () => {
  it("prints an aligned table with exact totals per currency, JSON and CSV", async () => {
    const table = await runCli(["summary", "--records", rated]);
    expect(table.code).toBe(0);
    const lines = table.stdout.split("\n");
    expect(lines[0]).toMatch(
      /^model\s+requests\s+failures\s+input\s+cache read\s+cache write\s+output\s+total tokens\s+cost \(EUR, exact\)\s+cost \(USD, exact\)$/,
    );
    // Aligned: numbers right-aligned under their header.
    const end = (lines[0] ?? "").indexOf("requests") + "requests".length;
    for (const row of lines.slice(1, 4)) {
      expect(row[end - 1]).toMatch(/\d/);
      expect(row[end]).toBe(" ");
    }
    expect(table.stdout).toContain(`total ${totals.USD} USD exact = `);
    expect(table.stdout).toContain(`total ${totals.EUR} EUR exact = `);

    const json = await runCli([
      "summary",
      "--records",
      rated,
      "--group-by",
      "tenant,day",
      "--tenant",
      "acme",
      "--json",
    ]);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as {
      query: { groupBy: string[]; filters: object };
      rows: Array<{ group: Record<string, string> }>;
    };
    expect(parsed.query.groupBy).toEqual(["tenantId", "day"]);
    expect(parsed.rows.every((r) => r.group.tenantId === "acme" && r.group.day === "2026-03-01")).toBe(true);

    const csv = await runCli([
      "summary",
      "--records",
      rated,
      "--group-by",
      "provider",
      "--csv",
      "--from",
      "2026-03-01T00:00:00Z",
      "--to",
      "2026-03-01T00:10:00Z",
    ]);
    expect(csv.code).toBe(0);
    expect(csv.stdout.split("\r\n")[0]).toBe(
      "provider,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens,requests,successes,failures,currency,cost",
    );
  });

  it("pages through lines in order, as a table, JSON Lines or CSV", async () => {
    const table = await runCli(["lines", "--records", rated, "--limit", "5", "--page-size", "2"]);
    expect(table.code).toBe(0);
    const rows = table.stdout.trimEnd().split("\n");
    expect(rows).toHaveLength(6);
    expect(rows[1]).toMatch(/^2026-03-01T00:00:00\.000Z\s+req-0:0:openai\s+acme\s+openai\s+gpt-4o\s+/);

    const json = await runCli(["lines", "--records", rated, "--tenant", "globex", "--json"]);
    expect(json.code).toBe(0);
    const records = json.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { observation: { subject: { tenantId: string } } });
    expect(records.length).toBe(750);
    expect(records.every((r) => r.observation.subject.tenantId === "globex")).toBe(true);

    const csv = await runCli(["lines", "--records", rated, "--csv", "--model", "gemini-2.5-pro"]);
    expect(csv.stdout.trimEnd().split("\r\n")).toHaveLength(751);
  });

  it("fails bad flags with 2, naming them", async () => {
    const group = await runCli(["summary", "--records", rated, "--group-by", "colour"]);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/--group-by: unknown key "colour"/);
    const both = await runCli(["summary", "--records", rated, "--json", "--csv"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--json, --csv: choose one/);
    const range = await runCli(["lines", "--records", rated, "--from", "2026-03-02", "--to", "2026-03-01"]);
    expect(range.code).toBe(2);
    expect(range.stderr).toMatch(/--to: must be after --from/);
    const store = await runCli(["summary", "--store", "mongo"]);
    expect(store.code).toBe(2);
    expect(store.stderr).toMatch(/--store/);
    const missing = await runCli(["summary", "--records", join(dir, "missing.jsonl")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--records: cannot read .*missing\.jsonl \(ENOENT\)/);
    const help = await runCli(["summary", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--group-by <keys>/);
  });
});
