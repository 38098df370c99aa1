import { createReadStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { sumDecimals } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli, waitForStderr } from "./support/cli.js";
import { libraryTotals, PRICE_FILE, usageLine, writeUsageLog } from "./support/usage-log.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-rate-"));
  await writeFile(join(dir, "prices.json"), JSON.stringify(PRICE_FILE));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Exact totals per currency, the record count and the distinct event ids of a rated JSONL file. */
async function readRated(
  path: string,
): Promise<{ count: number; ids: Set<string>; totals: Record<string, string> }> {
  const amounts = new Map<string, string[]>();
  const ids = new Set<string>();
  let count = 0;
  for await (const line of createInterface({
    input: createReadStream(path),
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    const record = JSON.parse(line) as { eventId: string; currency: string; total: string };
    count++;
    ids.add(record.eventId);
    const list = amounts.get(record.currency) ?? [];
    list.push(record.total);
    amounts.set(record.currency, list);
  }
  const totals = Object.fromEntries(
    [...amounts.keys()].sort().map((c) => [c, sumDecimals(amounts.get(c) ?? [])]),
  );
  return { count, ids, totals };
}

describe("latch rate", () => {
  it("rates a 100,000-line log to exactly the totals the library computes, and puts a malformed line in the reject file", async () => {
    const log = join(dir, "gateway-100k.jsonl");
    const malformed = new Map([
      [41_999, '{"api":"openaiChat","usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15'],
      [70_000, usageLine(70_000).replace('"prompt_tokens":', '"prompt_tokens":-')],
    ]);
    await writeUsageLog(log, 100_000, malformed);
    const out = join(dir, "rated-100k.jsonl");

    const run = await runCli([
      "rate",
      log,
      "--prices",
      join(dir, "prices.json"),
      "--out",
      out,
      "--json",
      "--rated-at",
      "2026-03-02T00:00:00Z",
      "--rejects",
      `${out}.rejects.jsonl`,
    ]);
    // Two lines rejected: exit 3, the outputs written all the same.
    expect(run.stderr).toMatch(/^latch: 2 of 100,000 line\(s\) rejected \(all of them in /m);
    expect(run.code).toBe(3);
    const summary = JSON.parse(run.stdout) as {
      lines: number;
      rated: number;
      rejected: number;
      totals: Record<string, string>;
      peakRssBytes: number;
    };
    expect(summary).toMatchObject({ lines: 100_000, rated: 99_998, rejected: 2 });

    const library = await libraryTotals(log);
    expect(library.rated).toBe(99_998);
    const written = await readRated(out);
    expect(written.count).toBe(99_998);
    expect(written.ids.size).toBe(99_998);
    expect(written.totals).toEqual(library.totals);
    expect(summary.totals).toEqual(library.totals);
    expect(Object.keys(library.totals)).toEqual(["EUR", "USD"]);

    const rejects = (await readFile(`${out}.rejects.jsonl`, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rejects).toHaveLength(2);
    expect(rejects[0]).toMatchObject({ line: 42_000, code: "invalid_json" });
    expect(rejects[0].reason).toMatch(/^not JSON/);
    expect(rejects[1]).toMatchObject({ line: 70_001, code: "invalid_input", field: "usage.prompt_tokens" });
    expect(rejects[1].reason).toMatch(/^usage\.prompt_tokens: /);
    expect(rejects[1].input).toBe(malformed.get(70_000));
    console.log(`latch rate, 100,000 lines: peak RSS ${(summary.peakRssBytes / 1e6).toFixed(0)} MB`);
  }, 600_000);

  it("writes CSV with the `lines` report's columns, and rejects unpriced usage with the model named", async () => {
    const log = join(dir, "small.jsonl");
    const unpriced = usageLine(3).replace('"billableModel":"gpt-4o"', '"billableModel":"gpt-9"');
    await writeUsageLog(log, 20, new Map([[3, unpriced]]));
    const out = join(dir, "small.csv");
    const run = await runCli([
      "rate",
      log,
      "--prices",
      join(dir, "prices.json"),
      "-o",
      out,
      "--rejects",
      `${out}.rejects.jsonl`,
      "--no-progress",
    ]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/rated 19 of 20 lines \(1 rejected → /);
    const csv = (await readFile(out, "utf8")).trimEnd().split("\r\n");
    expect(csv[0]).toMatch(/^completed_at,event_id,rated_record_id,version,tenant_id,/);
    expect(csv).toHaveLength(20);
    const reject = JSON.parse(await readFile(`${out}.rejects.jsonl`, "utf8"));
    expect(reject).toMatchObject({ line: 4, code: "no_snapshot_in_effect", field: "model.billableModel" });
    expect(reject.reason).toContain("gpt-9");

    const allowed = await runCli([
      "rate",
      log,
      "--prices",
      join(dir, "prices.json"),
      "-o",
      out,
      "--allow-rejects",
      "--no-progress",
    ]);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toMatch(/line 4: no_snapshot_in_effect: /);
  });

  it("reads stdin; Ctrl-C leaves no output file behind, and the rerun completes exactly once", async () => {
    const log = join(dir, "interrupted.jsonl");
    await writeUsageLog(log, 5_000);
    const out = join(dir, "interrupted-rated.jsonl");
    const { child, done } = startCli(["rate", "-", "--prices", join(dir, "prices.json"), "-o", out]);
    // Half the log, with stdin left open: the run is mid-stream when the signal comes.
    const text = await readFile(log, "utf8");
    const lines = text.split("\n");
    child.stdin?.write(`${lines.slice(0, 2_500).join("\n")}\n`);
    await waitForStderr(child, (s) => /rating: 2,\d{3} lines/.test(s));
    child.kill("SIGINT");
    const interrupted = await done;
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toMatch(/interrupted/);
    const leftovers = (await readdir(dir)).filter((f) => f.includes("interrupted-rated"));
    expect(leftovers).toEqual([]);

    const rerun = await runCli(
      ["rate", "-", "--prices", join(dir, "prices.json"), "-o", out, "--no-progress"],
      { input: text },
    );
    expect(rerun.code).toBe(0);
    const written = await readRated(out);
    expect(written.count).toBe(5_000);
    expect(written.ids.size).toBe(5_000);
    // Nothing was rejected and no --rejects was given: no reject file either.
    expect((await readdir(dir)).filter((f) => f.includes("interrupted-rated")).sort()).toEqual([
      "interrupted-rated.jsonl",
    ]);
  });

  it("answers --help with 0, and usage errors with 2 naming the flag", async () => {
    const help = await runCli(["rate", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: latch rate \[options\] <input>/);
    expect(help.stdout).toMatch(/Exit codes: 0 ok/);

    const missing = await runCli(["rate"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'input'/);

    const format = await runCli(["rate", "x.jsonl", "--format", "xml"]);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/--format/);

    const ratedAt = await runCli([
      "rate",
      "x.jsonl",
      "--prices",
      join(dir, "prices.json"),
      "--rated-at",
      "yesterday",
    ]);
    expect(ratedAt.code).toBe(2);
    expect(ratedAt.stderr).toMatch(/--rated-at: expected an ISO 8601 time/);

    const noPrices = await runCli(["rate", "x.jsonl", "--prices", join(dir, "nope.json")]);
    expect(noPrices.code).toBe(1);
    expect(noPrices.stderr).toMatch(
      /^latch: the price file is missing: .*nope\.json \(named by --prices\) does not exist; create it with `latch prices import/,
    );

    const unknown = await runCli(["frobnicate"]);
    expect(unknown.code).toBe(2);
  });
});
