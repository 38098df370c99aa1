import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";
import { PRICE_FILE, writeUsageLog } from "./support/usage-log.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-cli-million-"));
  await writeFile(join(dir, "prices.json"), JSON.stringify(PRICE_FILE));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Summary {
  lines: number;
  rated: number;
  rejected: number;
  peakRssBytes: number;
  linesPerSecond: number;
}

async function rate(lines: number): Promise<Summary> {
  const log = join(dir, `log-${lines}.jsonl`);
  await writeUsageLog(log, lines);
  const out = join(dir, `rated-${lines}.csv`);
  const run = await runCli(["rate", log, "--prices", join(dir, "prices.json"), "-o", out, "--json"]);
  expect(run.code, run.stderr).toBe(0);
  let rows = 0;
  for await (const _ of createInterface({
    input: createReadStream(out),
    crlfDelay: Number.POSITIVE_INFINITY,
  }))
    rows++;
  expect(rows).toBe(lines + 1); // the header row
  await rm(log);
  await rm(out);
  return JSON.parse(run.stdout) as Summary;
}

describe("latch rate on 1,000,000 lines", () => {
  it("completes with bounded memory: the peak RSS does not grow with the input", async () => {
    const small = await rate(20_000);
    const million = await rate(1_000_000);
    expect(million).toMatchObject({ lines: 1_000_000, rated: 1_000_000, rejected: 0 });
    const mb = (b: number) => (b / 1e6).toFixed(0);
    console.log(
      `latch rate peak RSS: ${mb(small.peakRssBytes)} MB for 20,000 lines, ${mb(million.peakRssBytes)} MB for 1,000,000 lines ` +
        `(${Math.round(million.linesPerSecond).toLocaleString("en-US")} lines/s)`,
    );
    // 50× the input, not 50× the memory: the rated output alone would be ~250 MB if it were held.
    expect(million.peakRssBytes - small.peakRssBytes).toBeLessThan(128e6);
  }, 900_000);
});
