import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { csvCellValue } from "@latch/core/export";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";
import { PRICE_FILE, usageLine, writeUsageLog } from "./support/usage-log.js";

// Every CSV the CLI writes (`rate -o x.csv`, `lines --csv`, `summary --csv`) neutralises cells a
// spreadsheet would run as formulas (the rule of @latch/core's csvCell), while the rated JSONL
// keeps the values as they were.

const HOSTILE = '=HYPERLINK("http://evil","x")';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-csv-injection-"));
  await writeFile(join(dir, "prices.json"), JSON.stringify(PRICE_FILE));
  // Lines 0..5 with a project id that is a formula (JSON-escaped in the log line).
  const replace = new Map(
    Array.from({ length: 6 }, (_, i) => [
      i,
      usageLine(i).replace(/"projectId":"p\d"/, `"projectId":${JSON.stringify(HOSTILE)}`),
    ]),
  );
  await writeUsageLog(join(dir, "log.jsonl"), 6, replace);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The cells of one CSV record line with quoted fields (no CR/LF inside fields here). */
function cells(line: string): string[] {
  const out: string[] = [];
  const re = /("(?:[^"]|"")*"|[^,]*)(,|$)/g;
  for (const m of line.matchAll(re)) {
    const raw = m[1] as string;
    out.push(raw.startsWith('"') ? raw.slice(1, -1).replaceAll('""', '"') : raw);
    if (m[2] === "") break;
  }
  return out;
}

describe("CLI CSVs against formula injection", () => {
  it("rate -o x.csv, lines --csv and summary --csv prefix the formula cell; the rated JSONL keeps it", async () => {
    const log = join(dir, "log.jsonl");
    const prices = join(dir, "prices.json");
    const csvOut = join(dir, "rated.csv");
    expect((await runCli(["rate", log, "--prices", prices, "-o", csvOut, "--no-progress"])).code).toBe(0);
    const rows = (await readFile(csvOut, "utf8")).trimEnd().split("\r\n");
    const header = cells(rows[0] as string);
    const project = header.indexOf("project_id");
    expect(rows).toHaveLength(7);
    for (const row of rows.slice(1)) {
      const c = cells(row);
      expect(c[project]).toBe(`'${HOSTILE}`);
      expect(csvCellValue(c[project] as string)).toBe(HOSTILE);
    }

    const jsonlOut = join(dir, "rated.jsonl");
    expect((await runCli(["rate", log, "--prices", prices, "-o", jsonlOut, "--no-progress"])).code).toBe(0);
    const records = (await readFile(jsonlOut, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { observation: { subject: { projectId: string } } });
    expect(records.map((r) => r.observation.subject.projectId)).toEqual(Array(6).fill(HOSTILE));

    const lines = await runCli(["lines", "--records", jsonlOut, "--csv"]);
    expect(lines.code).toBe(0);
    const lineRows = lines.stdout.trimEnd().split("\r\n");
    expect(cells(lineRows[1] as string)[project]).toBe(`'${HOSTILE}`);

    const summary = await runCli(["summary", "--records", jsonlOut, "--group-by", "project_id", "--csv"]);
    expect(summary.stderr).toBe("");
    const summaryRows = summary.stdout.trimEnd().split("\r\n");
    expect(cells(summaryRows[0] as string)[0]).toBe("project_id");
    for (const row of summaryRows.slice(1)) {
      const c = cells(row);
      expect(c[0]).toBe(`'${HOSTILE}`);
      expect(c.at(-1)).toMatch(/^[0-9]+(\.[0-9]+)?$/); // the cost stays a number
    }
  }, 120_000);
});
