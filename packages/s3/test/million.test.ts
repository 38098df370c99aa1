/**
 * 1,000,000 rated records exported with bounded memory. The export runs in a child process
 * (the in-process S3 server stays in this one), so the child's peak RSS is the exporter's.
 * Bounded means: peak RSS does not grow with the number of rows — 1,000,000 rows peak no
 * higher than 100,000 rows plus a small margin (batches of 10,000 are the unit of memory).
 * Downstream, the manifests list exactly every row and the store's exact per-currency totals.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trimDecimal } from "./support/consumer.js";
import { startTestS3, type TestS3 } from "./support/s3-server.js";

const run = promisify(execFile);
const script = fileURLToPath(new URL("./support/export-synthetic.ts", import.meta.url));
const packageDir = fileURLToPath(new URL("..", import.meta.url));

interface ChildReport {
  rows: number;
  batches: number;
  bytes: number;
  seconds: number;
  peakRssMiB: number;
  expectedTotals: Record<string, string>;
}

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.close();
});

async function exportInChild(rows: number): Promise<{ report: ChildReport; bucket: string }> {
  const bucket = await s3.createBucket();
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", "--conditions=dev-source", script, s3.endpoint, bucket, String(rows)],
    { cwd: packageDir, maxBuffer: 16 * 1024 * 1024 },
  );
  const line = stdout.trim().split("\n").at(-1) ?? "";
  return { report: JSON.parse(line) as ChildReport, bucket };
}

/** Sums every manifest's rows and per-currency costDeltaExact (exact, as integers of 10^-6). */
async function manifestTotals(bucket: string): Promise<{ rows: number; totals: Record<string, string> }> {
  let rows = 0;
  const micros = new Map<string, bigint>();
  for (const key of await s3.list(bucket, "million/latch.billing-export.v1/_manifests/")) {
    const manifest = JSON.parse(
      Buffer.from((await s3.get(bucket, key)) ?? new Uint8Array()).toString("utf8"),
    ) as {
      rows: number;
      totalsByCurrency: Record<string, { costDeltaExact: string }>;
    };
    rows += manifest.rows;
    for (const [currency, t] of Object.entries(manifest.totalsByCurrency)) {
      const [whole = "0", fraction = ""] = t.costDeltaExact.split(".");
      expect(fraction.length).toBeLessThanOrEqual(6);
      const value = BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, "0"));
      micros.set(currency, (micros.get(currency) ?? 0n) + value);
    }
  }
  const totals: Record<string, string> = {};
  for (const [currency, m] of micros) {
    totals[currency] = trimDecimal(`${m / 1_000_000n}.${String(m % 1_000_000n).padStart(6, "0")}`);
  }
  return { rows, totals };
}

describe("1,000,000 rated records", () => {
  it(
    "export with bounded memory, every row listed once with the exact totals",
    { timeout: 600_000 },
    async () => {
      const small = await exportInChild(100_000);
      const large = await exportInChild(1_000_000);
      console.log(
        `[s3 export] 100,000 rows: peak RSS ${small.report.peakRssMiB} MiB, ${small.report.seconds.toFixed(1)} s; ` +
          `1,000,000 rows: peak RSS ${large.report.peakRssMiB} MiB, ${large.report.seconds.toFixed(1)} s, ` +
          `${(large.report.bytes / 1e6).toFixed(1)} MB in ${large.report.batches} batches`,
      );
      expect(large.report.rows).toBe(1_000_000);
      expect(large.report.batches).toBe(100);
      // Ten times the rows, the same memory: peak RSS is set by the batch, not the run. The
      // margin absorbs GC timing on a loaded machine (458 vs 381 MiB seen once); memory growing
      // with the rows would add hundreds of MiB.
      expect(large.report.peakRssMiB).toBeLessThan(small.report.peakRssMiB + 160);

      const listed = await manifestTotals(large.bucket);
      expect(listed.rows).toBe(1_000_000);
      const expected = Object.fromEntries(
        Object.entries(large.report.expectedTotals).map(([c, v]) => [c, trimDecimal(v)]),
      );
      expect(listed.totals).toEqual(expected);
    },
  );
});
