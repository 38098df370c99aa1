/**
 * Exports `rows` synthetic rated records (`syntheticChangeLog` from @latch/testkit: generated
 * on demand, so the store holds nothing) to S3 in THIS process, so that its peak RSS is the
 * exporter's alone, and prints one JSON line: rows, batches, bytes, seconds, peak RSS and the
 * exact per-currency totals of the log.
 *
 * Usage: node --import tsx --conditions=dev-source export-synthetic.ts <endpoint> <bucket> <rows>
 */
import { S3Client } from "@aws-sdk/client-s3";
import { syntheticChangeLog } from "@latch/testkit";
import { S3Exporter } from "../../src/index.js";

const [endpoint, bucket, rowsArg] = process.argv.slice(2);
const rows = Number(rowsArg);
if (endpoint === undefined || bucket === undefined || !Number.isSafeInteger(rows)) {
  throw new Error("usage: export-synthetic.ts <endpoint> <bucket> <rows>");
}

const log = syntheticChangeLog(rows);
const client = new S3Client({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  forcePathStyle: true,
  maxAttempts: 1,
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});
const exporter = new S3Exporter({ bucket, client, prefix: "million" });
const started = performance.now();
const result = await exporter.exportSince(log, { cursorName: "billing", progress: false });
const seconds = (performance.now() - started) / 1_000;
client.destroy();

console.log(
  JSON.stringify({
    rows: result.rows,
    batches: result.batches,
    bytes: result.bytes,
    seconds,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    expectedTotals: log.totals(),
  }),
);
